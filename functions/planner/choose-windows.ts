/**
 * Choosing, the planner's second step: which of the windows the streams of a source lack are
 * queued this run, within the source's budget (what its copiers can start before the leases end).
 *
 * While no stream of the source is in danger (every margin at or above `marginWarningSeconds`),
 * the live edge of every stream goes first, then back-fill oldest first. Once one is, the source is
 * in a race with its own retention: its copies go earliest deadline first across all its streams,
 * a window that cannot be started before its first second is deleted is not started (it would take
 * the time of one that can be saved), and the schedule is carried on past this run to say which
 * seconds will be lost and when (`plan.atRisk`).
 */

import type { BackupConfig, SourceConfig } from "../config/config.ts";
import { copyBandwidthBps } from "../config/config.ts";
import {
  byDeadline,
  type Candidate,
  latestStart,
  marginWarningAt,
  scheduleEarliestDeadline,
} from "../domain/deadlines.ts";
import { activeLeases } from "../domain/manifest.ts";
import { normalizeRanges } from "../domain/ranges.ts";
import { type CopyWindow, countWindows, cutWindows, cutWindowsNewestFirst } from "../domain/windows.ts";
import type { StreamState } from "./read-streams.ts";

/** A window chosen for a stream; the planner queues them in the order chosen. */
export interface ChosenWindow {
  s: StreamState;
  w: CopyWindow;
}

/** What choosing needs of the planner's dependencies. */
export interface ChooseDeps {
  config: BackupConfig;
  copyTimeoutSeconds: number;
}

/**
 * The windows to queue, in queue order (the live edge of every stream first, then back-fill within the
 * budget); sets each stream's `plan.deferred` (missing windows left for a later run).
 */
export function chooseWindows(
  deps: ChooseDeps,
  source: SourceConfig,
  states: readonly StreamState[],
  now: number,
): ChosenWindow[] {
  const copierBandwidthBps = copyBandwidthBps(source, source.maxBandwidthMbps);
  // Budget: only queue what the source's copiers can start before the leases end, so that a big
  // backlog is fed run by run instead of expiring in the queue.
  const startDeadline = Math.max(60, deps.config.leaseSeconds - deps.copyTimeoutSeconds);
  const copySeconds = (s: StreamState, w: CopyWindow) =>
    Math.max(1, (w.duration * s.bitrateBps) / copierBandwidthBps);
  let budget = (source.maxConcurrentCopies * startDeadline) / 2;
  for (const s of states) {
    for (const l of activeLeases(s.manifest, now)) budget -= copySeconds(s, l);
  }

  const threshold = deps.config.marginWarningSeconds;
  const inDanger = states.some(
    (s) =>
      s.missing.length > 0 &&
      s.plan.marginSeconds !== undefined &&
      s.plan.marginSeconds < marginWarningAt(threshold, s.plan.sourceDepthSeconds),
  );
  if (inDanger && !source.paused) {
    const leasedSeconds = states.reduce(
      (n, s) => n + activeLeases(s.manifest, now).reduce((m, l) => m + copySeconds(s, l), 0),
      0,
    );
    return chooseByDeadline(source, states, now, copySeconds, startDeadline / 2, leasedSeconds);
  }

  const chosen: ChosenWindow[] = [];
  const counts = new Map<StreamState, number>();
  const take = (s: StreamState, w: CopyWindow, demand = false): boolean => {
    if (source.paused || (budget <= 0 && !demand)) return false;
    budget -= copySeconds(s, w);
    chosen.push({ s, w });
    counts.set(s, (counts.get(s) ?? 0) + 1);
    return true;
  };
  // First the live edge of every stream (newest windows after what is stored, at most an hour):
  // that is the demand, planned whatever the budget says, so that no stream (late in name order,
  // or after an estimate too high) falls behind the source's own retention. Then back-fill oldest
  // first within the budget, round-robin across streams, so that nothing waits behind one long
  // history.
  const backfill: { s: StreamState; windows: Generator<CopyWindow> }[] = [];
  /** Windows due per stream as cut here: a window across the edge's start is cut in two. */
  const due = new Map<StreamState, number>();
  for (const s of states) {
    const edgeFrom = Math.max(s.manifest.head, s.horizon - 3600);
    const edge = s.missing
      .filter((r) => r.to > edgeFrom)
      .map((r) => ({ from: Math.max(r.from, edgeFrom), to: r.to }));
    for (const w of cutWindowsNewestFirst(edge, s.windowSeconds, s.horizon)) {
      if (!take(s, w, true)) break;
    }
    const older = s.missing
      .filter((r) => r.from < edgeFrom)
      .map((r) => ({ from: r.from, to: Math.min(r.to, edgeFrom) }));
    backfill.push({ s, windows: cutWindows(older, s.windowSeconds, s.horizon) });
    due.set(
      s,
      countWindows(edge, s.windowSeconds, s.horizon) + countWindows(older, s.windowSeconds, s.horizon),
    );
  }
  let active = backfill;
  while (active.length > 0 && budget > 0 && !source.paused) {
    const next: typeof active = [];
    for (const b of active) {
      const w = b.windows.next();
      if (w.done) continue;
      take(b.s, w.value);
      next.push(b);
    }
    active = next;
  }
  for (const s of states) s.plan.deferred = (due.get(s) ?? 0) - (counts.get(s) ?? 0);
  return chosen;
}

/** Windows of a backlog looked at per run at most, to predict losses (a bound on the planner's work). */
const PREDICTED_WINDOWS = 200_000;

/**
 * Earliest deadline first over the source's copiers (domain/deadlines.ts): the windows that start
 * within `startSeconds` are chosen, the late ones noted in their streams' `plan.atRisk`.
 */
function chooseByDeadline(
  source: SourceConfig,
  states: readonly StreamState[],
  now: number,
  copySeconds: (s: StreamState, w: CopyWindow) => number,
  startSeconds: number,
  leasedSeconds: number,
): ChosenWindow[] {
  const sequences = states.map(function* (s): Generator<Candidate<StreamState>> {
    for (const w of cutWindows(s.missing, s.windowSeconds, s.horizon)) {
      const seconds = copySeconds(s, w);
      // The source lists every second of `missing` now: a window whose computed deadline has passed
      // is still there (sources delete by whole segments, on their own clock), so it may still be
      // saved if it starts at once: its latest start is now, not in the past.
      const latest = Math.max(now, latestStart(w, s.depth, seconds));
      yield { item: s, window: w, copySeconds: seconds, latestStart: latest };
    }
  });
  const slots = Math.max(1, source.maxConcurrentCopies);
  const schedule = scheduleEarliestDeadline({
    candidates: byDeadline(sequences),
    slots,
    // Copies leased before this run share the copiers first.
    busyUntil: Array.from({ length: slots }, () => now + leasedSeconds / slots),
    now,
    startBy: now + startSeconds,
    maxCandidates: PREDICTED_WINDOWS,
  });
  const late = new Map<StreamState, { from: number; to: number }[]>();
  for (const c of schedule.late) {
    const list = late.get(c.item) ?? [];
    list.push({ from: c.window.from, to: c.window.from + c.window.duration });
    late.set(c.item, list);
  }
  const counts = new Map<StreamState, number>();
  for (const c of schedule.chosen) counts.set(c.item, (counts.get(c.item) ?? 0) + 1);
  for (const s of states) {
    const ranges = normalizeRanges(late.get(s) ?? []);
    // When each merged range starts to go: the deletion of its first second.
    s.plan.atRisk = ranges.map((r) => ({ from: r.from, to: r.to, lostAt: r.from + s.depth.seconds }));
    s.plan.deferred = countWindows(s.missing, s.windowSeconds, s.horizon) - (counts.get(s) ?? 0);
  }
  return schedule.chosen.map((c) => ({ s: c.item, w: c.window }));
}
