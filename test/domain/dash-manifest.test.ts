/**
 * DASH manifests over the fragment index (functions/domain/dash-manifest.ts), on hand-made window
 * indexes: periods at gaps and track-setup changes, one period with `mono`, byte ranges and times
 * that match the segments the HLS playlists use. ffprobe and dash.js read real ones in
 * test/e2e/serve.test.ts.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  isoDuration,
  monoProblem,
  msWriter,
  renderDashManifest,
} from "../../functions/domain/dash-manifest.ts";
import type { WindowIndex } from "../../functions/domain/fragment-index.ts";
import { rangeSegments } from "../../functions/domain/hls-playlist.ts";

const T = 1_764_547_200; // 2025-12-01T00:00:00Z

function win(
  from: number,
  o: Partial<WindowIndex> & { seconds?: number; startAt?: number } = {},
): WindowIndex {
  const seconds = o.seconds ?? 60;
  const startAt = o.startAt ?? from;
  return {
    from,
    duration: 60,
    format: "mp4",
    key: `p/s/cam/${from}.mp4`,
    size: 1000 + seconds * 100,
    origin: "absolute",
    init: { offset: 0, length: 1000 },
    codecs: "avc1.64001f,mp4a.40.2",
    width: 640,
    height: 360,
    fragments: Array.from({ length: seconds }, (_, i) => ({
      offset: 1000 + i * 100,
      length: 100,
      startMs: (startAt + i) * 1000,
      durationMs: 1000,
      keyframe: true,
    })),
    ...o,
  };
}

interface ParsedPeriod {
  start: string;
  pto: number;
  init: { url: string; range: string };
  s: { t: number; d: number }[];
  urls: { media: string; range: string }[];
  codecs: string | undefined;
}

/** The parts of our MPD the tests check (its layout is ours, one element per line). */
function parse(mpd: string): { root: string; periods: ParsedPeriod[] } {
  const root = /<MPD [^>]*>/.exec(mpd)![0];
  const periods = mpd
    .split("<Period ")
    .slice(1)
    .map((p) => ({
      start: /start="([^"]+)"/.exec(p)![1]!,
      pto: Number(/presentationTimeOffset="(\d+)"/.exec(p)![1]),
      init: {
        url: /<Initialization sourceURL="([^"]+)"/.exec(p)![1]!,
        range: /<Initialization [^>]*range="([^"]+)"/.exec(p)![1]!,
      },
      // Each S expanded by its repeat count.
      s: [...p.matchAll(/<S t="(\d+)" d="(\d+)"(?: r="(\d+)")?\/>/g)].flatMap((m) =>
        Array.from({ length: Number(m[3] ?? 0) + 1 }, (_, k) => ({
          t: Number(m[1]) + k * Number(m[2]),
          d: Number(m[2]),
        })),
      ),
      urls: [...p.matchAll(/<SegmentURL media="([^"]+)" mediaRange="([^"]+)"\/>/g)].map((m) => ({
        media: m[1]!,
        range: m[2]!,
      })),
      codecs: /codecs="([^"]+)"/.exec(p)?.[1],
    }));
  return { root, periods };
}

const uri = (w: WindowIndex) => `https://m.example/${w.key}?a=1&b=2`;

describe("DASH manifest of stored windows", () => {
  it("one period across a window boundary without a gap: the first window's init, a SegmentURL per segment with its window and byte range, times equal to the segments'", () => {
    const windows = [win(T), win(T + 60)];
    const segments = rangeSegments(windows, T * 1000, (T + 120) * 1000);
    const mpd = renderDashManifest({ type: "static", segments }, uri);
    const { root, periods } = parse(mpd);
    expect(root).toContain('type="static"');
    expect(root).toContain('mediaPresentationDuration="PT120.000S"');
    expect(periods).toHaveLength(1);
    const p = periods[0]!;
    expect(p.start).toBe("PT0.000S");
    expect(p.pto).toBe(T * 1000);
    expect(p.init).toEqual({ url: `https://m.example/${windows[0]!.key}?a=1&amp;b=2`, range: "0-999" });
    expect(p.codecs).toBe("avc1.64001f,mp4a.40.2");
    expect(p.s).toEqual(segments.map((s) => ({ t: s.startMs, d: s.durationMs })));
    expect(p.urls).toEqual(
      segments.map((s) => ({
        media: `https://m.example/${s.window.key}?a=1&amp;b=2`,
        range: `${s.offset}-${s.offset + s.length - 1}`,
      })),
    );
    expect(new Set(p.urls.map((u) => u.media)).size).toBe(2);
  });

  it("a new period at a gap and where the track setup changes; periods follow each other without the gap (Flussonic's continuous periods)", () => {
    const windows = [
      win(T, { seconds: 30 }), // ends at T + 30: a 30 s gap
      win(T + 60),
      win(T + 120, { width: 1280, height: 720, codecs: "avc1.640028" }),
    ];
    const segments = rangeSegments(windows, T * 1000, (T + 180) * 1000);
    const { root, periods } = parse(renderDashManifest({ type: "static", segments }, uri));
    expect(periods.map((p) => p.start)).toEqual(["PT0.000S", "PT30.000S", "PT90.000S"]);
    expect(periods.map((p) => p.pto)).toEqual([T * 1000, (T + 60) * 1000, (T + 120) * 1000]);
    expect(periods[2]!.codecs).toBe("avc1.640028");
    expect(root).toContain('mediaPresentationDuration="PT150.000S"');
  });

  it("mono: one period whose timeline keeps the gap; a setup change or window-relative times are a problem named", () => {
    const windows = [win(T, { seconds: 30 }), win(T + 60)];
    const segments = rangeSegments(windows, T * 1000, (T + 120) * 1000);
    expect(monoProblem(segments)).toBeUndefined();
    const { periods } = parse(renderDashManifest({ type: "static", segments, mono: true }, uri));
    expect(periods).toHaveLength(1);
    expect(periods[0]!.s.map((s) => s.t)).toContain((T + 60) * 1000);
    const changed = rangeSegments([win(T), win(T + 60, { width: 1280 })], T * 1000, (T + 120) * 1000);
    expect(monoProblem(changed)).toMatch(/track setup .* changes at 2025-12-01T00:01:00.000Z/);
    const relative = rangeSegments([win(T, { origin: "window" })], T * 1000, (T + 60) * 1000);
    expect(monoProblem(relative)).toMatch(/relative to the window/);
  });

  it("window-relative decode times: each window its own period, times counted from the window's start", () => {
    const windows = [win(T, { origin: "window" }), win(T + 60, { origin: "window" })];
    const segments = rangeSegments(windows, T * 1000, (T + 120) * 1000);
    const { periods } = parse(renderDashManifest({ type: "static", segments }, uri));
    expect(periods).toHaveLength(2);
    expect(periods.map((p) => p.pto)).toEqual([0, 0]);
    expect(periods[1]!.s[0]!.t).toBe(0);
  });

  it("dynamic: availabilityStartTime is the epoch plus the shift, periods start at their unix time", () => {
    const segments = rangeSegments([win(T)], T * 1000, (T + 60) * 1000);
    const mpd = renderDashManifest(
      { type: "dynamic", segments, nowMs: (T + 7200) * 1000, shiftMs: 7000_000, timeShiftBufferSeconds: 60 },
      uri,
    );
    const { root, periods } = parse(mpd);
    expect(root).toContain('type="dynamic"');
    expect(root).toContain('availabilityStartTime="1970-01-01T01:56:40.000Z"');
    expect(root).toContain('timeShiftBufferDepth="PT60.000S"');
    expect(root).not.toContain("mediaPresentationDuration");
    expect(periods[0]!.start).toBe(isoDuration(T * 1000));
  });
});

describe("msWriter (the timeline's fast number text)", () => {
  it("writes every number as String() does: unix milliseconds in order and out of order, across millions, small, fractional, huge", () => {
    const write = msWriter();
    for (const ms of [
      0,
      1,
      999_999,
      1_000_000,
      1_000_001,
      1_764_590_400_000,
      1_764_590_999_999,
      1_764_591_000_000,
      1_764_590_400_000,
      12.5,
      -3,
      2 ** 53,
      1e21,
    ]) {
      expect(write(ms), String(ms)).toBe(String(ms));
    }
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: 0, max: 4_102_444_800_000 }), fc.double())), (list) => {
        const w = msWriter();
        for (const ms of list) expect(w(ms)).toBe(String(ms));
      }),
    );
  });
});

describe("the whole MPD a player reads", () => {
  const url = (w: WindowIndex) => `https://m.example/${w.key}`;
  /** Three 4 s key-frame fragments of 200 bytes: 600 bytes over 12 s, 400 bit/s. */
  const video = win(T, {
    key: "p/s/cam/v.mp4",
    codecs: "avc1.64001f",
    fragments: [0, 1, 2].map((i) => ({
      offset: 1000 + i * 200,
      length: 200,
      startMs: (T + 4 * i) * 1000,
      durationMs: 4000,
      keyframe: true,
    })),
  });
  /** Audio only (no width): three 2 s fragments of 100 bytes from T + 0.5 s, one 6 s segment. */
  const audio = win(T, {
    key: "p/s/radio/a.mp4",
    codecs: "mp4a.40.2",
    width: undefined,
    height: undefined,
    init: { offset: 0, length: 900 },
    fragments: [0, 1, 2].map((i) => ({
      offset: 1000 + i * 100,
      length: 100,
      startMs: (T + 2 * i) * 1000 + 500,
      durationMs: 2000,
      keyframe: true,
    })),
  });

  it("static, video: every element closed, the representation's bandwidth, codecs and size, buffer and segment durations", () => {
    const mpd = renderDashManifest(
      { type: "static", segments: rangeSegments([video], T * 1000, (T + 12) * 1000) },
      url,
    );
    expect(mpd).toBe(
      [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-main:2011" type="static" mediaPresentationDuration="PT12.000S" minBufferTime="PT4.000S" maxSegmentDuration="PT4.000S">',
        '  <Period id="p0" start="PT0.000S">',
        '    <AdaptationSet id="0" contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1">',
        '      <Representation id="video" bandwidth="400" codecs="avc1.64001f" width="640" height="360">',
        '        <SegmentList timescale="1000" presentationTimeOffset="1764547200000">',
        '          <Initialization sourceURL="https://m.example/p/s/cam/v.mp4" range="0-999"/>',
        "          <SegmentTimeline>",
        '            <S t="1764547200000" d="4000"/>',
        '            <S t="1764547204000" d="4000"/>',
        '            <S t="1764547208000" d="4000"/>',
        "          </SegmentTimeline>",
        '          <SegmentURL media="https://m.example/p/s/cam/v.mp4" mediaRange="1000-1199"/>',
        '          <SegmentURL media="https://m.example/p/s/cam/v.mp4" mediaRange="1200-1399"/>',
        '          <SegmentURL media="https://m.example/p/s/cam/v.mp4" mediaRange="1400-1599"/>',
        "        </SegmentList>",
        "      </Representation>",
        "    </AdaptationSet>",
        "  </Period>",
        "</MPD>",
        "",
      ].join("\n"),
    );
  });

  it("?thumbnails=N: an image adaptation set per period, one 1x1 tile each interval, its query escaped", () => {
    /** The lines of the image adaptation set of a 12 s range with images every `interval` s. */
    const thumbnails = (interval: number) => {
      const lines = renderDashManifest(
        {
          type: "static",
          segments: rangeSegments([video], T * 1000, (T + 12) * 1000),
          thumbnails: { width: 320, height: 180, interval, query: "?token=a&b" },
        },
        url,
      ).split("\n");
      const at = lines.findIndex((l) => l.includes('contentType="image"'));
      return lines.slice(at, at + 8);
    };
    expect(thumbnails(4)).toEqual([
      '    <AdaptationSet id="1" contentType="image" mimeType="image/jpeg">',
      `      <SegmentTemplate media="images-320x180/dvr-${T}-$Time$.m4v.jpg?token=a&amp;b" timescale="1">`,
      '        <SegmentTimeline><S t="0" d="4" r="2"/></SegmentTimeline>',
      "      </SegmentTemplate>",
      '      <Representation id="thumbnails" bandwidth="20000" width="320" height="180">',
      '        <EssentialProperty schemeIdUri="http://dashif.org/thumbnail_tile" value="1x1"/>',
      "      </Representation>",
      "    </AdaptationSet>",
    ]);
    // One interval covering the period: one image, no repeat count.
    expect(thumbnails(12)[2]).toBe('        <SegmentTimeline><S t="0" d="12"/></SegmentTimeline>');
    // The image set closes inside the period.
    const mpd = renderDashManifest(
      {
        type: "static",
        segments: rangeSegments([video], T * 1000, (T + 12) * 1000),
        thumbnails: { width: 320, height: 180, interval: 4, query: "" },
      },
      url,
    );
    expect(mpd.endsWith("    </AdaptationSet>\n  </Period>\n</MPD>\n")).toBe(true);
  });

  it("dynamic, audio only: publish time, presentation delay of three segments, an audio adaptation set", () => {
    const mpd = renderDashManifest(
      {
        type: "dynamic",
        segments: rangeSegments([audio], T * 1000, (T + 7) * 1000),
        nowMs: (T + 60) * 1000,
        shiftMs: 30_000,
        timeShiftBufferSeconds: 3600,
      },
      url,
    );
    expect(mpd).toBe(
      [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-main:2011" type="dynamic" availabilityStartTime="1970-01-01T00:00:30.000Z" publishTime="2025-12-01T00:01:00.000Z" minimumUpdatePeriod="PT2S" timeShiftBufferDepth="PT3600.000S" suggestedPresentationDelay="PT18.000S" minBufferTime="PT6.000S" maxSegmentDuration="PT6.000S">',
        '  <Period id="p0" start="PT1764547200.500S">',
        '    <AdaptationSet id="0" contentType="audio" mimeType="audio/mp4" segmentAlignment="true" startWithSAP="1">',
        '      <Representation id="media" bandwidth="400" codecs="mp4a.40.2">',
        '        <SegmentList timescale="1000" presentationTimeOffset="1764547200500">',
        '          <Initialization sourceURL="https://m.example/p/s/radio/a.mp4" range="0-899"/>',
        "          <SegmentTimeline>",
        '            <S t="1764547200500" d="6000"/>',
        "          </SegmentTimeline>",
        '          <SegmentURL media="https://m.example/p/s/radio/a.mp4" mediaRange="1000-1299"/>',
        "        </SegmentList>",
        "      </Representation>",
        "    </AdaptationSet>",
        "  </Period>",
        "</MPD>",
        "",
      ].join("\n"),
    );
  });

  it("refuses to write a manifest of no segment", () => {
    expect(() => renderDashManifest({ type: "static", segments: [] }, url)).toThrow(
      "a DASH manifest needs at least one segment",
    );
    expect(monoProblem([])).toBeUndefined();
  });

  it("a new period where only the codecs, the height or the init's length change, not at a gap within the tolerance", () => {
    const periodsOf = (second: WindowIndex) =>
      parse(
        renderDashManifest(
          { type: "static", segments: rangeSegments([win(T), second], T * 1000, (T + 120) * 1000) },
          uri,
        ),
      ).periods.length;
    expect(periodsOf(win(T + 60))).toBe(1);
    expect(periodsOf(win(T + 60, { codecs: "avc1.640028,mp4a.40.2" }))).toBe(2);
    expect(periodsOf(win(T + 60, { height: 480 }))).toBe(2);
    expect(periodsOf(win(T + 60, { init: { offset: 0, length: 1200 } }))).toBe(2);
    // Starting 0.5 s late (GAP_TOLERANCE_MS) still joins; later is a gap.
    const late = (ms: number) =>
      win(T + 60, {
        fragments: Array.from({ length: 59 }, (_, i) => ({
          offset: 1000 + i * 100,
          length: 100,
          startMs: (T + 60 + i) * 1000 + ms,
          durationMs: 1000,
          keyframe: true,
        })),
      });
    expect(periodsOf(late(500))).toBe(1);
    expect(periodsOf(late(501))).toBe(2);
  });
});
