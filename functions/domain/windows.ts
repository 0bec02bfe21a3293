/**
 * Planning: which archive windows are still missing from the backup, cut into copyable pieces.
 * Pure: times come in as arguments.
 */
import { ALL_WINDOW_LENGTHS_SECONDS, WINDOW_LENGTHS_SECONDS } from "./archive.ts";
import { type BandwidthPeriod, minutesOfDay } from "./bandwidth-schedule.ts";
import {
  clipRanges,
  inNormalForm,
  intersectRanges,
  normalizeRanges,
  subtractRanges,
  type TimeRange,
} from "./ranges.ts";

/** One archive window to copy: `[from, from + duration)`, unix seconds. */
export interface CopyWindow {
  from: number;
  duration: number;
}

export interface WindowLengthInput {
  /** Upper bound from the config. */
  maxWindowSeconds: number;
  /**
   * Lower bound for the whole-request rule below (config `minWindowSeconds`; default
   * DEFAULT_MIN_WINDOW_SECONDS). The copy-budget rule never goes below 60 s.
   */
  minWindowSeconds?: number;
  /** Stream bitrate (bits/s) when known. */
  bitrateBps: number | undefined;
  /** Bandwidth one copier may use (bits/s): the source cap shared among its copiers. */
  copierBandwidthBps: number;
  /** How long one copy may take at that speed (a safe share of the copier timeout). */
  copyBudgetSeconds: number;
  /**
   * How the source answered the stream's last paced copy: "slices" (Range), "whole" (one request),
   * absent when not known yet (sized as "whole", the cautious guess).
   */
  reads?: "slices" | "whole";
}

/** Bitrate assumed when the source does not say and nothing is stored yet (a generous HD figure). */
export const ASSUMED_BITRATE_BPS = 8_000_000;

/** Default `minWindowSeconds`: the shortest standard length, so short windows are opt-in (S3 requests). */
export const DEFAULT_MIN_WINDOW_SECONDS = 60;

/**
 * A whole-window request (a source without Range) arrives in one burst: it should be at most this
 * many seconds of one copier's bandwidth, so that the source's busiest second stays within 1.5 times
 * the cap even when every copier's burst lands in it.
 */
export const WHOLE_BURST_SECONDS = 0.5;

/**
 * The most the kernels (the source's send buffer and our receive window) take of a response at
 * once before it is read, on Linux: a whole-window request to a source without Range is one burst
 * of its window's bytes up to this size (FlussonicClient.openWindow pays such windows whole).
 */
export const KERNEL_BURST_BYTES = 4 * 1024 * 1024;

/**
 * The window length for a stream: the longest allowed length (a divisor of a day, so windows stay
 * aligned to UTC boundaries) whose copy at the copier's bandwidth fits the copy budget.
 *
 * A source that does not answer Range (or is not known to) gets one request per window. A window
 * smaller than what the kernels take at once (KERNEL_BURST_BYTES) then leaves the source in one
 * burst, however slowly it is read. When that burst is more than WHOLE_BURST_SECONDS of the copier's
 * bandwidth, the window is cut shorter, down to `minWindowSeconds`: to the longest length whose
 * bytes fit, else to the shortest allowed length if that at least halves the burst (else shortening
 * is not worth its S3 requests). Larger windows are not shortened: their burst is the kernels' lead,
 * paid before asking, and the rest is paced as it is read.
 */
export function windowLengthFor(input: WindowLengthInput): number {
  const bitrate = input.bitrateBps && input.bitrateBps > 0 ? input.bitrateBps : ASSUMED_BITRATE_BPS;
  const longestThatFits = (input.copyBudgetSeconds * input.copierBandwidthBps) / bitrate;
  const allowed = WINDOW_LENGTHS_SECONDS.filter((n) => n <= input.maxWindowSeconds);
  const fitting = allowed.filter((n) => n <= longestThatFits);
  const length = fitting.at(-1) ?? allowed[0] ?? WINDOW_LENGTHS_SECONDS[0];
  if (input.reads === "slices" || !input.bitrateBps || !Number.isFinite(input.copierBandwidthBps)) {
    return length;
  }
  const bytes = (n: number) => (bitrate * n) / 8;
  const budget = (WHOLE_BURST_SECONDS * input.copierBandwidthBps) / 8;
  if (bytes(length) > KERNEL_BURST_BYTES || bytes(length) <= budget) return length;
  const floor = input.minWindowSeconds ?? DEFAULT_MIN_WINDOW_SECONDS;
  const shorter = ALL_WINDOW_LENGTHS_SECONDS.filter((n) => n >= floor && n < length);
  const fits = shorter.filter((n) => bytes(n) <= budget).at(-1);
  if (fits !== undefined) return fits;
  const shortest = shorter[0];
  return shortest !== undefined && bytes(shortest) <= bytes(length) / 2 ? shortest : length;
}

/**
 * The lowest cap (Mbit/s) a copy may run under at some time of day: the smallest positive cap of
 * the schedule's periods and of `defaultMbps` where no period applies. A copy may start under the
 * full cap and go on into a slower period (the copier's throttle follows the schedule), so windows
 * are sized for this cap. Periods with 0 (no copying) start no copy and are not counted.
 */
export function lowestCopyingMbps(periods: readonly BandwidthPeriod[], defaultMbps: number): number {
  if (periods.length === 0) return defaultMbps;
  const spans = periods.map((p) => ({
    from: minutesOfDay(p.from),
    to: minutesOfDay(p.to),
    mbps: p.maxBandwidthMbps,
  }));
  let lowest = Number.POSITIVE_INFINITY;
  for (let minute = 0; minute < 1440; minute++) {
    const p = spans.find((s) =>
      s.from <= s.to ? minute >= s.from && minute < s.to : minute >= s.from || minute < s.to,
    );
    const mbps = p ? p.mbps : defaultMbps;
    if (mbps > 0) lowest = Math.min(lowest, mbps);
  }
  return Number.isFinite(lowest) ? lowest : defaultMbps;
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
  // Minus the covered ranges (normal form already), then minus the leased ones: the same as minus
  // their union, without copying the covered ranges (a planner run does this for every stream).
  const leased = normalizeRanges(input.leased.map((l) => ({ from: l.from, to: l.from + l.duration })));
  const covered = inNormalForm(input.covered) ? input.covered : normalizeRanges(input.covered);
  return subtractRanges(subtractRanges(wanted, covered), leased);
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

/**
 * Stored windows to restore `[from, to)` from, without overlap: as many of the range's seconds as
 * possible and, of equal covers, the fewest windows (a whole window rather than its halves). Two
 * copies of one span can exist, e.g. {0,600} next to {0,300} and {300,300} after a planner lost a
 * lease and then cut windows of another length; joining both would play those minutes twice.
 * Returns the chosen windows oldest first.
 */
export function nonOverlappingCover<W extends CopyWindow>(
  windows: readonly W[],
  from: number,
  to: number,
): W[] {
  const list = windows
    .filter((w) => w.duration > 0 && w.from < to && w.from + w.duration > from)
    .sort((a, b) => a.from + a.duration - (b.from + b.duration) || b.duration - a.duration);
  const end = (w: W) => w.from + w.duration;
  const weight = (w: W) => Math.min(end(w), to) - Math.max(w.from, from);
  // best[i]: the best cover using only the first i windows (by end): seconds, windows, taken.
  const seconds = [0];
  const count = [0];
  const taken: boolean[] = [false];
  const previous: number[] = [0];
  for (let i = 1; i <= list.length; i++) {
    const w = list[i - 1]!;
    // The last window (by end) that ends at or before w starts.
    let lo = 0;
    let hi = i - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (end(list[mid - 1]!) <= w.from) lo = mid;
      else hi = mid - 1;
    }
    const withSeconds = seconds[lo]! + weight(w);
    const withCount = count[lo]! + 1;
    const take =
      withSeconds > seconds[i - 1]! || (withSeconds === seconds[i - 1]! && withCount < count[i - 1]!);
    seconds.push(take ? withSeconds : seconds[i - 1]!);
    count.push(take ? withCount : count[i - 1]!);
    taken.push(take);
    previous.push(take ? lo : i - 1);
  }
  const out: W[] = [];
  for (let i = list.length; i > 0; i = previous[i]!) if (taken[i]) out.push(list[i - 1]!);
  return out.reverse();
}
