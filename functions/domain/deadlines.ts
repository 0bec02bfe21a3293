/**
 * When the source deletes what the backup lacks, and the order of copies that saves the most of it.
 * Pure: every time comes in as an argument (unix seconds).
 *
 * Flussonic keeps a stream's archive `expiration` seconds back from now (the stream's DVR
 * `expiration`, its archive depth) and deletes older seconds as time goes on; a disk limit
 * (`storage_limit`, `disk_usage_limit`) can make it delete its oldest seconds sooner. The depth the
 * deadlines are computed from (sourceDepth) is therefore:
 * - the API's `expiration` when the source reports it, else the stream's configured retention;
 * - but the observed one, `now - oldest recorded second`, when that is shorter and the oldest
 *   second was seen moving since it was last noted (the source deletes by disk space, not by age).
 *   An oldest second that stands still is a young archive, not a short depth, and is not trusted.
 * A second older than `now - depth` that the source still holds (its cleaner runs now and then, or
 * an episode keeps it) is due now: the archive is trusted that it exists, the depth that it may go
 * at any moment.
 */
import type { TimeRange } from "./ranges.ts";
import type { CopyWindow } from "./windows.ts";

export type DepthBasis = "expiration" | "moving start" | "retention";

export interface SourceDepth {
  /** Seconds the source keeps back from now. */
  seconds: number;
  /** Where that figure comes from. */
  basis: DepthBasis;
}

export interface DepthInput {
  /** The stream's DVR `expiration` from the source's API (seconds), when reported. */
  expirationSeconds: number | undefined;
  /** The oldest second the source holds now, when known. */
  oldest: number | undefined;
  /** The oldest second noted at an earlier run, when known. */
  previousOldest: number | undefined;
  /** The stream's configured retention (seconds): the fallback when the source does not say. */
  retentionSeconds: number;
  now: number;
}

/** The depth the deadlines are computed from (see the module comment for which is trusted). */
export function sourceDepth(input: DepthInput): SourceDepth {
  const moving =
    input.oldest !== undefined && input.previousOldest !== undefined && input.oldest > input.previousOldest
      ? Math.max(0, input.now - input.oldest)
      : undefined;
  const stated: SourceDepth =
    input.expirationSeconds !== undefined && input.expirationSeconds > 0
      ? { seconds: input.expirationSeconds, basis: "expiration" }
      : { seconds: input.retentionSeconds, basis: "retention" };
  return moving !== undefined && moving < stated.seconds
    ? { seconds: moving, basis: "moving start" }
    : stated;
}

/** The moment the source deletes second `t` (never before now: an overdue second may go any moment). */
export function deletionDeadline(t: number, depth: SourceDepth, now: number): number {
  return Math.max(now, t + depth.seconds);
}

/**
 * The margin: seconds left until the oldest second the backup lacks (`lacking`, oldest first) is
 * deleted at the source; undefined when it lacks nothing.
 */
export function marginSeconds(
  lacking: readonly TimeRange[],
  depth: SourceDepth,
  now: number,
): number | undefined {
  const oldest = lacking[0];
  return oldest === undefined ? undefined : deletionDeadline(oldest.from, depth, now) - now;
}

/**
 * The latest moment a copy of window `w` may start and still hold all of it: its first second is
 * read first, so the copy must start before that second is deleted; and when the copy reads slower
 * than real time (`copySeconds` > the window's duration), its last second must be read before that
 * one is deleted too.
 */
export function latestStart(w: CopyWindow, depth: SourceDepth, copySeconds: number): number {
  return Math.min(w.from + depth.seconds, w.from + w.duration + depth.seconds - copySeconds);
}

/** A window to schedule: the latest moment its copy may start, and how long the copy takes. */
export interface Candidate<T> {
  item: T;
  window: CopyWindow;
  latestStart: number;
  copySeconds: number;
}

export interface ScheduleInput<T> {
  /** Candidates in order of latest start (earliest first): see byDeadline. */
  candidates: Iterable<Candidate<T>>;
  /** Copies at once (the source's cap). */
  slots: number;
  /** When each slot is free first (copies already leased); missing ones are free now. */
  busyUntil?: readonly number[];
  now: number;
  /** Copies that start before this are chosen (what this run queues); later ones are predicted. */
  startBy: number;
  /** Stop after this many candidates (a bound on the work for huge backlogs). */
  maxCandidates?: number;
}

export interface Schedule<T> {
  /** Chosen to copy now, in deadline order. */
  chosen: Candidate<T>[];
  /** Windows whose copy cannot start before their first second is deleted: not started, lost. */
  late: Candidate<T>[];
  /** False when maxCandidates cut the prediction short. */
  complete: boolean;
}

/**
 * Earliest deadline first over `slots` copiers: each window goes to the slot free first; a window
 * that slot cannot start in time is not started (it would be lost all the same), and its time goes
 * to the windows after it that can still be saved. Windows starting before `startBy` are chosen;
 * the schedule goes on past it to predict which windows will be lost (`late`).
 */
export function scheduleEarliestDeadline<T>(input: ScheduleInput<T>): Schedule<T> {
  const free = Array.from({ length: Math.max(1, input.slots) }, (_, i) =>
    Math.max(input.now, input.busyUntil?.[i] ?? input.now),
  );
  const chosen: Candidate<T>[] = [];
  const late: Candidate<T>[] = [];
  let seen = 0;
  const max = input.maxCandidates ?? Number.POSITIVE_INFINITY;
  for (const c of input.candidates) {
    if (seen++ >= max) return { chosen, late, complete: false };
    let slot = 0;
    for (let i = 1; i < free.length; i++) if (free[i]! < free[slot]!) slot = i;
    const start = free[slot]!;
    if (start > c.latestStart) {
      late.push(c);
      continue;
    }
    free[slot] = start + c.copySeconds;
    if (start < input.startBy) chosen.push(c);
  }
  return { chosen, late, complete: true };
}

/**
 * Merges candidate sequences (one per stream, each in order of latest start) into one, earliest
 * latest start first (ties: the older window first), lazily: a stream's backlog is cut into windows
 * only as far as the schedule reads it.
 */
export function* byDeadline<T>(sequences: Iterable<Candidate<T>>[]): Generator<Candidate<T>> {
  const heads: { it: Iterator<Candidate<T>>; c: Candidate<T> }[] = [];
  for (const s of sequences) {
    const it = s[Symbol.iterator]();
    const n = it.next();
    if (!n.done) heads.push({ it, c: n.value });
  }
  const less = (a: Candidate<T>, b: Candidate<T>) =>
    a.latestStart < b.latestStart || (a.latestStart === b.latestStart && a.window.from < b.window.from);
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heads.length && less(heads[l]!.c, heads[m]!.c)) m = l;
      if (r < heads.length && less(heads[r]!.c, heads[m]!.c)) m = r;
      if (m === i) return;
      [heads[i], heads[m]] = [heads[m]!, heads[i]!];
      i = m;
    }
  };
  for (let i = heads.length >> 1; i >= 0; i--) down(i);
  while (heads.length > 0) {
    const top = heads[0]!;
    yield top.c;
    const n = top.it.next();
    if (n.done) {
      const last = heads.pop()!;
      if (heads.length > 0) {
        heads[0] = last;
        down(0);
      }
    } else {
      top.c = n.value;
      down(0);
    }
  }
}

/**
 * The margin below which a stream is in danger: the configured `marginWarningSeconds`, but never
 * more than half the source's depth. A healthy backup lags by minutes, so its margin is about the
 * depth; a threshold above the depth (6 h against a 3-hour archive) would call every run of a
 * short-retention source in danger and switch it to deadline order for good.
 */
export function marginWarningAt(configuredSeconds: number, depthSeconds: number | undefined): number {
  return depthSeconds === undefined ? configuredSeconds : Math.min(configuredSeconds, depthSeconds / 2);
}
