import { describe, expect, it } from "vitest";
import {
  coverWindows,
  decodeWindowIndex,
  encodeWindowIndex,
  type Fragment,
  firstKeyframeAtOrAfter,
  fragmentsBetween,
  mergeSpans,
  storedSpans,
  type WindowIndex,
  windowEndMs,
  windowStartMs,
} from "../../functions/domain/fragment-index.ts";

const FROM = 1_764_547_200; // 2025-12-01T00:00:00Z

function windowOf(fragments: Fragment[], from = FROM, duration = 600): WindowIndex {
  const last = fragments[fragments.length - 1];
  return {
    from,
    duration,
    format: "mp4",
    key: `s/cam/2025-12-01/${from}.mp4`,
    size: last ? last.offset + last.length : 800,
    origin: "absolute",
    init: { offset: 0, length: 800 },
    codecs: "avc1.64001f,mp4a.40.2",
    width: 1280,
    height: 720,
    fragments,
  };
}

describe("fragment index encoding", () => {
  it("round-trips fragments with gaps, rounding corrections, odd durations and non-key fragments", () => {
    const fragments: Fragment[] = [];
    let offset = 800;
    let start = FROM * 1000 + 40;
    for (let i = 0; i < 600; i++) {
      const durationMs = i % 97 === 5 ? 1001 : 1000;
      const length = 1000 + ((i * 7919) % 5000);
      fragments.push({ offset, length, startMs: start, durationMs, keyframe: i % 3 !== 2 });
      offset += length;
      start += durationMs + (i === 300 ? 2500 : i % 50 === 7 ? -1 : 0);
    }
    const w = windowOf(fragments);
    const stored = encodeWindowIndex(w);
    expect(stored.v).toBe(1);
    const back = decodeWindowIndex(JSON.parse(JSON.stringify(stored)));
    expect(back).toEqual(w);
  });

  it("encodes a window of all-key fragments of equal duration in a few runs", () => {
    const fragments = Array.from({ length: 600 }, (_, i) => ({
      offset: 800 + i * 100,
      length: 100,
      startMs: FROM * 1000 + i * 1000,
      durationMs: 1000,
      keyframe: true,
    }));
    const stored = encodeWindowIndex(windowOf(fragments));
    expect(stored.d).toEqual([[1000, 600]]);
    expect(stored.k).toEqual([600]);
    expect(stored.s).toBeUndefined();
    expect(decodeWindowIndex(stored)?.fragments).toEqual(fragments);
  });

  it("keeps a day of 600 s windows of 1 s fragments at 2 Mbit/s near 7.5 bytes per fragment", () => {
    let seed = 1;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const windows = Array.from({ length: 144 }, (_, k) => {
      const from = FROM + k * 600;
      let offset = 1200;
      const fragments = Array.from({ length: 600 }, (_, i) => {
        // 250 kB a second, +-40 %: six-digit lengths, as a real encoder's.
        const length = Math.round(250_000 * (0.6 + 0.8 * random()));
        const f = { offset, length, startMs: (from + i) * 1000, durationMs: 1000, keyframe: true };
        offset += length;
        return f;
      });
      return encodeWindowIndex({ ...windowOf(fragments, from, 600), init: { offset: 0, length: 1200 } });
    });
    const day = JSON.stringify({ v: 1, source: "streamer1", stream: "cam1", day: "2025-12-01", windows });
    expect(day.length / 86_400).toBeLessThan(7.6);
    expect(day.length).toBeLessThan(660_000);
  });

  it("refuses an entry of another version or with inconsistent columns", () => {
    const stored = encodeWindowIndex(windowOf([]));
    expect(decodeWindowIndex({ ...stored, v: 2 as 1 })).toBeUndefined();
    expect(decodeWindowIndex({ ...stored, n: 3 })).toBeUndefined();
    expect(decodeWindowIndex(stored)?.fragments).toEqual([]);
  });
});

describe("fragment index reading", () => {
  const fragments = Array.from({ length: 10 }, (_, i) => ({
    offset: 800 + i * 100,
    length: 100,
    startMs: FROM * 1000 + i * 1000,
    durationMs: 1000,
    keyframe: i % 2 === 0,
  }));
  const w = windowOf(fragments, FROM, 10);

  it("fragmentsBetween returns the fragments overlapping the half-open range", () => {
    expect(fragmentsBetween(w, FROM * 1000 + 1500, FROM * 1000 + 3000).map((f) => f.offset)).toEqual([
      900, 1000,
    ]);
    expect(fragmentsBetween(w, FROM * 1000 + 2000, FROM * 1000 + 2001).map((f) => f.offset)).toEqual([1000]);
    expect(fragmentsBetween(w, FROM * 1000 + 10_000, FROM * 1000 + 20_000)).toEqual([]);
  });

  it("firstKeyframeAtOrAfter skips non-key fragments and reports none past the end", () => {
    expect(firstKeyframeAtOrAfter(w, FROM * 1000 + 1)).toBe(2);
    expect(firstKeyframeAtOrAfter(w, FROM * 1000 + 2000)).toBe(2);
    expect(firstKeyframeAtOrAfter(w, FROM * 1000 + 8001)).toBe(-1);
  });

  it("coverWindows keeps windows without overlap, the longer one of a shared start", () => {
    const a = windowOf([], FROM, 600);
    const b = windowOf([], FROM, 300);
    const c = windowOf([], FROM + 300, 300);
    const d = windowOf([], FROM + 600, 600);
    expect(coverWindows([d, c, b, a])).toEqual([a, d]);
  });
});

describe("fragment index entries of every kind", () => {
  const frags = (n: number, at = FROM * 1000): Fragment[] =>
    Array.from({ length: n }, (_, i) => ({
      offset: 800 + i * 100,
      length: 100,
      startMs: at + i * 1000,
      durationMs: 1000,
      keyframe: i % 2 === 0,
    }));

  it("round-trips an MPEG-TS window with its ETag and PSI packets, and one without codecs or size", () => {
    const { init: _, codecs: _c, width: _w, height: _h, ...bare } = windowOf(frags(4));
    const ts: WindowIndex = {
      ...bare,
      format: "ts",
      etag: '"abc"',
      psi: [
        { offset: 0, length: 188 },
        { offset: 188, length: 188 },
      ],
    };
    const back = decodeWindowIndex(JSON.parse(JSON.stringify(encodeWindowIndex(ts))));
    expect(back).toEqual(ts);
    expect(back?.etag).toBe('"abc"');
    expect(back?.psi).toEqual([
      { offset: 0, length: 188 },
      { offset: 188, length: 188 },
    ]);
    expect(back).not.toHaveProperty("codecs");
    expect(back).not.toHaveProperty("init");
  });

  it("refuses an entry whose runs do not add up to its fragments, or without lengths, instead of inventing fragments", () => {
    const stored = encodeWindowIndex(windowOf(frags(4)));
    expect(decodeWindowIndex({ ...stored, d: [[1000, 3]] })).toBeUndefined();
    expect(decodeWindowIndex({ ...stored, k: [1, 1, 1] })).toBeUndefined();
    expect(decodeWindowIndex({ ...stored, l: undefined as unknown as number[] })).toBeUndefined();
  });

  it("the window's media starts at its first fragment and ends at the furthest end; an empty one at its from", () => {
    const w = windowOf(frags(3, FROM * 1000 + 40));
    expect(windowStartMs(w)).toBe(FROM * 1000 + 40);
    expect(windowEndMs(w)).toBe(FROM * 1000 + 3040);
    const empty = windowOf([]);
    expect(windowStartMs(empty)).toBe(FROM * 1000);
    expect(windowEndMs(empty)).toBe(FROM * 1000);
  });

  it("fragmentsBetween from before the first fragment starts with it", () => {
    const w = windowOf(frags(3));
    expect(fragmentsBetween(w, FROM * 1000 - 500, FROM * 1000 + 500).map((f) => f.offset)).toEqual([800]);
  });

  it("merges spans in any order, nested or within the tolerance, and counts the bytes of the windows kept", () => {
    expect(
      mergeSpans(
        [
          [5000, 6000],
          [1000, 2000],
          [0, 10_000],
          [500, 600],
          [10_100, 11_000],
          [11_101, 12_000],
        ],
        100,
      ),
    ).toEqual([
      [0, 11_000],
      [11_101, 12_000],
    ]);
    const a = windowOf(frags(3), FROM, 600);
    const b = windowOf(frags(2, (FROM + 600) * 1000), FROM + 600, 600);
    const spans = storedSpans([b, a], 0);
    expect(spans.spans).toEqual([
      [FROM * 1000, FROM * 1000 + 3000],
      [(FROM + 600) * 1000, (FROM + 600) * 1000 + 2000],
    ]);
    expect(spans.bytes).toBe(a.size + b.size);
  });
});
