/**
 * `flussonic-backup verify`: re-reads stored objects and compares size and SHA-256 with what was
 * recorded at copy time. Exit status 1 on any missing, corrupt or unrecorded object.
 */
import { formatBytes } from "../local/progress.ts";
import { type VerifyProgress, verifyBackup } from "../local/verify-backup.ts";
import { openBackupTarget, sourceNamed, type TargetOptions } from "./backup-target.ts";
import { isoTime, parseTimeSpan } from "./time-arg.ts";

export interface VerifyCommandOptions extends TargetOptions {
  source?: string | undefined;
  stream?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  json?: boolean | undefined;
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
    });
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
          `${count("missing")} missing, ${count("corrupt")} corrupt, ${count("unrecorded")} unrecorded object(s); ${formatBytes(report.bytesRead)} read.\n`,
      );
      for (const p of report.problems)
        out.write(`  ${p.kind.toUpperCase()} ${p.source} ${p.stream} ${p.key}: ${p.detail}\n`);
    }
    return report.problems.length === 0 ? 0 : 1;
  } finally {
    await target.close();
  }
}
