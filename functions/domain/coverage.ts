/**
 * Coverage of one stream: what the source's archive holds against what the backup holds, inside the
 * retention window. Pure: every time comes in as an argument (unix seconds).
 *
 * Seconds are "due" once the planner would copy them: before the settle margin (`now - settle`),
 * and, for the range still recording, up to the last window boundary before that (the planner
 * leaves the open window for a later run so stored windows keep their aligned shape). Later
 * archive seconds are "not yet due": normal, not missing.
 */
import {
  clipRanges,
  intersectRanges,
  normalizeRanges,
  subtractRanges,
  type TimeRange,
  totalSeconds,
} from "./ranges.ts";

export interface CoverageInput {
  /** What the source recorded (normal form), or undefined when the source could not be asked. */
  archive: readonly TimeRange[] | undefined;
  /** What the backup holds (normal form): the manifest's covered ranges and pending records. */
  backedUp: readonly TimeRange[];
  /** Oldest second kept: now - retention. */
  retentionStart: number;
  now: number;
  settleSeconds: number;
  /** The stream's window length (the planner's choice for its bitrate). */
  windowSeconds: number;
}

export interface Coverage {
  /** Archive seconds before this are due for backup. */
  dueUntil: number;
  /** Archive seconds in the retention window (undefined: archive unknown). */
  archiveSeconds: number | undefined;
  dueSeconds: number | undefined;
  /** Due archive seconds the backup holds. */
  coveredSeconds: number | undefined;
  /** coveredSeconds / dueSeconds in percent (100 when nothing is due). */
  percent: number | undefined;
  /** Due archive seconds the backup lacks. */
  missing: TimeRange[] | undefined;
  /** Archive seconds not due yet (the settle margin and the open window). */
  notYetDue: TimeRange[] | undefined;
  /** Seconds the backup holds in the retention window (may exceed the archive: the source forgot them). */
  backedUpSeconds: number;
  /** Newest second stored (exclusive end); undefined when nothing is. */
  head: number | undefined;
  /** How far the newest stored second trails now. */
  lagSeconds: number | undefined;
}

/** The archive seconds the planner would copy by `now`: its "copyable" ranges. */
export function dueRanges(
  archive: readonly TimeRange[],
  retentionStart: number,
  horizon: number,
  windowSeconds: number,
): TimeRange[] {
  const ranges = clipRanges(archive, retentionStart, horizon);
  const last = ranges.at(-1);
  if (last && last.to === horizon && horizon % windowSeconds !== 0) {
    last.to = Math.max(last.from, Math.floor(horizon / windowSeconds) * windowSeconds);
    if (last.to === last.from) ranges.pop();
  }
  return ranges;
}

export function coverage(input: CoverageInput): Coverage {
  const backedUp = clipRanges(normalizeRanges(input.backedUp), input.retentionStart, input.now);
  const head = backedUp.at(-1)?.to;
  const base = {
    backedUpSeconds: totalSeconds(backedUp),
    head,
    lagSeconds: head === undefined ? undefined : Math.max(0, input.now - head),
  };
  const horizon = input.now - input.settleSeconds;
  if (!input.archive) {
    return {
      ...base,
      dueUntil: horizon,
      archiveSeconds: undefined,
      dueSeconds: undefined,
      coveredSeconds: undefined,
      percent: undefined,
      missing: undefined,
      notYetDue: undefined,
    };
  }
  const archive = clipRanges(input.archive, input.retentionStart, input.now);
  const due = dueRanges(archive, input.retentionStart, horizon, input.windowSeconds);
  const dueSeconds = totalSeconds(due);
  const coveredSeconds = totalSeconds(intersectRanges(due, backedUp));
  return {
    ...base,
    dueUntil: due.at(-1)?.to ?? horizon,
    archiveSeconds: totalSeconds(archive),
    dueSeconds,
    coveredSeconds,
    percent: dueSeconds > 0 ? (100 * coveredSeconds) / dueSeconds : 100,
    missing: subtractRanges(due, backedUp),
    notYetDue: subtractRanges(archive, due),
  };
}
