/**
 * `flussonic-backup redrive --source s`: moves the source's dead-lettered windows back to its copy
 * queue (after the operator fixed the cause); `--dry-run` lists them with their reasons.
 */

import { redrive } from "../../ops/redrive.ts";
import { sourceQueueUrls } from "../../ops/status.ts";
import { openBackupTarget, sourceNamed, type TargetOptions } from "./backup-target.ts";
import { isoTime } from "./time-arg.ts";

export interface RedriveCommandOptions extends TargetOptions {
  source: string;
  dryRun?: boolean | undefined;
  /** Unix seconds (tests). */
  now?: number;
  out?: { write(s: string): unknown };
}

export async function redriveCommand(o: RedriveCommandOptions): Promise<number> {
  const out = o.out ?? process.stdout;
  const target = await openBackupTarget(o, { flussonic: false, queues: true });
  try {
    sourceNamed(target.config, o.source);
    const urls = await sourceQueueUrls(target.sqs, o.source);
    const r = await redrive({
      sqs: target.sqs,
      queueUrl: urls.url,
      deadLetterUrl: urls.deadLetterUrl,
      dryRun: Boolean(o.dryRun),
    });
    const now = o.now ?? Math.floor(Date.now() / 1000);
    const describe = (body: string) => {
      try {
        const m = JSON.parse(body) as { stream?: string; from?: number; duration?: number };
        if (typeof m.from === "number") return `"${m.stream}" ${isoTime(m.from)} +${m.duration}s`;
      } catch {
        // fall through
      }
      return `(not a copy message) ${body.slice(0, 60)}`;
    };
    out.write(
      o.dryRun
        ? `${r.moved.length} dead-lettered window(s) of source ${o.source} (left in place, --dry-run):\n`
        : `Moved ${r.moved.length} dead-lettered window(s) of source ${o.source} back to its copy queue.\n`,
    );
    for (const l of r.moved) out.write(`  ${describe(l.body)}: ${l.reason ?? "no reason recorded"}\n`);
    const expired = r.moved.filter((l) => l.leaseUntil !== undefined && l.leaseUntil <= now).length;
    if (!o.dryRun && expired > 0) {
      out.write(
        `${expired} of them have leases that ended: the copier drops those as stale and the planner plans those windows again on its next run.\n`,
      );
    }
    for (const f of r.failed) out.write(`  NOT MOVED ${describe(f.letter.body)}: ${f.reason}\n`);
    return r.failed.length === 0 ? 0 : 1;
  } finally {
    await target.close();
  }
}
