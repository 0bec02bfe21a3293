/**
 * End to end on the embedded emulator and the simulator: plan, copy, verify byte for byte.
 */
import { afterEach, describe, expect, it } from "vitest";
import { streamPrefix } from "../../functions/domain/keys.ts";
import {
  clipRanges,
  normalizeRanges,
  subtractRanges,
  type TimeRange,
} from "../../functions/domain/ranges.ts";
import { runOnce } from "../../local/once.ts";
import { type Harness, HOUR, startHarness } from "../support/harness.ts";

const RETENTION = HOUR; // retentionDays 1/24
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** Windows stored for a stream, parsed from their keys. */
async function storedWindows(
  hh: Harness,
  stream: string,
): Promise<{ key: string; from: number; duration: number }[]> {
  const prefix = streamPrefix(hh.config.prefix, "src1", stream);
  const keys = await hh.keys(prefix);
  return keys.map((key) => {
    const m = /(\d{4}-\d{2}-\d{2})\/(\d{2})(\d{2})(\d{2})Z-(\d+)s\.(mp4|ts)$/.exec(key);
    if (!m) throw new Error(`unexpected key ${key}`);
    const from = Date.parse(`${m[1]}T${m[2]}:${m[3]}:${m[4]}Z`) / 1000;
    return { key, from, duration: Number(m[5]) };
  });
}

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

/** Asserts the stored windows of a stream: no overlap, inside what was recorded, byte for byte. */
async function expectExactCopies(hh: Harness, stream: string, mustCover: TimeRange[]) {
  const windows = (await storedWindows(hh, stream)).sort((a, b) => a.from - b.from);
  for (let i = 1; i < windows.length; i++) {
    expect(windows[i]!.from, `overlap in ${stream}`).toBeGreaterThanOrEqual(
      windows[i - 1]!.from + windows[i - 1]!.duration,
    );
  }
  const union = normalizeRanges(windows.map((w) => ({ from: w.from, to: w.from + w.duration })));
  const recorded = hh.sim.rangesOf(stream);
  expect(subtractRanges(union, recorded), `stored seconds not recorded in ${stream}`).toEqual([]);
  expect(subtractRanges(mustCover, union), `recorded seconds missing from the backup of ${stream}`).toEqual(
    [],
  );
  for (const w of windows) {
    const got = await hh.getObject(w.key);
    const expected = hh.sim.body(stream, w.from, w.duration, "mp4");
    expect(got.equals(expected), `bytes of ${w.key}`).toBe(true);
  }
  return windows;
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
