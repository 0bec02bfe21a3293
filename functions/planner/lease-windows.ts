/**
 * Leasing, the planner's third step: the chosen windows become copy messages on the source's
 * queue, and each one queued a lease in its stream's manifest (written with the compaction), so
 * that no planner plans it again before the lease ends.
 */
import type { SourceConfig } from "../config/config.ts";
import type { CopyMessage } from "../copier/copy-window.ts";
import type { CopyWindow } from "../domain/windows.ts";
import type { CopyQueue } from "../queue/copy-queue.ts";
import type { SourcePlan } from "./plan-report.ts";
import type { StreamState } from "./read-streams.ts";

export interface LeaseDeps {
  queue: CopyQueue;
  dryRun?: boolean;
}

/**
 * Queues the chosen windows, then leases what was queued (a crash in between only causes a
 * duplicate, which the idempotent copier absorbs). Adds what was queued to `report`.
 */
export async function queueAndLease(
  deps: LeaseDeps,
  source: SourceConfig,
  chosen: ReadonlyMap<StreamState, CopyWindow[]>,
  leaseUntil: number,
  report: SourcePlan,
  fail: (stream: string | undefined, error: unknown) => void,
): Promise<void> {
  const messages: { s: StreamState; m: CopyMessage }[] = [];
  for (const [s, windows] of chosen) {
    for (const w of windows) {
      messages.push({
        s,
        m: {
          v: 1,
          source: source.name,
          stream: s.settings.name,
          from: w.from,
          duration: w.duration,
          format: s.settings.format,
          leaseUntil,
        },
      });
    }
  }
  const sent = deps.dryRun
    ? { sent: messages.map((x) => x.m), failed: [] }
    : await deps.queue.send(
        source.name,
        messages.map((x) => x.m),
      );
  for (const f of sent.failed)
    fail(f.message.stream, new Error(`could not queue window ${f.message.from}: ${f.reason}`));
  const sentSet = new Set(sent.sent);
  for (const { s, m } of messages) {
    if (!sentSet.has(m)) continue;
    s.manifest = {
      ...s.manifest,
      leases: [...s.manifest.leases, { from: m.from, duration: m.duration, until: leaseUntil }],
    };
    s.changed = true;
    s.plan.planned++;
    s.plan.plannedBytes += Math.round((m.duration * s.bitrateBps) / 8);
    report.planned.push(m);
    report.plannedBytes += Math.round((m.duration * s.bitrateBps) / 8);
  }
}
