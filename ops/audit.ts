/**
 * The audit trail: one write-once object per action (export, hold, release, playback token issued,
 * `verify --repair`, `rebuild`) under `.backup/audit/{day}/`, written with If-None-Match so that no
 * record is ever replaced (and under Object Lock's default retention when the bucket has it).
 * Records name who did what to which range; they never carry a secret (a token's id, never the
 * token).
 */
import { hostname, userInfo } from "node:os";
import { auditFolder } from "../functions/domain/keys.ts";
import type { AuditRecord } from "../functions/store/audit.ts";
import type { BackupStore } from "../functions/store/backup-store.ts";

export { type AuditAction, type AuditRecord, appendAudit } from "../functions/store/audit.ts";

/** Who runs this command: `user@host` (the operator may name themself with --by). */
export function operatorName(): string {
  let user = "unknown";
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (a container's arbitrary uid): the host still says where.
  }
  return `${user}@${hostname()}`;
}

/** Records since `since` (unix seconds), oldest first: one listing per day folder from then. */
export async function listAudit(
  store: BackupStore,
  since: number | undefined,
): Promise<(AuditRecord & { key: string })[]> {
  const folder = auditFolder(store.prefix);
  const out: (AuditRecord & { key: string })[] = [];
  for await (const o of store.listObjects(folder)) {
    const day = o.key.slice(folder.length, folder.length + 10);
    if (since !== undefined && day < new Date(since * 1000).toISOString().slice(0, 10)) continue;
    const got = await store.readObject<AuditRecord>(o.key).catch(() => undefined);
    if (!got || (since !== undefined && got.body.at < since)) continue;
    out.push({ ...got.body, key: o.key });
  }
  return out.sort((a, b) => a.at - b.at || (a.key < b.key ? -1 : 1));
}
