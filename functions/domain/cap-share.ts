/**
 * The share of a source's bandwidth cap each copy reads at, in AWS, where every copier invocation
 * has its own throttle (no process shares one): by default the cap over `maxConcurrentCopies`, since
 * that many copies may run at once. A window copied alone (the steady state: one window every few
 * minutes) would so wait on half the cap, paid per second. The planner, which knows the windows it
 * leases now and those leased earlier and not completed yet, may give the windows of a run the whole
 * cap between them (`copies` = how many share it) when nothing else of the source is in flight, for a
 * bounded span (`until`): after it, their copies fall back to the default share. Windows leased
 * while a span runs wait in the queue until it has ended (SQS DelaySeconds). So at any moment the
 * copies that may be running never read more than the cap in total:
 *   - within a span: only the span's windows can run (nothing else was in flight, anything leased
 *     later is held back until the span ends), k of them at cap / k each;
 *   - outside every span: every copy reads at cap / maxConcurrentCopies, and at most
 *     maxConcurrentCopies run at once (the SQS event source's maximum concurrency).
 * A copy that outlives its span (slow source, retries) drops to the default share when it ends; a
 * redelivery, a deferral (re-sent with 900 s of delay) or a redrive arrives after the span or finds
 * it ended. Pure: no clock, no I/O.
 */

/** A span never lasts longer than this: later windows wait at most this long in the queue. */
export const SHARE_SPAN_MAX_SECONDS = 600;
/** Time for the queue to hand a window to a copier and the copier to start (part of the span). */
export const SHARE_START_SECONDS = 60;
/** Clocks of the planner and the copiers (both AWS's) may differ by this much: delays add it. */
export const SHARE_CLOCK_MARGIN_SECONDS = 2;

/** What a message says of its share: `copies` copies share the cap until `until` (unix seconds). */
export interface CapShare {
  copies: number;
  until: number;
}

export interface ShareInput {
  /** The source's maxConcurrentCopies (what shares the cap by default). */
  maxConcurrentCopies: number;
  /**
   * Whether this source's copies have a throttle each (standard queue, no per-server cap): false
   * for a Central source (its servers' caps and FIFO groups) and a source capped at one copy.
   */
  eligible: boolean;
  /** Whether every stream of the source was read this run: an unread one may have windows in flight. */
  allStreamsRead: boolean;
  /**
   * The windows leased earlier and not completed (lease not ended, no completion record): the end of
   * each one's span (`until`), or undefined when it reads at the default share.
   */
  inFlight: readonly (number | undefined)[];
  /** Windows this run leases (chosen, before the lease writes). */
  newWindows: number;
  /** Seconds the largest new window takes at the whole cap (bytes x 8 / cap bits per second). */
  largestWindowSecondsAtCap: number;
  /**
   * Seconds a window may wait in the queue and still start its copy in time: leaseSeconds minus the
   * copier's timeout and the start margin (a span never makes a later window stale).
   */
  leaseSlackSeconds: number;
  now: number;
}

export interface ShareDecision {
  /** The share given to this run's windows; undefined: the default share. */
  share?: CapShare;
  /** Seconds this run's windows wait in the queue before a copier may take them (0: none). */
  delaySeconds: number;
}

export function shareForNewWindows(i: ShareInput): ShareDecision {
  // A span still running: whatever is leased now waits until it has ended, at the default share.
  const spanEnd = Math.max(0, ...i.inFlight.map((u) => u ?? 0));
  const delaySeconds = spanEnd > i.now ? spanEnd - i.now + SHARE_CLOCK_MARGIN_SECONDS : 0;
  if (delaySeconds > 0 || i.newWindows === 0) return { delaySeconds };
  if (!i.eligible || !i.allStreamsRead || i.inFlight.length > 0) return { delaySeconds: 0 };
  if (i.maxConcurrentCopies <= 1 || i.newWindows >= i.maxConcurrentCopies) return { delaySeconds: 0 };
  const copies = i.newWindows;
  // The copies at cap / copies, twice over, and the time to start: enough for a healthy copy.
  const wanted = SHARE_START_SECONDS + 2 * i.largestWindowSecondsAtCap * copies;
  const span = Math.floor(Math.min(SHARE_SPAN_MAX_SECONDS, wanted, i.leaseSlackSeconds));
  if (span <= 0) return { delaySeconds: 0 };
  return { share: { copies, until: i.now + span }, delaySeconds: 0 };
}

/** How many copies share the cap for a copy of this message at `now` (the default after its span). */
export function copiesSharingAt(
  m: { copies?: number; copiesUntil?: number },
  maxConcurrentCopies: number,
  now: number,
): number {
  const copies = m.copies === undefined ? Number.NaN : Math.floor(m.copies);
  if (!(copies >= 1) || m.copiesUntil === undefined || !(now < m.copiesUntil)) return maxConcurrentCopies;
  return Math.min(maxConcurrentCopies, copies);
}
