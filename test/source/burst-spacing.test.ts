/**
 * Bursts of a source without Range (functions/source/throttle.ts, spaceBurst): a whole window the
 * kernels take at once lands no sooner than a second's worth of bursts allows, counted from when
 * the one before landed, so two copies' windows of about a second's worth each never land in the
 * same second. On a fake clock: the spacing is the rule, not a measured rate.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { BURST_SPAN_MS, TokenBucket } from "../../functions/source/throttle.ts";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const RATE = 250_000;

function bucket(): TokenBucket {
  return new TokenBucket(RATE, { nowMs: () => Date.now() });
}

/** Lets `spaceBurst` go through, landing right away; resolves to the time it passed. */
async function land(b: TokenBucket, bytes: number, passed: number[]): Promise<void> {
  const landed = await b.spaceBurst(bytes);
  passed.push(Date.now());
  landed();
}

describe("burst spacing", () => {
  it("two bursts of nearly a second's worth each land more than a second apart", async () => {
    const b = bucket();
    const passed: number[] = [];
    const both = Promise.all([land(b, 240_000, passed), land(b, 240_000, passed)]);
    await vi.advanceTimersByTimeAsync(5000);
    await both;
    expect(passed).toHaveLength(2);
    expect(passed[1]! - passed[0]!).toBeGreaterThan(BURST_SPAN_MS);
  });

  it("bursts that come to a second's worth together pass together", async () => {
    const b = bucket();
    const passed: number[] = [];
    const all = Promise.all([land(b, 100_000, passed), land(b, 100_000, passed), land(b, 50_000, passed)]);
    await vi.advanceTimersByTimeAsync(0);
    await all;
    expect(passed).toEqual([passed[0], passed[0], passed[0]]);
  });

  it("a burst bigger than a second's worth passes once it is alone in the span", async () => {
    const b = bucket();
    const passed: number[] = [];
    const both = Promise.all([land(b, 10_000, passed), land(b, 4 * RATE, passed)]);
    await vi.advanceTimersByTimeAsync(5000);
    await both;
    expect(passed[1]! - passed[0]!).toBeGreaterThan(BURST_SPAN_MS);
    expect(passed[1]! - passed[0]!).toBeLessThan(BURST_SPAN_MS + 100);
  });

  it("the next burst is spaced from when the one before landed, not from when it was let through", async () => {
    const b = bucket();
    const first = await b.spaceBurst(200_000);
    const t0 = Date.now();
    let secondAt: number | undefined;
    const second = b.spaceBurst(200_000).then((landed) => {
      secondAt = Date.now();
      landed();
    });
    // The first request takes 700 ms to answer (a slow source): the second waits for its landing.
    await vi.advanceTimersByTimeAsync(700);
    expect(secondAt).toBeUndefined();
    first();
    await vi.advanceTimersByTimeAsync(3000);
    await second;
    expect(secondAt! - t0).toBeGreaterThan(700 + BURST_SPAN_MS);
  });
});
