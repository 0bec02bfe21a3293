/**
 * End to end on the embedded emulator and the simulator: plan, copy, verify byte for byte.
 */
import { afterEach, describe, expect, it } from "vitest";
import { expectExactCopies } from "../../dev/kit/backup-checks.ts";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { clipRanges } from "../../functions/domain/ranges.ts";
import { runOnce } from "../../local/once.ts";

const RETENTION = HOUR; // retentionDays 1/24
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function twoStreamsWithGaps(now: number) {
  const base = now - 2 * HOUR;
  return [
    {
      name: "cam1",
      bitrateBps: 80_000,
      ranges: [
        { from: base, to: now - 50 * 60 + 13 },
        { from: now - 47 * 60 + 5, to: now - 20 * 60 },
        { from: now - 19 * 60 - 30, to: now + 1 },
      ],
    },
    { name: "live/cam 2", bitrateBps: 120_000, ranges: [{ from: base, to: now + 1 }] },
  ];
}

describe("backup pipeline, end to end", () => {
  it("copies every recorded second of the retention window byte for byte, then only what is new", async () => {
    const now0 = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
    h = await startHarness({ sim: { streams: twoStreamsWithGaps(now0) }, source: { retentionDays: 1 / 24 } });
    const rt = await h.runtime();
    const first = await runOnce(rt, h.tally);
    expect(first.ok).toBe(true);
    expect(first.deadLettered).toEqual([]);
    expect(first.copied).toBeGreaterThan(0);

    const now = h.clock.now();
    const lastBoundary = Math.floor((now - h.config.settleSeconds) / 600) * 600;
    for (const stream of ["cam1", "live/cam 2"]) {
      const mustCover = clipRanges(h.sim.rangesOf(stream), now - RETENTION, lastBoundary);
      await expectExactCopies(h, stream, mustCover);
    }
    // The final plan reports full coverage of what is copyable.
    for (const st of first.finalPlan.sources[0]!.streams) {
      expect(st.backedUpSeconds, st.stream).toBe(st.copyableSeconds);
    }

    // A second run copies nothing.
    const second = await runOnce(rt, h.tally);
    expect(second.planned).toBe(0);
    expect(second.copied).toBe(0);

    // The live edge moves 20 minutes: only the new windows are copied.
    const before = new Set((await h.keys()).filter((k) => !k.includes(".backup/")));
    h.clock.advance(20 * 60);
    const third = await runOnce(rt, h.tally);
    expect(third.ok).toBe(true);
    const added = (await h.keys()).filter((k) => !k.includes(".backup/") && !before.has(k));
    expect(added.length).toBe(third.copied);
    expect(third.copied).toBeGreaterThanOrEqual(4); // two 10-minute windows of each of two streams
    const horizon = h.clock.now() - h.config.settleSeconds;
    for (const stream of ["cam1", "live/cam 2"]) {
      const windows = await expectExactCopies(
        h,
        stream,
        clipRanges(h.sim.rangesOf(stream), now - RETENTION, Math.floor(horizon / 600) * 600),
      );
      expect(windows.every((w) => w.from + w.duration <= horizon)).toBe(true);
    }
    expect(h.openMultipartUploads()).toEqual([]);
  });
});
