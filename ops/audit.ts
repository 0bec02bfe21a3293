/**
 * The audit trail: one write-once object per action (export, hold, release, playback token issued,
 * `verify --repair`, `rebuild`) under `.backup/audit/{day}/`, written with If-None-Match so that no
 * record is ever replaced (and under Object Lock's default retention when the bucket has it).
 * Records name who did what to which range; they never carry a secret (a token's id, never the
 * token).
 */
import { randomBytes } from "node:crypto";
import { hostname, userInfo } from "node:os";
import { auditFolder, auditKey } from "../functions/domain/keys.ts";
import type { BackupStore } from "../functions/store/backup-store.ts";

export type AuditAction = "export" | "hold" | "release" | "playback-token" | "verify-repair" | "rebuild";

export interface AuditRecord {
  v: 1;
  action: AuditAction;
  /** Unix seconds. */
  at: number;
  by: string;
  source?: string;
  stream?: string;
  from?: number;
  to?: number;
  detail?: Record<string, unknown>;
}

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

/** Appends a record; never replaces one (a new random key each time, written If-None-Match). */
export async function appendAudit(store: BackupStore, r: Omit<AuditRecord, "v">): Promise<string> {
  const record: AuditRecord = { v: 1, ...r };
  for (let attempt = 0; ; attempt++) {
    const key = auditKey(store.prefix, r.at, r.action, randomBytes(6).toString("hex"));
    if (await store.writeObject(key, JSON.stringify(record), null)) return key;
    if (attempt >= 3) throw new Error(`S3: could not write the audit record ${key}`);
  }
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
