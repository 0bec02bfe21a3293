/**
 * `flussonic-backup audit [--since T] [--json]`: the audit trail (ops/audit.ts), oldest first.
 */
import { listAudit } from "../../ops/audit.ts";
import { openBackupTarget, type TargetOptions } from "./backup-target.ts";
import { isoTime, parseTimeArg } from "./time-arg.ts";

export interface AuditCommandOptions extends TargetOptions {
  since?: string | undefined;
  json?: boolean | undefined;
  stdout?: { write(s: string): unknown };
}

export async function auditCommand(o: AuditCommandOptions): Promise<number> {
  const stdout = o.stdout ?? process.stdout;
  const since = o.since === undefined ? undefined : parseTimeArg("--since", o.since);
  const target = await openBackupTarget(o, { flussonic: false });
  try {
    const records = await listAudit(target.store, since);
    if (o.json) {
      stdout.write(`${JSON.stringify(records, null, 2)}\n`);
      return 0;
    }
    if (records.length === 0)
      stdout.write(`No audit records${since !== undefined ? ` since ${isoTime(since)}` : ""}.\n`);
    for (const r of records) {
      const what = [
        r.source !== undefined ? r.source : undefined,
        r.stream !== undefined ? `"${r.stream}"` : undefined,
        r.from !== undefined && r.to !== undefined ? `${isoTime(r.from)} – ${isoTime(r.to)}` : undefined,
      ]
        .filter(Boolean)
        .join(" ");
      const detail = r.detail
        ? Object.entries(r.detail)
            .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
            .join(" ")
        : "";
      stdout.write(
        `${isoTime(r.at)} ${r.action} by ${r.by}${what ? ` ${what}` : ""}${detail ? `: ${detail}` : ""}\n`,
      );
    }
    return 0;
  } finally {
    await target.close();
  }
}
