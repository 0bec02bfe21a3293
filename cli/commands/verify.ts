/**
 * `flussonic-backup verify`: re-reads stored objects and compares size and SHA-256 with what was
 * recorded at copy time. Exit status 1 on any problem; with `repair`, on any problem left unrepaired.
 */
import { appendAudit, operatorName } from "../../ops/audit.ts";
import { formatBytes } from "../../ops/progress.ts";
import type { StreamRepair } from "../../ops/verify.ts";
import { type VerifyProgress, verifyBackup } from "../../ops/verify.ts";
import { openBackupTarget, sourceNamed, type TargetOptions } from "./backup-target.ts";
import { isoTime, parseTimeSpan } from "./time-arg.ts";

export interface VerifyCommandOptions extends TargetOptions {
  source?: string | undefined;
  stream?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  json?: boolean | undefined;
  /** Stop claiming missing, corrupt and short windows, so the next run copies them again. */
  repair?: boolean | undefined;
  /** Who repairs, for the audit trail (default user@host). */
  by?: string | undefined;
  /** Unix seconds (tests; default the system clock): names set-aside objects, stamps the manifest. */
  now?: () => number;
  out?: { write(s: string): unknown };
  /** Progress lines (default stderr). */
  progress?: { write(s: string): unknown };
  /** Milliseconds between progress lines (default 2000). */
  progressEveryMs?: number;
}

export async function verifyCommand(o: VerifyCommandOptions): Promise<number> {
  const out = o.out ?? process.stdout;
  const progressOut = o.progress ?? process.stderr;
  const span = parseTimeSpan(o.from, o.to);
  const target = await openBackupTarget(o, { flussonic: false });
  try {
    if (o.source) sourceNamed(target.config, o.source);
    let last = 0;
    let streamsDone = 0;
    const onProgress = (p: VerifyProgress) => {
      const now = performance.now();
      if (p.checked === p.total) streamsDone++;
      if (now - last < (o.progressEveryMs ?? 2000) && p.checked !== p.total) return;
      last = now;
      progressOut.write(
        `verify: ${p.stream}: ${p.checked}/${p.total} window(s), ${formatBytes(p.bytesRead)} read; ${streamsDone} stream(s) done\n`,
      );
    };
    const report = await verifyBackup({
      config: target.config,
      store: target.store,
      source: o.source,
      stream: o.stream,
      from: span.from,
      to: span.to,
      onProgress,
      repair: o.repair === true,
      ...(o.now ? { now: o.now } : {}),
    });
    if (o.repair) {
      await appendAudit(target.store, {
        action: "verify-repair",
        at: (o.now ?? (() => Math.floor(Date.now() / 1000)))(),
        by: o.by ?? operatorName(),
        ...(o.source !== undefined ? { source: o.source } : {}),
        ...(o.stream !== undefined ? { stream: o.stream } : {}),
        ...(span.from !== undefined ? { from: span.from } : {}),
        ...(span.to !== undefined ? { to: span.to } : {}),
        detail: {
          checked: report.checked,
          problems: report.problems.length,
          repaired: report.problems.filter((p) => p.repaired).length,
        },
      });
    }
    if (o.json) {
      out.write(`${JSON.stringify(report, null, 2)}\n`);
    } else {
      const where =
        span.from !== undefined || span.to !== undefined
          ? ` overlapping ${span.from !== undefined ? isoTime(span.from) : "the beginning"} – ${span.to !== undefined ? isoTime(span.to) : "now"}`
          : "";
      const count = (k: string) => report.problems.filter((p) => p.kind === k).length;
      out.write(
        `Verified ${report.checked} recorded window(s)${where} in ${report.streams} stream(s): ${report.intact} intact, ` +
          `${count("missing")} missing, ${count("corrupt")} corrupt, ${count("unrecorded")} unrecorded object(s)` +
          `${count("short") + count("replaced") > 0 ? `, ${count("short")} short, ${count("replaced")} replaced window(s)` : ""}; ${formatBytes(report.bytesRead)} read.\n`,
      );
      for (const p of report.problems)
        out.write(
          `  ${p.kind.toUpperCase()}${p.repaired ? " (repaired)" : ""} ${p.source} ${p.stream} ${p.key}: ${p.detail}\n`,
        );
      for (const r of report.repairs ?? []) out.write(`${repairLine(r)}\n`);
      if (report.setAside?.length) {
        out.write(
          `${report.setAside.length} corrupt object(s) set aside by an earlier verify --repair (kept until the bucket's lifecycle expires them; not windows): ${report.setAside.join(", ")}\n`,
        );
      }
      if (o.repair && report.repairs?.length === 0 && report.problems.length > 0) {
        out.write("Repaired nothing: only missing, corrupt and short windows are repaired.\n");
      }
    }
    if (o.repair) return report.problems.every((p) => p.repaired) ? 0 : 1;
    return report.problems.length === 0 ? 0 : 1;
  } finally {
    await target.close();
  }
}

/** What `--repair` changed in one stream, in one sentence. */
function repairLine(r: StreamRepair): string {
  const seconds = r.uncovered.reduce((n, u) => n + u.to - u.from, 0);
  const spans = r.uncovered.map((u) => `${isoTime(u.from)} – ${isoTime(u.to)}`).join(", ");
  const what =
    `Repaired ${r.source} ${r.stream}: ${r.windows} window(s) no longer claimed` +
    (seconds > 0
      ? `, ${seconds} s no longer counted as backed up (${spans}); the next run copies them again from the source while it still holds them`
      : " (intact windows hold all their seconds)") +
    `; ${r.catalogEntriesDropped} catalog entr${r.catalogEntriesDropped === 1 ? "y" : "ies"} and ${r.recordsDeleted} completion record(s) dropped` +
    (r.objectsDeleted > 0
      ? `, ${r.objectsDeleted} object(s) deleted (intact windows hold all their seconds)`
      : "") +
    (r.setAside.length > 0
      ? `, ${r.setAside.length} corrupt object(s) set aside (kept as ${r.setAside.join(", ")}, so that no copier takes them for the window)`
      : "") +
    (r.kept.length > 0
      ? `; ${r.kept.length} short object(s) stay at their key until the new copy of the window replaces them`
      : "") +
    (r.replacedMeanwhile.length > 0
      ? `; ${r.replacedMeanwhile.length} object(s) stored again while verify ran were kept (${r.replacedMeanwhile.join(", ")}): run verify again to check them.`
      : ".");
  return r.error === undefined ? what : `NOT REPAIRED ${r.source} ${r.stream}: ${r.error}`;
}
