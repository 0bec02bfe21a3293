/**
 * `flussonic-backup reindex`: builds the fragment index (what playback needs) of windows stored
 * before copiers recorded it, by ranged reads of the stored objects (never from the source).
 * Idempotent: windows indexed already are skipped. Exit status 1 when a stored window could not be
 * read as whole media.
 */
import { formatBytes } from "../../ops/progress.ts";
import { reindexBackup } from "../../ops/reindex.ts";
import { openBackupTarget, sourceNamed, type TargetOptions } from "./backup-target.ts";
import { isoTime, parseTimeSpan } from "./time-arg.ts";

export interface ReindexCommandOptions extends TargetOptions {
  source?: string | undefined;
  stream?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  out?: { write(s: string): unknown };
  /** Progress lines (default stderr). */
  progress?: { write(s: string): unknown };
}

export async function reindexCommand(o: ReindexCommandOptions): Promise<number> {
  const out = o.out ?? process.stdout;
  const progress = o.progress ?? process.stderr;
  const span = parseTimeSpan(o.from, o.to);
  const target = await openBackupTarget(o, { flussonic: false });
  try {
    if (o.source) sourceNamed(target.config, o.source);
    let last = 0;
    const report = await reindexBackup({
      config: target.config,
      store: target.store,
      source: o.source,
      stream: o.stream,
      from: span.from,
      to: span.to,
      onProgress: (p) => {
        const now = performance.now();
        if (now - last < 2000 && p.indexed !== p.total) return;
        last = now;
        progress.write(`reindex: ${p.source} ${p.stream} ${p.day}: ${p.indexed}/${p.total} window(s)\n`);
      },
    });
    const count = (kind: string) => report.problems.filter((p) => p.kind === kind).length;
    const where =
      span.from !== undefined || span.to !== undefined
        ? ` overlapping ${span.from !== undefined ? isoTime(span.from) : "the beginning"} – ${span.to !== undefined ? isoTime(span.to) : "now"}`
        : "";
    out.write(
      `Reindexed ${report.windows} stored window(s)${where} in ${report.streams} stream(s): ${report.indexed} indexed now, ` +
        `${report.alreadyIndexed} already indexed, ${count("unreadable")} unreadable, ${count("missing")} missing; ` +
        `${formatBytes(report.bytesRead)} read in ${report.gets} ranged GET(s), ${report.daysWritten} index object(s) written.\n`,
    );
    for (const p of report.problems) {
      out.write(`  ${p.kind.toUpperCase()} ${p.source} ${p.stream} ${p.key}: ${p.detail}\n`);
    }
    // A missing object (expired by the lifecycle rule) has nothing to index: not a failure.
    return count("unreadable") === 0 ? 0 : 1;
  } finally {
    await target.close();
  }
}
