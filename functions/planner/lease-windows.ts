/**
 * Leasing, the planner's third step, lease first: each stream's chosen windows are written as
 * leases into its manifest by one conditional write (with the completion records folded in), and
 * only the windows that write leased are queued. Two planners at once therefore never queue one
 * window both: the one whose write loses the race reads the winner's leases and gives those windows
 * up. A crash (or a queue that refuses) between the write and the send leaves leases without
 * messages: those windows wait until the lease ends, then the next run plans them again.
 */
import type { SourceConfig } from "../config/config.ts";
import type { CopyMessage } from "../copier/copy-window.ts";
import { type ShareDecision, shareForNewWindows } from "../domain/cap-share.ts";
import { activeLeases, type Lease } from "../domain/manifest.ts";
import type { CopyWindow } from "../domain/windows.ts";
import { copyGroups } from "../queue/copy-groups.ts";
import type { CopyQueue } from "../queue/copy-queue.ts";
import { forEachLimited } from "../shared/for-each-limited.ts";
import type { Log } from "../shared/log.ts";
import type { BackupStore } from "../store/backup-store.ts";
import type { ChosenWindow } from "./choose-windows.ts";
import { writeManifestMerging } from "./compact-records.ts";
import type { SourcePlan } from "./plan-report.ts";
import { type StreamState, unpackRanges } from "./read-streams.ts";

export interface LeaseDeps {
  store: BackupStore;
  queue: CopyQueue;
  logger: Log;
  streamConcurrency?: number;
  /** Lease nothing, write nothing, queue nothing: report what would be queued. */
  dryRun?: boolean;
}

/** What the share of the cap needs beyond the streams read (domain/cap-share.ts). */
export interface ShareContext {
  /** Every stream of the source was read this run (none failed). */
  allStreamsRead: boolean;
  /** Seconds a window may wait in the queue and still start in time (lease minus timeout and margin). */
  leaseSlackSeconds: number;
  /** Hold windows in the queue while another run's span lasts (copiers with a throttle each). */
  holdForSpans: boolean;
}

/**
 * The share of the cap this run's windows get, from what is in flight: every stream's active leases
 * whose completion record has not been folded in yet.
 */
export function shareOfRun(
  source: SourceConfig,
  queueUrl: string,
  states: readonly StreamState[],
  chosen: readonly ChosenWindow[],
  now: number,
  context: ShareContext | undefined,
): ShareDecision {
  const inFlight: (number | undefined)[] = [];
  for (const s of states) {
    const done = new Set(s.records.map((r) => `${r.from}-${r.duration}`));
    for (const l of activeLeases(s.manifest, now)) {
      if (!done.has(leaseId(l))) inFlight.push(l.copiesUntil);
    }
  }
  const capBps = source.maxBandwidthMbps * 1_000_000;
  const largest = Math.max(0, ...chosen.map(({ s, w }) => (w.duration * s.bitrateBps) / capBps));
  const fifo = queueUrl.endsWith(".fifo");
  const decision = shareForNewWindows({
    maxConcurrentCopies: source.maxConcurrentCopies,
    eligible: !fifo && source.kind !== "central",
    allStreamsRead: context?.allStreamsRead ?? false,
    inFlight,
    newWindows: chosen.length,
    largestWindowSecondsAtCap: largest,
    leaseSlackSeconds: context?.leaseSlackSeconds ?? 0,
    now,
  });
  // A FIFO queue takes no per-message delay (and its windows never had a span of their own); copies
  // sharing one throttle of the whole cap need none.
  return fifo || !context?.holdForSpans
    ? { ...(decision.share ? { share: decision.share } : {}), delaySeconds: 0 }
    : decision;
}

/**
 * Leases the chosen windows (and writes every read stream's changed manifest; its catalogs were
 * written when it was read), then queues what was leased, in the order chosen. Adds what was queued
 * to `report`; returns the keys of the completion records folded in (to delete). With `share`, the
 * windows get their share of the cap (shareOfRun): the whole cap between them when nothing else of
 * the source is in flight, and a delay while another run's span lasts.
 */
export async function leaseAndQueue(
  deps: LeaseDeps,
  source: SourceConfig,
  states: readonly StreamState[],
  chosen: readonly ChosenWindow[],
  leaseUntil: number,
  now: number,
  report: SourcePlan,
  fail: (stream: string | undefined, error: unknown) => void,
  share?: ShareContext,
): Promise<string[]> {
  // A dry run has no queue to ask (nothing is sent, so no share is given).
  const decision = deps.dryRun
    ? { delaySeconds: 0 }
    : shareOfRun(source, deps.queue.queueUrl(source.name), states, chosen, now, share);
  const wanted = new Map<StreamState, Lease[]>();
  for (const { s, w } of chosen) {
    const list = wanted.get(s) ?? [];
    list.push({
      from: w.from,
      duration: w.duration,
      until: leaseUntil,
      ...(decision.share ? { copiesUntil: decision.share.until } : {}),
    });
    wanted.set(s, list);
  }
  const leased = new Map<StreamState, Set<string>>();
  const compacted: string[] = [];
  if (deps.dryRun) {
    for (const [s, list] of wanted) leased.set(s, new Set(list.map(leaseId)));
  } else {
    await forEachLimited(states, deps.streamConcurrency ?? 16, async (s) => {
      try {
        const mine = wanted.get(s) ?? [];
        if (s.changed || mine.length > 0) {
          const m = {
            ...s.manifest,
            covered: unpackRanges(s.covered),
            leases: [...activeLeases(s.manifest, now), ...mine],
            updatedAt: now,
          };
          const written = await writeManifestMerging(deps.store, m, s.etag, s.records, mine, now);
          if (written === undefined) {
            deps.logger.warn("manifest changed meanwhile; this stream is re-planned next run", {
              source: source.name,
              stream: s.settings.name,
            });
            return;
          }
          leased.set(s, new Set(written.map(leaseId)));
        }
        for (const r of s.records) compacted.push(deps.store.recordKeyOf(r));
      } catch (error) {
        fail(s.settings.name, error);
      }
    });
  }

  const messages: { s: StreamState; m: CopyMessage }[] = [];
  for (const { s, w } of chosen) {
    if (!leased.get(s)?.has(leaseId(w))) continue;
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
        ...(decision.share ? { copies: decision.share.copies, copiesUntil: decision.share.until } : {}),
      },
    });
  }
  const list = messages.map((x) => x.m);
  const sent = deps.dryRun
    ? { sent: list, failed: [] }
    : // A Central source's windows go to its servers' message groups (FIFO queues only).
      await deps.queue.send(source.name, list, {
        groups: copyGroups(source, list, now),
        ...(decision.delaySeconds > 0 ? { delaySeconds: decision.delaySeconds } : {}),
      });
  for (const f of sent.failed)
    fail(
      f.message.stream,
      new Error(
        `could not queue window ${f.message.from}: ${f.reason} (leased until ${new Date(leaseUntil * 1000).toISOString()}: planned again after that)`,
      ),
    );
  const sentSet = new Set(sent.sent);
  for (const { s, m } of messages) {
    if (!sentSet.has(m)) continue;
    const bytes = Math.round((m.duration * s.bitrateBps) / 8);
    s.plan.planned++;
    s.plan.plannedBytes += bytes;
    report.planned.push(m);
    report.plannedBytes += bytes;
  }
  return compacted;
}

function leaseId(w: Pick<CopyWindow, "from" | "duration">): string {
  return `${w.from}-${w.duration}`;
}
