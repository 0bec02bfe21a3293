/**
 * Appending to the audit trail (ops/audit.ts lists it): one write-once object per action under
 * `.backup/audit/{day}/`, written with If-None-Match so that no record is ever replaced. Here, in
 * the store, so that the planner (holds from episodes) appends as the operator's commands do.
 */
import { randomBytes } from "node:crypto";
import { auditKey } from "../domain/keys.ts";
import type { BackupStore } from "./backup-store.ts";

export type AuditAction =
  | "export"
  | "hold"
  | "release"
  | "playback-token"
  | "verify-repair"
  | "rebuild"
  | "episode-hold";

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

/** Appends a record; never replaces one (a new random key each time, written If-None-Match). */
export async function appendAudit(store: BackupStore, r: Omit<AuditRecord, "v">): Promise<string> {
  const record: AuditRecord = { v: 1, ...r };
  for (let attempt = 0; ; attempt++) {
    const key = auditKey(store.prefix, r.at, r.action, randomBytes(6).toString("hex"));
    if (await store.writeObject(key, JSON.stringify(record), null)) return key;
    if (attempt >= 3) throw new Error(`S3: could not write the audit record ${key}`);
  }
}
