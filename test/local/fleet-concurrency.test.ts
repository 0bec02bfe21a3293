/**
 * issue 26 item 3: a fleet of small windows. The bench saw one download from the source open at a
 * time although 8 copies were allowed; this looks at the copier side: how many copies the poller
 * runs at once against the source's cap, and how many downloads the simulator saw open at once.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "../../dev/kit/harness.ts";
import { runOnce } from "../../local/once.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function peakOverlap(intervals: { startedAt: number; endedAt: number }[]): number {
  const edges = intervals.flatMap((i) => [
    { t: i.startedAt, d: 1 },
    { t: i.endedAt, d: -1 },
  ]);
  edges.sort((a, b) => a.t - b.t || a.d - b.d);
  let open = 0;
  let peak = 0;
  for (const e of edges) {
    open += e.d;
    peak = Math.max(peak, open);
  }
  return peak;
}

describe("a fleet of small windows", () => {
  it("runs as many copies at once as the source allows, never more", async () => {
    const cap = 8;
    h = await startHarness({
      sim: { streams: 12, days: 1 / 24, bitrateBps: 13_600, liveOnlyStreams: 0, seed: 9 },
      source: { maxConcurrentCopies: cap, retentionDays: 1 / 24 },
    });
    const rt = await h.runtime();
    await rt.startCopiers();
    const poller = rt.pollers.get("src1")!;
    const summary = await runOnce(rt, h.tally);
    expect(summary.ok).toBe(true);
    expect(summary.copied).toBeGreaterThan(2 * cap);
    expect(poller.peakBusy).toBe(cap);
    const downloads = h.sim.requests.filter((r) => r.kind === "archive");
    // Each 1 MB download is a few ms of a copy's second or so (its S3 and SQS round trips), so
    // the source rarely sees more than one at a time even with every copy running.
    const open = peakOverlap(downloads);
    expect(open).toBeLessThanOrEqual(cap);
  });
});
