/**
 * Segment planning over the fragment index (functions/domain/hls-playlist.ts): key-frame starts,
 * the 6 s limit, time jumps inside a window, per-day live numbering.
 */
import { describe, expect, it } from "vitest";
import type { Fragment, WindowIndex } from "../../functions/domain/fragment-index.ts";
import {
  DAY_SEQUENCE_SPAN,
  liveSegments,
  liveWindow,
  rangeSegments,
  renderMediaPlaylist,
  targetDuration,
  windowSegments,
} from "../../functions/domain/hls-playlist.ts";

const T = 1_764_547_200; // 2025-12-01T00:00:00Z

/** A window from `[durationMs, keyframe]` pieces laid end to end (a `null` piece is a 1 s hole). */
function win(from: number, pieces: ([number, boolean] | null)[]): WindowIndex {
  const fragments: Fragment[] = [];
  let at = from * 1000;
  let offset = 500;
  for (const p of pieces) {
    if (!p) {
      at += 1000;
      continue;
    }
    fragments.push({ offset, length: 10, startMs: at, durationMs: p[0], keyframe: p[1] });
    offset += 10;
    at += p[0];
  }
  return {
    from,
    duration: 600,
    format: "mp4",
    key: `w${from}`,
    size: offset,
    origin: "absolute",
    init: { offset: 0, length: 500 },
    fragments,
  };
}
const k = (ms: number): [number, boolean] => [ms, true];
const p = (ms: number): [number, boolean] => [ms, false];
const spans = (w: WindowIndex, start?: number) =>
  windowSegments(w, start).map((s) => [s.startMs - w.from * 1000, s.durationMs, s.discontinuity]);

describe("windowSegments", () => {
  it("runs whole fragments from a key frame up to 6 s, a longer GOP staying whole", () => {
    expect(
      spans(
        win(
          T,
          Array.from({ length: 14 }, () => k(1000)),
        ),
      ),
    ).toEqual([
      [0, 6000, true],
      [6000, 6000, false],
      [12000, 2000, false],
    ]);
    // 8 s GOP of 2 s fragments: cannot be cut, one 8 s segment each.
    expect(spans(win(T, [k(2000), p(2000), p(2000), p(2000), k(2000), p(2000), p(2000), p(2000)]))).toEqual([
      [0, 8000, true],
      [8000, 8000, false],
    ]);
  });

  it("skips fragments before the first key frame and, after a time jump, to the next key frame, marking the jump", () => {
    const w = win(T, [p(1000), k(1000), k(1000), null, p(1000), k(1000), k(1000)]);
    expect(spans(w)).toEqual([
      [1000, 2000, true],
      [5000, 2000, true],
    ]);
  });

  it("byte ranges of a segment cover exactly its fragments", () => {
    const w = win(T, [k(1000), k(1000), k(1000)]);
    const [s] = windowSegments(w);
    expect([s!.offset, s!.length]).toEqual([500, 30]);
  });
});

describe("rangeSegments", () => {
  it("starts at the first key frame at or after `from`, starts nothing at or after the end, and marks each later window", () => {
    const a = win(
      T,
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? k(500) : p(500))),
    );
    const b = win(
      T + 10,
      Array.from({ length: 10 }, () => k(1000)),
    );
    const s = rangeSegments([a, b], T * 1000 + 1200, (T + 16) * 1000);
    expect(s[0]!.startMs).toBe(T * 1000 + 2000);
    expect(s[0]!.discontinuity).toBe(false);
    expect(s.map((x) => [x.window.key, x.startMs - T * 1000, x.discontinuity])).toEqual([
      [`w${T}`, 2000, false],
      [`w${T}`, 8000, false],
      [`w${T + 10}`, 10000, true],
    ]);
  });

  it("ends the last segment with the fragment that reaches the end, so the range lasts `dur` within one fragment", () => {
    const a = win(
      T,
      Array.from({ length: 30 }, () => k(1000)),
    );
    const s = rangeSegments([a], T * 1000, (T + 8) * 1000 + 400);
    // 6 s, then the 6-second segment at 6 s cut after the fragment 8-9 s that reaches 8.4 s.
    expect(s.map((x) => [x.startMs - T * 1000, x.durationMs, x.length])).toEqual([
      [0, 6000, 60],
      [6000, 3000, 30],
    ]);
  });
});

describe("live numbering", () => {
  it("numbers segments per UTC day, keeps numbers when earlier segments slide out, and never mixes days in a window", () => {
    const before = win(
      T - 600,
      Array.from({ length: 600 }, () => k(1000)),
    );
    const after = win(
      T,
      Array.from({ length: 600 }, () => k(1000)),
    );
    const all = liveSegments([before, after]);
    const day = Math.floor(T / 86_400);
    expect(all[0]!.sequence).toBe((day - 1) * DAY_SEQUENCE_SPAN);
    expect(all[99]!.sequence).toBe((day - 1) * DAY_SEQUENCE_SPAN + 99);
    expect(all[100]!.sequence).toBe(day * DAY_SEQUENCE_SPAN);
    expect(all[100]!.startMs).toBe(T * 1000);
    expect(all[100]!.discontinuitySequence).toBe(day * DAY_SEQUENCE_SPAN + 1);
    const w1 = liveWindow(all, T * 1000 - 1, 60_000);
    expect(w1.every((s) => s.window === before)).toBe(true);
    const w2 = liveWindow(all, T * 1000 + 30_000, 60_000);
    expect(w2.every((s) => s.window === after)).toBe(true);
    expect(w2.map((s) => s.sequence)).toEqual([0, 1, 2, 3, 4, 5].map((i) => day * DAY_SEQUENCE_SPAN + i));
    // Later, the same segments keep their numbers.
    const w3 = liveWindow(all, T * 1000 + 50_000, 60_000);
    expect(w3.find((s) => s.startMs === T * 1000 + 6000)!.sequence).toBe(day * DAY_SEQUENCE_SPAN + 1);
  });

  it("renders MEDIA-SEQUENCE and DISCONTINUITY-SEQUENCE of the first segment, without a DISCONTINUITY tag on it", () => {
    const after = win(
      T,
      Array.from({ length: 60 }, () => k(1000)),
    );
    const segs = liveWindow(liveSegments([after]), T * 1000 + 30_000, 60_000);
    const text = renderMediaPlaylist(
      {
        type: "live",
        segments: segs,
        mediaSequence: segs[0]!.sequence,
        discontinuitySequence: segs[0]!.discontinuitySequence,
      },
      (w) => `/m/${w.key}`,
    );
    expect(text).toContain(`#EXT-X-MEDIA-SEQUENCE:${segs[0]!.sequence}`);
    expect(text).toContain(`#EXT-X-DISCONTINUITY-SEQUENCE:${segs[0]!.discontinuitySequence}`);
    expect(text).not.toContain("#EXT-X-DISCONTINUITY\n");
    expect(text).not.toContain("ENDLIST");
    expect(targetDuration(segs)).toBe(6);
  });
});

describe("segments at their edges", () => {
  it("a window with no key frame gives no segment; a gap of exactly the tolerance is no time jump", () => {
    expect(windowSegments(win(T, [p(1000), p(1000)]))).toEqual([]);
    const w = win(T, [k(1000), k(1000)]);
    const shifted = {
      ...w,
      fragments: [w.fragments[0]!, { ...w.fragments[1]!, startMs: w.fragments[1]!.startMs + 500 }],
    };
    expect(spans(shifted)).toEqual([[0, 2500, true]]);
    const jumped = {
      ...w,
      fragments: [w.fragments[0]!, { ...w.fragments[1]!, startMs: w.fragments[1]!.startMs + 501 }],
    };
    expect(spans(jumped)).toEqual([
      [0, 1000, true],
      [1501, 1000, true],
    ]);
  });

  it("a range skips windows without fragments, and starts at a window's last fragment when the range starts there", () => {
    const empty = { ...win(T, []), key: "empty" };
    const a = win(
      T + 10,
      Array.from({ length: 5 }, () => k(1000)),
    );
    const s = rangeSegments([empty, a], (T + 14) * 1000, (T + 20) * 1000);
    expect(s.map((x) => [x.window.key, x.startMs - T * 1000, x.durationMs])).toEqual([
      [`w${T + 10}`, 14_000, 1000],
    ]);
  });

  it("cuts the window's first segment too, and leaves out a fragment starting exactly at the range's end", () => {
    const a = win(
      T,
      Array.from({ length: 30 }, (_, i) => (i % 6 === 0 ? k(1000) : p(1000))),
    );
    expect(rangeSegments([a], T * 1000, T * 1000 + 2400).map((x) => [x.durationMs, x.length])).toEqual([
      [3000, 30],
    ]);
    expect(
      rangeSegments([a], T * 1000, (T + 8) * 1000).map((x) => [x.startMs - T * 1000, x.durationMs, x.length]),
    ).toEqual([
      [0, 6000, 60],
      [6000, 2000, 20],
    ]);
  });
});

describe("live windows at their edges", () => {
  // Built inside each test, so that a mutation tool sees which tests run the code.
  const numbered = () =>
    liveSegments([
      win(
        T,
        Array.from({ length: 30 }, () => k(1000)),
      ),
    ]);

  it("counts a discontinuity once per jump, not once per segment", () => {
    const segs = numbered();
    expect(segs.map((s) => s.discontinuitySequence)).toEqual(segs.map(() => 20_423 * DAY_SEQUENCE_SPAN + 1));
  });

  it("is empty before the first segment, and keeps a segment starting exactly at notBefore", () => {
    const segs = numbered();
    expect(liveWindow(segs, T * 1000 - 1, 60_000)).toEqual([]);
    const at6 = T * 1000 + 6000;
    expect(liveWindow(segs, at6, 60_000, at6).map((s) => s.startMs)).toEqual([at6]);
    expect(liveWindow(segs, T * 1000 + 12_000, 60_000, at6).map((s) => s.startMs)).toEqual([at6, at6 + 6000]);
  });
});

describe("the whole playlist a player reads", () => {
  it("VOD over two windows, one with a time jump: a map and a date at each window and jump, a discontinuity before each", () => {
    const a = win(T, [k(1000), k(1000), null, k(1000)]);
    const b = win(T + 10, [k(2000)]);
    const text = renderMediaPlaylist(
      { type: "VOD", segments: rangeSegments([a, b], T * 1000, (T + 12) * 1000) },
      (w) => `/m/${w.key}`,
    );
    expect(text).toBe(
      [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        "#EXT-X-TARGETDURATION:2",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        `#EXT-X-MAP:URI="/m/w${T}",BYTERANGE="500@0"`,
        "#EXT-X-PROGRAM-DATE-TIME:2025-12-01T00:00:00.000Z",
        "#EXTINF:2.000,",
        "#EXT-X-BYTERANGE:20@500",
        `/m/w${T}`,
        "#EXT-X-DISCONTINUITY",
        `#EXT-X-MAP:URI="/m/w${T}",BYTERANGE="500@0"`,
        "#EXT-X-PROGRAM-DATE-TIME:2025-12-01T00:00:03.000Z",
        "#EXTINF:1.000,",
        "#EXT-X-BYTERANGE:10@520",
        `/m/w${T}`,
        "#EXT-X-DISCONTINUITY",
        `#EXT-X-MAP:URI="/m/w${T + 10}",BYTERANGE="500@0"`,
        "#EXT-X-PROGRAM-DATE-TIME:2025-12-01T00:00:10.000Z",
        "#EXTINF:2.000,",
        "#EXT-X-BYTERANGE:10@500",
        `/m/w${T + 10}`,
        "#EXT-X-ENDLIST",
        "",
      ].join("\n"),
    );
  });

  it("a second segment of the same window repeats neither the map nor the date", () => {
    const a = win(
      T,
      Array.from({ length: 12 }, () => k(1000)),
    );
    const text = renderMediaPlaylist(
      { type: "EVENT", segments: rangeSegments([a], T * 1000, (T + 12) * 1000) },
      (w) => `/m/${w.key}`,
    );
    expect(text.match(/#EXT-X-MAP/g)).toHaveLength(1);
    expect(text.match(/#EXT-X-PROGRAM-DATE-TIME/g)).toHaveLength(1);
    expect(text.match(/#EXTINF/g)).toHaveLength(2);
    expect(text).toContain("#EXT-X-PLAYLIST-TYPE:EVENT\n");
    expect(text).not.toContain("#EXT-X-DISCONTINUITY");
  });

  it("MPEG-TS: the PAT and PMT are the map when adjacent, and no map otherwise", () => {
    const ts = (psi: { offset: number; length: number }[]) => {
      const { init: _, ...rest } = win(T, [k(2000)]);
      return { ...rest, format: "ts" as const, psi };
    };
    const map = (w: WindowIndex) =>
      renderMediaPlaylist(
        { type: "VOD", segments: rangeSegments([w], T * 1000, (T + 2) * 1000) },
        () => "/m/w.ts",
      )
        .split("\n")
        .filter((l) => l.startsWith("#EXT-X-MAP"));
    expect(
      map(
        ts([
          { offset: 0, length: 188 },
          { offset: 188, length: 188 },
        ]),
      ),
    ).toEqual(['#EXT-X-MAP:URI="/m/w.ts",BYTERANGE="376@0"']);
    expect(
      map(
        ts([
          { offset: 0, length: 188 },
          { offset: 376, length: 188 },
        ]),
      ),
    ).toEqual([]);
    expect(map(ts([{ offset: 0, length: 188 }]))).toEqual([]);
    expect(map(ts([]))).toEqual([]);
  });
});
