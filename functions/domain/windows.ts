/**
 * Planning: which archive windows are still missing from the backup, cut into copyable pieces.
 * Pure: times come in as arguments.
 */
import { WINDOW_LENGTHS_SECONDS } from "./archive.ts";
import { clipRanges, intersectRanges, normalizeRanges, subtractRanges, type TimeRange } from "./ranges.ts";

/** One archive window to copy: `[from, from + duration)`, unix seconds. */
export interface CopyWindow {
  from: number;
  duration: number;
}

export interface WindowLengthInput {
  /** Upper bound from the config. */
  maxWindowSeconds: number;
  /** Stream bitrate (bits/s) when known. */
  bitrateBps: number | undefined;
  /** Bandwidth one copier may use (bits/s): the source cap shared among its copiers. */
  copierBandwidthBps: number;
  /** How long one copy may take at that speed (a safe share of the copier timeout). */
  copyBudgetSeconds: number;
}

/** Bitrate assumed when the source does not say and nothing is stored yet (a generous HD figure). */
export const ASSUMED_BITRATE_BPS = 8_000_000;

/**
 * The window length for a stream: the longest allowed length (a divisor of a day, so windows stay
 * aligned to UTC boundaries) whose copy at the copier's bandwidth fits the copy budget.
 */
export function windowLengthFor(input: WindowLengthInput): number {
  const bitrate = input.bitrateBps && input.bitrateBps > 0 ? input.bitrateBps : ASSUMED_BITRATE_BPS;
  const longestThatFits = (input.copyBudgetSeconds * input.copierBandwidthBps) / bitrate;
  const allowed = WINDOW_LENGTHS_SECONDS.filter((n) => n <= input.maxWindowSeconds);
  const fitting = allowed.filter((n) => n <= longestThatFits);
  return fitting.at(-1) ?? allowed[0] ?? WINDOW_LENGTHS_SECONDS[0];
}

export interface MissingInput {
  /** What the source has recorded (normal form). */
  recorded: readonly TimeRange[];
  /** What the backup already holds (normal form). */
  covered: readonly TimeRange[];
  /** Windows queued or being copied (any order). */
  leased: readonly CopyWindow[];
  /** Oldest second to keep: now - retention. */
  retentionStart: number;
  /** Newest second to plan: now - settle. */
  horizon: number;
}

/** Recorded seconds inside `[retentionStart, horizon)` that are neither stored nor leased. */
export function missingRanges(input: MissingInput): TimeRange[] {
  const wanted = clipRanges(input.recorded, input.retentionStart, input.horizon);
  const taken = normalizeRanges([
    ...input.covered,
    ...input.leased.map((l) => ({ from: l.from, to: l.from + l.duration })),
  ]);
  return subtractRanges(wanted, taken);
}

/**
 * Cuts missing ranges into windows aligned to multiples of `length` (UTC boundaries, since the
 * lengths divide a day). A window never crosses a gap: a range that starts or ends between two
 * boundaries gives a shorter window. A piece that ends at the horizon between two boundaries is still
 * being recorded and is left for a later run, so that stored windows keep their aligned shape.
 */
export function* cutWindows(
  missing: readonly TimeRange[],
  length: number,
  horizon: number,
): Generator<CopyWindow> {
  for (const r of missing) {
    let from = r.from;
    while (from < r.to) {
      const boundary = (Math.floor(from / length) + 1) * length;
      const to = Math.min(boundary, r.to);
      if (to === horizon && to !== boundary) return;
      yield { from, duration: to - from };
      from = to;
    }
  }
}

/** Same as cutWindows, newest first (to keep the backup close to live before back-filling). */
export function* cutWindowsNewestFirst(
  missing: readonly TimeRange[],
  length: number,
  horizon: number,
): Generator<CopyWindow> {
  for (let i = missing.length - 1; i >= 0; i--) {
    const piece = [...cutWindows([missing[i]!], length, horizon)];
    for (let j = piece.length - 1; j >= 0; j--) yield piece[j]!;
  }
}

/** Seconds of recorded video in `[from, to)`. */
export function recordedSecondsIn(recorded: readonly TimeRange[], from: number, to: number): number {
  let sum = 0;
  for (const r of intersectRanges(recorded, [{ from, to }])) sum += r.to - r.from;
  return sum;
}

/** How many windows cutWindows would yield, without cutting them (for large backlogs). */
export function countWindows(missing: readonly TimeRange[], length: number, horizon: number): number {
  let n = 0;
  for (const r of missing) {
    n += Math.floor((r.to - 1) / length) - Math.floor(r.from / length) + 1;
    if (r.to === horizon && r.to % length !== 0) n--;
  }
  return n;
}
