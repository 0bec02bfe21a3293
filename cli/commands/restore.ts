/**
 * `flussonic-backup restore`: a time range of one stream as one playable file (see
 * ops/restore.ts for how windows are joined and trimmed). Refuses a range with holes
 * unless `--allow-gaps`.
 */

import { Mp4JoinError } from "../../functions/domain/mp4-join.ts";
import { formatBytes, formatDuration } from "../../ops/progress.ts";
import { RestoreError, restoreRange } from "../../ops/restore.ts";
import { openBackupTarget, sourceNamed, type TargetOptions } from "./backup-target.ts";
import { isoTime, parseTimeRange } from "./time-arg.ts";

export interface RestoreCommandOptions extends TargetOptions {
  source: string;
  stream: string;
  from: string;
  to: string;
  out: string;
  allowGaps?: boolean | undefined;
  stdout?: { write(s: string): unknown };
  stderr?: { write(s: string): unknown };
}

export async function restoreCommand(o: RestoreCommandOptions): Promise<number> {
  const stdout = o.stdout ?? process.stdout;
  const stderr = o.stderr ?? process.stderr;
  const { from, to } = parseTimeRange(o.from, o.to);
  const target = await openBackupTarget(o, { flussonic: false });
  try {
    sourceNamed(target.config, o.source);
    const r = await restoreRange({
      store: target.store,
      source: o.source,
      stream: o.stream,
      from,
      to,
      out: o.out,
      allowGaps: Boolean(o.allowGaps),
      onWindow: (done, total, bytes) => {
        if (done === total || done % 20 === 0)
          stderr.write(`restore: ${done}/${total} window(s), ${formatBytes(bytes)} written\n`);
      },
    });
    const lines = [
      `Restored ${o.source} "${o.stream}" ${isoTime(from)} – ${isoTime(to)} into ${o.out} (${r.format}, ${formatBytes(r.bytesWritten)}, ${r.windows} window(s)).`,
      r.mediaSeconds !== undefined
        ? `MP4: one init segment, timestamps from 0, trimmed to the fragments overlapping the range: ${formatDuration(Math.round(r.mediaSeconds))} of media.`
        : `MPEG-TS: windows overlapping the range are included whole: the file covers ${isoTime(r.windowsFrom)} – ${isoTime(r.windowsTo)}.`,
    ];
    if (r.holes.length > 0) {
      lines.push(`With --allow-gaps: ${r.holes.length} hole(s) skipped (they play as cuts):`);
      for (const h of r.holes)
        lines.push(`  ${isoTime(h.from)} – ${isoTime(h.to)} (${formatDuration(h.to - h.from)})`);
    }
    stdout.write(`${lines.join("\n")}\n`);
    return 0;
  } catch (error) {
    if (error instanceof RestoreError || error instanceof Mp4JoinError) {
      stderr.write(`restore refused: ${error.message}\n`);
      return 1;
    }
    throw error;
  } finally {
    await target.close();
  }
}
