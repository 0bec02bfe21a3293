/**
 * Source protection under the local runtime, counted by the simulators (the sources' own view):
 * concurrency caps (1 included), the bandwidth cap, back-off on 503 bursts, paused sources.
 */
import { afterEach, describe, expect, it } from "vitest";
import { expectExactCopies, storedWindows } from "../../dev/kit/backup-checks.ts";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { clipRanges } from "../../functions/domain/ranges.ts";
import type { PressureChange } from "../../functions/source/source-pressure.ts";
import { formatSummary, runOnce } from "../../local/once.ts";

const NOW = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const streams = (n: number, bitrateBps: number) =>
  Array.from({ length: n }, (_, i) => ({
    name: `cam${i + 1}`,
    bitrateBps,
    ranges: [{ from: NOW - 2 * HOUR, to: NOW + 1 }],
  }));

describe("source protection", () => {
  it("never runs more downloads at once than each source's cap, a cap of 1 included", async () => {
    // Bodies paced so that each 3 MB window takes about 0.4 s: long enough for downloads to overlap
    // if a cap let them, short enough that src1's 18 windows one at a time take about 7 s.
    h = await startHarness({
      sim: { streams: streams(3, 40_000), faults: { bodyBytesPerSecond: 8_000_000 } },
      source: { retentionDays: 1 / 24, maxConcurrentCopies: 1 },
      more: [
        {
          name: "src2",
          sim: { streams: streams(3, 40_000), faults: { bodyBytesPerSecond: 8_000_000 } },
          source: { retentionDays: 1 / 24, maxConcurrentCopies: 3 },
        },
      ],
    });
    const rt = await h.runtime();
    const run = await runOnce(rt, h.tally);
    expect(run.ok).toBe(true);
    expect(run.copied).toBeGreaterThanOrEqual(2 * 3 * 6);
    expect(h.sims.get("src1")!.meter.peakActive).toBe(1);
    // src2 had enough windows to fill its three slots, and never more, whatever src1 did.
    expect(h.sims.get("src2")!.meter.peakActive).toBe(3);
  });

  it("keeps the bytes per second the source serves under the bandwidth cap", async () => {
    // A cap large against loopback's TCP receive window (about 1.2 MB per connection, taken by the
    // kernel before any read: see the benchmark notes); about 28 MB to copy, 2.8 s at the cap.
    const capMbps = 80;
    h = await startHarness({
      sim: { streams: streams(1, 160_000) },
      source: { retentionDays: 0.5 / 24, maxConcurrentCopies: 2, maxBandwidthMbps: capMbps },
    });
    const rt = await h.runtime();
    const run = await runOnce(rt, h.tally);
    expect(run.ok).toBe(true);
    const capBytes = (capMbps * 1_000_000) / 8;
    const meter = h.sim.meter;
    await meter.settled();
    expect(meter.bytesServed).toBeGreaterThan(2 * capBytes); // long enough to measure
    expect(meter.bytesServed / run.seconds).toBeLessThanOrEqual(1.05 * capBytes);
    expect(meter.maxRate(1000)).toBeLessThanOrEqual(1.5 * capBytes);
  });

  // 48 kbit/s: 3.6 MB per 600 s window, less than the kernels take of a response at once; a cap of
  // 4 Mbit/s over 2 copies: half a second of one copy's share is 125 kB, i.e. 20 s of this stream.
  const smallWindows = (ranges: boolean) => ({
    sim: { streams: streams(1, 48_000), ranges },
    config: { minWindowSeconds: 15 },
    source: { retentionDays: 5 / 1440, maxConcurrentCopies: 2, maxBandwidthMbps: 4 },
  });

  it("cuts small windows of a source without Range so that each one-request burst fits the cap's budget, and holds the cap", async () => {
    h = await startHarness(smallWindows(false));
    const rt = await h.runtime();
    const run = await runOnce(rt, h.tally);
    expect(run.ok).toBe(true);
    const windows = await storedWindows(h, "cam1");
    expect(windows.length).toBeGreaterThanOrEqual(8);
    expect(windows.every((w) => w.duration <= 20 && (w.from + w.duration) % 20 === 0)).toBe(true);
    expect((await rt.store.readManifest("src1", "cam1")).manifest.reads).toBe("whole");
    const lastBoundary = Math.floor((NOW - h.config.settleSeconds) / 20) * 20;
    await expectExactCopies(h, "cam1", clipRanges(h.sim.rangesOf("cam1"), NOW - 300, lastBoundary));
    // One request per window, each a burst of at most 120 kB: no second over 1.5x the cap.
    const archive = h.sim.requests.filter((r) => r.kind === "archive");
    expect(archive.every((r) => r.status === 200)).toBe(true);
    await h.sim.meter.settled();
    expect(h.sim.meter.maxRate(1000)).toBeLessThanOrEqual(1.5 * 500_000);
  });

  it("plans full-length windows for a stream once its source has answered Range", async () => {
    h = await startHarness(smallWindows(true));
    const rt = await h.runtime();
    // Not known yet: the first windows are cut as for a source without Range.
    const run = await runOnce(rt, h.tally);
    expect(run.ok).toBe(true);
    expect((await storedWindows(h, "cam1")).every((w) => w.duration <= 20)).toBe(true);
    expect((await rt.store.readManifest("src1", "cam1")).manifest.reads).toBe("slices");
    const report = await rt.plan();
    expect(report.sources[0]!.streams.find((s) => s.stream === "cam1")!.windowSeconds).toBe(600);
  });

  it("backs off on a 503 burst (pause and fewer parallel windows), recovers, and leaves other sources alone", async () => {
    h = await startHarness({
      sim: { streams: streams(3, 40_000), faults: { failNext: 4, errorStatus: 503, retryAfterSeconds: 2 } },
      source: { retentionDays: 1 / 24, maxConcurrentCopies: 4 },
      more: [
        {
          name: "src2",
          sim: { streams: streams(3, 40_000) },
          source: { retentionDays: 1 / 24, maxConcurrentCopies: 4 },
        },
      ],
    });
    const changes: { source: string; change: PressureChange; at: number }[] = [];
    const rt = await h.runtime({
      onPressure: (source, change) => changes.push({ source, change, at: performance.now() }),
    });
    const run = await runOnce(rt, h.tally);
    expect(run.ok).toBe(true);
    expect(changes.every((c) => c.source === "src1")).toBe(true);
    const overloads = changes.filter((c) => c.change.reason.startsWith("overload"));
    expect(overloads.length).toBeGreaterThan(0);
    expect(Math.min(...changes.map((c) => c.change.limit))).toBe(1);
    // No src1 download started during the 2 s pause that followed the first 503.
    const first = overloads[0]!;
    const src1 = h.sim.requests.filter((r) => r.kind === "archive");
    const during = src1.filter(
      (r) => r.startedAt > first.at + 50 && r.startedAt < first.change.pausedUntilMs - 50,
    );
    expect(during).toEqual([]);
    // Recovered: back to the full cap by the end.
    expect(rt.pressure.get("src1")!.limit).toBe(4);
    // src2 kept copying during src1's pause.
    const src2 = h.sims.get("src2")!.requests.filter((r) => r.kind === "archive");
    expect(src2.some((r) => r.startedAt > first.at && r.startedAt < first.change.pausedUntilMs)).toBe(true);
    expect(rt.pressure.get("src2")!.limit).toBe(4);
  });

  it("copies nothing from a paused source, and the other source normally", async () => {
    h = await startHarness({
      sim: { streams: streams(2, 40_000) },
      source: { retentionDays: 1 / 24, paused: true },
      more: [{ name: "src2", sim: { streams: streams(2, 40_000) }, source: { retentionDays: 1 / 24 } }],
    });
    const rt = await h.runtime();
    const run = await runOnce(rt, h.tally);
    expect(run.ok).toBe(true);
    expect(h.sim.meter.downloads).toBe(0);
    expect(h.sim.requests).toEqual([]);
    expect(h.sims.get("src2")!.meter.downloads).toBe(run.copied);
    expect(run.finalPlan.sources.find((s) => s.source === "src1")!.paused).toBe(true);
  });
});

describe("pause switch and bandwidth schedule", () => {
  it("pause stops every request to the source and resume copies what was missed", async () => {
    h = await startHarness({
      sim: { streams: streams(2, 40_000) },
      source: { retentionDays: 1 / 24 },
      more: [{ name: "src2", sim: { streams: streams(1, 40_000) }, source: { retentionDays: 1 / 24 } }],
    });
    const rt = await h.runtime();
    const out: string[] = [];
    await rt.store.writeControl("src1", { paused: true, reason: "disk swap", at: h.clock.now() });
    const paused = await runOnce(rt, h.tally);
    expect(paused.ok).toBe(true);
    expect(h.sim.requests).toEqual([]);
    expect(paused.idle).toEqual([["src1", "paused by the operator: disk swap"]]);
    expect(h.sims.get("src2")!.meter.downloads).toBe(paused.copied);
    out.push(formatSummary(paused, h.clock.now()));
    expect(out.join()).toMatch(/Source src1 did not copy: paused by the operator: disk swap/);

    await rt.store.writeControl("src1", undefined);
    const resumed = await runOnce(rt, h.tally);
    expect(resumed.ok).toBe(true);
    expect(resumed.copied).toBeGreaterThanOrEqual(2 * 6);
    expect(h.sim.meter.downloads).toBe(resumed.copied);
  });

  it("defers queued windows during a no-copy period of the schedule, then copies them", async () => {
    h = await startHarness({
      sim: { streams: streams(2, 40_000) },
      source: {
        retentionDays: 1 / 24,
        // The test clock starts at 12:17 UTC.
        bandwidthSchedule: [{ from: "12:30", to: "13:00", maxBandwidthMbps: 0 }],
      },
    });
    const rt = await h.runtime({ deferSeconds: 1 });
    // 12:17: copying allowed; planned (the planner plans nothing during the period itself).
    const report = await rt.plan();
    const planned = report.sources[0]!.planned.length;
    expect(planned).toBeGreaterThan(0);
    h.clock.advance(12 * 60); // 12:29: copying allowed, the copiers start
    await rt.startCopiers();
    // 12:31, before the copiers' first receive (network I/O) is answered: no copying.
    h.clock.advance(2 * 60);
    await expect
      .poll(() => h!.tally.events.filter((e) => e.type === "deferred").length, { timeout: 10_000 })
      .toBeGreaterThan(planned);
    expect(h.sim.requests.filter((r) => r.kind === "archive")).toEqual([]);
    h.clock.advance(30 * 60); // 13:01: full speed again
    await rt.drain();
    await rt.stopCopiers();
    expect(h.tally.events.filter((e) => e.type === "copied").length).toBe(planned);
    expect(h.tally.events.filter((e) => e.type === "dead-lettered")).toEqual([]);
  });

  it("plans nothing for a source in a no-copy period of its schedule (no requests, no messages), and plans it when the period ends", async () => {
    h = await startHarness({
      sim: { streams: streams(2, 40_000) },
      source: {
        retentionDays: 1 / 24,
        // The test clock starts at 12:17 UTC.
        bandwidthSchedule: [{ from: "12:00", to: "12:30", maxBandwidthMbps: 0 }],
      },
    });
    const rt = await h.runtime();
    const during = await rt.plan();
    expect(during.sources[0]!.planned).toEqual([]);
    expect(during.sources[0]!.paused).toBe(true);
    expect(h.sim.requests).toEqual([]);
    h.clock.advance(14 * 60); // 12:31: the period has ended
    const after = await rt.plan();
    expect(after.sources[0]!.planned.length).toBeGreaterThan(0);
    const run = await runOnce(rt, h.tally);
    expect(run.ok).toBe(true);
    expect(h.tally.events.filter((e) => e.type === "copied").length).toBe(after.sources[0]!.planned.length);
  });
});
