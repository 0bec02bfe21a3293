/**
 * The share of the cap the planner gives the windows of a run (functions/domain/cap-share.ts): the
 * whole cap between them only when nothing else of the source can be copying, for a bounded span;
 * later windows wait until the span has ended; a message's share falls back to the default after it.
 */
import { describe, expect, it } from "vitest";
import {
  copiesSharingAt,
  SHARE_CLOCK_MARGIN_SECONDS,
  SHARE_SPAN_MAX_SECONDS,
  SHARE_START_SECONDS,
  type ShareInput,
  shareForNewWindows,
} from "../../functions/domain/cap-share.ts";

const NOW = 1_800_000_000;
const base: ShareInput = {
  maxConcurrentCopies: 2,
  eligible: true,
  allStreamsRead: true,
  inFlight: [],
  newWindows: 1,
  largestWindowSecondsAtCap: 12,
  leaseSlackSeconds: 2400,
  now: NOW,
};

describe("shareForNewWindows", () => {
  it("gives a window leased alone the whole cap for the time to start and twice its copy", () => {
    expect(shareForNewWindows(base)).toEqual({
      share: { copies: 1, until: NOW + SHARE_START_SECONDS + 2 * 12 },
      delaySeconds: 0,
    });
  });

  it("splits the whole cap among the run's windows when fewer than maxConcurrentCopies", () => {
    const d = shareForNewWindows({ ...base, maxConcurrentCopies: 4, newWindows: 3 });
    // Three copies at a third of the cap each: each takes three times as long as alone.
    expect(d).toEqual({
      share: { copies: 3, until: NOW + SHARE_START_SECONDS + 2 * 12 * 3 },
      delaySeconds: 0,
    });
  });

  it("keeps the default share when the run leases maxConcurrentCopies windows or more", () => {
    expect(shareForNewWindows({ ...base, newWindows: 2 })).toEqual({ delaySeconds: 0 });
    expect(shareForNewWindows({ ...base, newWindows: 7 })).toEqual({ delaySeconds: 0 });
  });

  it("keeps the default share while any earlier window is in flight", () => {
    expect(shareForNewWindows({ ...base, inFlight: [undefined] })).toEqual({ delaySeconds: 0 });
    // A span that has ended counts as the default share: no delay, no larger share.
    expect(shareForNewWindows({ ...base, inFlight: [NOW - 1] })).toEqual({ delaySeconds: 0 });
    expect(shareForNewWindows({ ...base, inFlight: [NOW] })).toEqual({ delaySeconds: 0 });
  });

  it("holds this run's windows in the queue until a running span has ended", () => {
    expect(shareForNewWindows({ ...base, inFlight: [undefined, NOW + 40, NOW + 10] })).toEqual({
      delaySeconds: 40 + SHARE_CLOCK_MARGIN_SECONDS,
    });
    // Nothing new: nothing to hold.
    expect(shareForNewWindows({ ...base, newWindows: 0, inFlight: [NOW + 40] }).share).toBeUndefined();
  });

  it("gives no larger share where copies do not have a throttle each, or a stream went unread", () => {
    expect(shareForNewWindows({ ...base, eligible: false })).toEqual({ delaySeconds: 0 });
    expect(shareForNewWindows({ ...base, allStreamsRead: false })).toEqual({ delaySeconds: 0 });
    expect(shareForNewWindows({ ...base, maxConcurrentCopies: 1 })).toEqual({ delaySeconds: 0 });
  });

  it("bounds the span by its maximum and by the lease's slack (a later window is never made stale)", () => {
    const long = shareForNewWindows({ ...base, largestWindowSecondsAtCap: 400 });
    expect(long.share?.until).toBe(NOW + SHARE_SPAN_MAX_SECONDS);
    expect(shareForNewWindows({ ...base, leaseSlackSeconds: 50 }).share?.until).toBe(NOW + 50);
    expect(shareForNewWindows({ ...base, leaseSlackSeconds: 0 })).toEqual({ delaySeconds: 0 });
  });
});

describe("copiesSharingAt", () => {
  it("is the message's copies within its span and maxConcurrentCopies outside it or without one", () => {
    const m = { copies: 1, copiesUntil: NOW + 30 };
    expect(copiesSharingAt(m, 2, NOW)).toBe(1);
    expect(copiesSharingAt(m, 2, NOW + 29.9)).toBe(1);
    expect(copiesSharingAt(m, 2, NOW + 30)).toBe(2);
    expect(copiesSharingAt({}, 3, NOW)).toBe(3);
    expect(copiesSharingAt({ copies: 1 }, 3, NOW)).toBe(3);
  });

  it("never gives more copies than the source allows; a share it cannot read is the default", () => {
    expect(copiesSharingAt({ copies: 5, copiesUntil: NOW + 9 }, 2, NOW)).toBe(2);
    expect(copiesSharingAt({ copies: 0, copiesUntil: NOW + 9 }, 2, NOW)).toBe(2);
    expect(copiesSharingAt({ copies: Number.NaN, copiesUntil: NOW + 9 }, 2, NOW)).toBe(2);
    expect(copiesSharingAt({ copies: 1, copiesUntil: Number.NaN }, 2, NOW)).toBe(2);
  });
});
