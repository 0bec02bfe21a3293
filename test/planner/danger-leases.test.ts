/**
 * Leases while a stream is in danger (its margin below `marginWarningSeconds`): the source's copies
 * go earliest deadline first, and the copies leased by earlier runs hold the copiers first, so a run
 * soon after another queues nothing its copiers cannot start before the leases end
 * (choose-windows.ts, the deadline branch). Against the embedded emulator and the simulator.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const START = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);

/** The source of these tests: one 16 kbit/s stream, 2 h deep, recording since an hour before START. */
function harness(marginWarningSeconds: number): Promise<Harness> {
  return startHarness({
    sim: {
      streams: [
        {
          name: "cam1",
          bitrateBps: 16_000,
          depthSeconds: 2 * HOUR,
          ranges: [{ from: START - HOUR, to: Number.POSITIVE_INFINITY }],
        },
      ],
    },
    // 10 kbit/s for a 16 kbit/s stream: a copy takes longer than its window.
    source: { maxConcurrentCopies: 1, maxBandwidthMbps: 0.01 },
    config: { marginWarningSeconds },
  });
}

/** Seconds one copy of a window takes on the one copier (16 kbit/s read at 10 kbit/s). */
const copySeconds = (m: { duration: number }) => (m.duration * 16_000) / 10_000;

describe("a stream in danger, planned twice", () => {
  it("counts the copies leased by the first run against the second: nothing more is queued until they could have started", async () => {
    h = await harness(40 * 60);
    const rt = await h.runtime();
    // 30 minutes in, the oldest second goes in 30 minutes: in danger, deadline order.
    h.clock.advance(30 * 60);
    const first = (await rt.plan()).sources[0]!;
    const cam1 = first.streams.find((s) => s.stream === "cam1")!;
    expect(cam1.marginSeconds).toBe(30 * 60);
    expect(first.planned.length).toBeGreaterThan(0);
    // The oldest window leads: deadline order, not the live edge first.
    expect(first.planned[0]!.from).toBeLessThan(START - HOUR + 30 * 60 + 600);
    // One after another on the one copier, the copies queued are those that start within half the
    // time the lease leaves to start copies ((3600 - 60) / 2 s); the next would start after it.
    const startBy = (h.config.leaseSeconds - rt.copyTimeoutSeconds) / 2;
    let start = 0;
    for (const m of first.planned) {
      expect(start, `the copy of ${m.from}`).toBeLessThan(startBy);
      start += copySeconds(m);
    }
    expect(start).toBeGreaterThanOrEqual(startBy);
    expect(cam1.deferred).toBeGreaterThan(0);
    // A minute later, nothing copied: the leased copies fill the one copier past this run's start
    // time, so nothing new is queued.
    h.clock.advance(60);
    const second = (await rt.plan()).sources[0]!;
    expect(second.errors).toEqual([]);
    expect(second.planned).toEqual([]);
    // With the copier busy with those copies, the windows after them start too late: the run says
    // which seconds will be lost, the first of them no earlier than the first run said.
    const atRisk = second.streams.find((s) => s.stream === "cam1")!.atRisk ?? [];
    expect(atRisk.length).toBeGreaterThan(0);
    expect(atRisk[0]!.from).toBeGreaterThanOrEqual(START - HOUR + 30 * 60 + 60);
    // Once the leases end, the windows are queued again.
    h.clock.advance(2 * HOUR);
    expect((await rt.plan()).sources[0]!.planned.length).toBeGreaterThan(0);
  }, 60_000);

  it("a margin exactly at the warning threshold is not danger: the live edge goes first", async () => {
    // The same stream, the threshold at the 30 minutes its margin has: no race with retention yet.
    h = await harness(30 * 60);
    const rt = await h.runtime();
    h.clock.advance(30 * 60);
    const report = (await rt.plan()).sources[0]!;
    expect(report.streams.find((s) => s.stream === "cam1")!.marginSeconds).toBe(30 * 60);
    expect(report.planned.length).toBeGreaterThan(0);
    // The live edge first: the newest window, not the oldest.
    const horizon = h.clock.now() - h.config.settleSeconds;
    const newest = report.planned[0]!;
    expect(newest.from + newest.duration).toBeGreaterThan(horizon - 120);
  }, 60_000);

  it("a stream whose lacking seconds are all leased puts its source in no danger: the others' live edge goes first", async () => {
    h = await startHarness({
      sim: {
        streams: [
          // Recorded for 10 minutes an hour ago and 2 h deep: its oldest second goes in 30 minutes.
          {
            name: "cam1",
            bitrateBps: 2e6,
            depthSeconds: 2 * HOUR,
            ranges: [{ from: START - HOUR, to: START - HOUR + 600 }],
          },
          // Recording on, a day deep: far from danger, with more back-fill than a run starts.
          {
            name: "cam2",
            bitrateBps: 2e6,
            depthSeconds: 24 * HOUR,
            ranges: [{ from: START - 24 * HOUR, to: Number.POSITIVE_INFINITY }],
          },
        ],
      },
      source: { maxConcurrentCopies: 1, maxBandwidthMbps: 10 },
      config: { marginWarningSeconds: 40 * 60 },
    });
    const rt = await h.runtime();
    h.clock.advance(30 * 60);
    // In danger: deadline order; cam1's ten minutes (the earliest deadlines) are all leased.
    const first = (await rt.plan()).sources[0]!;
    const cam1 = (r: typeof first) => r.streams.find((s) => s.stream === "cam1")!;
    expect(cam1(first).marginSeconds).toBe(30 * 60);
    expect(first.planned.filter((m) => m.stream === "cam1").reduce((n, m) => n + m.duration, 0)).toBe(600);
    // A minute on: cam1 still lacks its ten minutes (leased, not copied), but has nothing left to
    // queue, so the source is not in danger any more: cam2's live edge is queued, newest first.
    h.clock.advance(60);
    const second = (await rt.plan()).sources[0]!;
    expect(cam1(second).marginSeconds).toBeLessThan(40 * 60);
    expect(second.errors).toEqual([]);
    const horizon = h.clock.now() - h.config.settleSeconds;
    expect(second.planned.length).toBeGreaterThan(0);
    expect(second.planned[0]!.stream).toBe("cam2");
    expect(second.planned[0]!.from + second.planned[0]!.duration).toBeGreaterThan(horizon - 600);
  }, 60_000);
});
