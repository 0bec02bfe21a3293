/**
 * The playback handler (issue 11 §2) on an in-memory backup: windows made of the simulator's
 * fragmented-MP4 bytes, indexed by the fragment indexer, plus hand-made indexes for GOP layouts
 * the synthetic media does not have. Playlists are checked with hls-parser (strict mode).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as HLS from "hls-parser";
import { beforeAll, describe, expect, it } from "vitest";
import { type BackupConfig, configSchema } from "../../functions/config/config.ts";
import type { FragmentIndexReader, WindowIndex } from "../../functions/domain/fragment-index.ts";
import { indexingCheck } from "../../functions/domain/fragment-indexer.ts";
import { windowKey } from "../../functions/domain/keys.ts";
import { children, readInitSegment, readMovieFragment } from "../../functions/domain/mp4-join.ts";
import type { TimeRange } from "../../functions/domain/ranges.ts";
import { ffmpegJpegDecoder } from "../../functions/playback/frame-decoder.ts";
import {
  createPlaybackHandler,
  type PlaybackDeps,
  type PlaybackHandler,
  type PlaybackResponse,
} from "../../functions/playback/handler.ts";
import type { ImageCache } from "../../functions/playback/request.ts";
import { createPlaybackToken } from "../../functions/playback/token.ts";
import { windowChunks } from "../../simulator/content.ts";
import { loadRealMedia, realWindowChunks } from "../../simulator/real-media.ts";

const hasFfmpeg = spawnSync("ffmpeg", ["-version"], { stdio: "ignore" }).status === 0;

HLS.setOptions({ strictMode: true, silent: true });

const DAY = 1_764_547_200; // 2025-12-01T00:00:00Z
const SOURCE = "s1";
const STREAM = "site/cam1"; // a "/" in the name: the file is matched from the end
const KEY = "k".repeat(40);
const OLD_KEY = "o".repeat(40);
const PREFIX = "flussonic/";

/** Windows of STREAM (seconds after DAY): a boundary at 4200, a hole inside W3, a hole before W4. */
const LAYOUT: { from: number; duration: number; seconds: TimeRange[] }[] = [
  { from: 3600, duration: 600, seconds: [{ from: 3600, to: 4200 }] },
  { from: 4200, duration: 600, seconds: [{ from: 4200, to: 4800 }] },
  {
    from: 4800,
    duration: 600,
    seconds: [
      { from: 4800, to: 5000 },
      { from: 5100, to: 5400 },
    ],
  },
  { from: 6000, duration: 600, seconds: [{ from: 6000, to: 6600 }] },
].map((w) => ({
  from: DAY + w.from,
  duration: w.duration,
  seconds: w.seconds.map((r) => ({ from: DAY + r.from, to: DAY + r.to })),
}));

const objects = new Map<string, Buffer>();
const indexes = new Map<string, WindowIndex[]>(); // by stream

function addSimWindow(
  stream: string,
  w: { from: number; duration: number; seconds: TimeRange[] },
  chunks: Iterable<Buffer> = windowChunks(stream, 8000, w.seconds, "mp4"),
): WindowIndex {
  const body = Buffer.concat([...chunks]);
  const { check, indexer } = indexingCheck("mp4", w);
  check.feed(body);
  check.finish();
  const key = windowKey(PREFIX, { source: SOURCE, stream, from: w.from, duration: w.duration }, "mp4");
  objects.set(key, body);
  const ix = indexer.result(key, body.length, '"etag"');
  indexes.set(stream, [...(indexes.get(stream) ?? []), ix]);
  return ix;
}

/** A hand-made index: fragments of `fragmentMs`, a key frame every `gop` fragments. */
function addHandWindow(
  stream: string,
  from: number,
  duration: number,
  fragmentMs: number,
  gop: number,
): WindowIndex {
  const n = Math.floor((duration * 1000) / fragmentMs);
  const fragments = Array.from({ length: n }, (_, i) => ({
    offset: 1000 + i * 100,
    length: 100,
    startMs: from * 1000 + i * fragmentMs,
    durationMs: fragmentMs,
    keyframe: i % gop === 0,
  }));
  const ix: WindowIndex = {
    from,
    duration,
    format: "mp4",
    key: windowKey(PREFIX, { source: SOURCE, stream, from, duration }, "mp4"),
    size: 1000 + n * 100,
    origin: "absolute",
    init: { offset: 0, length: 900 },
    fragments,
  };
  indexes.set(stream, [...(indexes.get(stream) ?? []), ix]);
  return ix;
}

/** The in-memory reader, counting its calls. */
const reads: { stream: string; from: number; to: number }[] = [];
const reader: FragmentIndexReader = {
  async readFragmentIndex(source, stream, fromSec, toSec) {
    reads.push({ stream, from: fromSec, to: toSec });
    if (source !== SOURCE) return [];
    return (indexes.get(stream) ?? [])
      .filter((w) => w.from < toSec && w.from + w.duration > fromSec)
      .sort((a, b) => a.from - b.from || a.duration - b.duration);
  },
};

const config: BackupConfig = configSchema.parse({
  bucket: "backup",
  sources: [
    {
      name: SOURCE,
      url: "http://flussonic.example",
      retentionDays: 3,
      streams: [STREAM, "gop", "midnight", "real"],
    },
    { name: "s2", url: "http://flussonic2.example" },
  ],
});

const nowMs = (DAY + 7200) * 1000;

function handler(
  o: { keys?: readonly string[] | undefined; clock?: () => number } & Pick<
    PlaybackDeps,
    "decodeJpeg" | "imageCache"
  > = {},
): PlaybackHandler {
  const deps: PlaybackDeps = {
    config,
    index: reader,
    async readObject(key, range) {
      const body = objects.get(key);
      if (!body) throw new Error(`no object ${key}`);
      const slice = range ? body.subarray(range.offset, range.offset + range.length) : body;
      return (async function* () {
        for (let i = 0; i < slice.length; i += 1000) yield slice.subarray(i, i + 1000);
      })();
    },
    mediaUrl: (key) => `https://media.example/${key}`,
    now: o.clock ?? (() => nowMs),
    tokenKeys: "keys" in o ? o.keys : [KEY, OLD_KEY],
    decodeJpeg: o.decodeJpeg,
    imageCache: o.imageCache,
  };
  return createPlaybackHandler(deps);
}

function token(o: { stream?: string; source?: string; key?: string; ttl?: number } = {}): string {
  return createPlaybackToken(
    o.key ?? KEY,
    { source: o.source ?? SOURCE, stream: "stream" in o ? o.stream : STREAM },
    Math.floor(nowMs / 1000) + (o.ttl ?? 3600),
  );
}

async function get(
  h: PlaybackHandler,
  path: string,
  query: Record<string, string | undefined> = { token: token() },
): Promise<PlaybackResponse & { text: string; bytes: Buffer }> {
  const res = await h({ method: "GET", path, query, headers: {} });
  let bytes = Buffer.alloc(0);
  if (typeof res.body === "string") bytes = Buffer.from(res.body);
  else if (res.body instanceof Uint8Array) bytes = Buffer.from(res.body);
  else if (res.body) {
    const parts: Buffer[] = [];
    for await (const c of res.body) parts.push(Buffer.from(c));
    bytes = Buffer.concat(parts);
  }
  return { ...res, bytes, text: bytes.toString("utf8") };
}

function mediaPlaylist(text: string): HLS.types.MediaPlaylist {
  const p = HLS.parse(text);
  if (p.isMasterPlaylist) throw new Error("expected a media playlist");
  return p as HLS.types.MediaPlaylist;
}

const byKey = (stream: string) => new Map((indexes.get(stream) ?? []).map((w) => [w.key, w]));
const keyOf = (uri: string) => uri.replace("https://media.example/", "");

/**
 * Checks every segment against the index: its byte range is a run of whole fragments of its
 * window starting on a key frame, its EXTINF is the run's duration, its MAP is the window's init,
 * its program date-time (where given) the first fragment's start; a DISCONTINUITY exactly where
 * the window changes or time jumps. Returns the segments' runs.
 */
function checkAgainstIndex(p: HLS.types.MediaPlaylist, stream: string) {
  const windows = byKey(stream);
  expect(p.version).toBe(7);
  const runs: { w: WindowIndex; startMs: number; endMs: number }[] = [];
  let prev: { w: WindowIndex; endMs: number } | undefined;
  for (const [i, s] of p.segments.entries()) {
    const w = windows.get(keyOf(s.uri))!;
    expect(w, s.uri).toBeDefined();
    expect(Math.round(s.duration)).toBeLessThanOrEqual(p.targetDuration);
    expect(s.map?.uri).toBe(s.uri);
    expect(s.map?.byterange).toEqual({ offset: 0, length: w.init!.length });
    const first = w.fragments.findIndex((f) => f.offset === s.byterange.offset);
    expect(first, `segment ${i} starts on a fragment`).toBeGreaterThanOrEqual(0);
    expect(w.fragments[first]!.keyframe).toBe(true);
    let end = first;
    while (w.fragments[end]!.offset + w.fragments[end]!.length < s.byterange.offset + s.byterange.length)
      end++;
    const last = w.fragments[end]!;
    expect(last.offset + last.length, `segment ${i} ends on a fragment end`).toBe(
      s.byterange.offset + s.byterange.length,
    );
    const startMs = w.fragments[first]!.startMs;
    const endMs = last.startMs + last.durationMs;
    expect(s.duration).toBeCloseTo((endMs - startMs) / 1000, 3);
    if (s.programDateTime) expect(s.programDateTime.getTime()).toBe(startMs);
    const jump = prev !== undefined && (prev.w !== w || Math.abs(startMs - prev.endMs) > 500);
    if (i > 0) expect(Boolean(s.discontinuity), `discontinuity before segment ${i}`).toBe(jump);
    if (i === 0 || jump) expect(s.programDateTime?.getTime(), `date-time of segment ${i}`).toBe(startMs);
    runs.push({ w, startMs, endMs });
    prev = { w, endMs };
  }
  return runs;
}

beforeAll(async () => {
  for (const w of LAYOUT) addSimWindow(STREAM, w);
  if (hasFfmpeg) {
    const media = await loadRealMedia();
    for (const from of [DAY + 3600, DAY + 3660]) {
      const seconds = [{ from, to: from + 60 }];
      addSimWindow("real", { from, duration: 60, seconds }, realWindowChunks(media, seconds, "mp4"));
    }
  }
  // 0.5 s fragments, a key frame every 2 s.
  addHandWindow("gop", DAY + 3600, 600, 500, 4);
  // Windows across midnight (DAY + 86400), 1 s key-frame fragments.
  for (let from = DAY + 86_400 - 1200; from < DAY + 86_400 + 1200; from += 600)
    addHandWindow("midnight", from, 600, 1000, 1);
});

describe("catch-up playlists (index|archive-{from}-{dur}.m3u8)", () => {
  it("is a VOD version-7 playlist whose byte ranges, MAPs, durations, date-times and discontinuities match the index across a window boundary and holes", async () => {
    const from = DAY + 4100;
    const res = await get(handler(), `/${SOURCE}/${STREAM}/index-${from}-2000.m3u8`);
    expect(res.status).toBe(200);
    expect(res.headers["Content-Type"]).toBe("application/vnd.apple.mpegurl");
    const p = mediaPlaylist(res.text);
    expect(p.playlistType).toBe("VOD");
    expect(p.endlist).toBe(true);
    const runs = checkAgainstIndex(p, STREAM);
    // 1 s key-frame fragments: 6 s segments, except where a window or a run of media ends.
    expect(p.targetDuration).toBe(6);
    expect(runs.filter((r) => r.endMs - r.startMs !== 6000).length).toBeLessThanOrEqual(4);
    // Discontinuities: W1→W2 (4200), W2→W3 (4800), the hole inside W3 (5000-5100), W3→W4 (5400-6000).
    const jumps = p.segments
      .filter((s) => s.discontinuity)
      .map((s) => s.programDateTime!.getTime() / 1000 - DAY);
    expect(jumps).toEqual([4200, 4800, 5100, 6000]);
    // Contiguous byte ranges: inside a window each segment starts where the previous one ended.
    for (let i = 1; i < p.segments.length; i++) {
      const a = p.segments[i - 1]!;
      const b = p.segments[i]!;
      if (a.uri === b.uri && !b.discontinuity)
        expect(b.byterange.offset).toBe(a.byterange.offset + a.byterange.length);
    }
    expect(runs[0]!.startMs).toBe(from * 1000);
    expect(runs[runs.length - 1]!.startMs).toBeLessThan((from + 2000) * 1000);
    expect(runs[runs.length - 1]!.endMs).toBeGreaterThanOrEqual((from + 2000) * 1000);
  });

  it("starts at the first key frame at or after `from` and starts no segment at or after from + dur (2 s GOPs of 0.5 s fragments)", async () => {
    const from = DAY + 3600 + 3; // key frames at +2 s and +4 s: the first segment starts at +4 s
    const res = await get(handler(), `/${SOURCE}/gop/archive-${from}-61.fmp4.m3u8`, {
      token: token({ stream: "gop" }),
    });
    expect(res.status).toBe(200);
    const p = mediaPlaylist(res.text);
    const runs = checkAgainstIndex(p, "gop");
    expect(runs[0]!.startMs).toBe((DAY + 3604) * 1000);
    expect(runs.every((r) => r.startMs < (from + 61) * 1000)).toBe(true);
    expect(runs[runs.length - 1]!.endMs).toBeGreaterThanOrEqual((from + 61) * 1000);
    for (const r of runs) expect(r.endMs - r.startMs).toBeLessThanOrEqual(6000);
    for (const r of runs.slice(0, -1)) expect(r.endMs - r.startMs).toBeGreaterThanOrEqual(2000);
  });

  it("`dur=now` is an EVENT playlist without ENDLIST", async () => {
    const res = await get(handler(), `/${SOURCE}/${STREAM}/index-${DAY + 6300}-now.m3u8`);
    expect(res.status).toBe(200);
    const p = mediaPlaylist(res.text);
    expect(p.playlistType).toBe("EVENT");
    expect(p.endlist).toBe(false);
    const runs = checkAgainstIndex(p, STREAM);
    // The live edge maps to the wall clock: the last dated segment plus the EXTINFs after it gives
    // the newest segment's start in the index (EXTINF has milliseconds, so at most 1 ms apart each).
    const dated = p.segments.findLastIndex((seg) => seg.programDateTime !== undefined);
    expect(dated).toBeGreaterThanOrEqual(0);
    const after = p.segments.slice(dated, -1).reduce((ms, seg) => ms + seg.duration * 1000, 0);
    const edgeMs = p.segments[dated]!.programDateTime!.getTime() + after;
    expect(Math.abs(edgeMs - runs.at(-1)!.startMs)).toBeLessThanOrEqual(p.segments.length - dated);
  });

  it("a 24-hour range reads each stream-day once and is answered; 24 h + 1 s is refused with 400", async () => {
    reads.length = 0;
    const ok = await get(handler(), `/${SOURCE}/${STREAM}/index-${DAY}-86400.m3u8`);
    expect(ok.status).toBe(200);
    expect(reads).toHaveLength(1);
    const huge = await get(handler(), `/${SOURCE}/${STREAM}/index-${DAY}-86401.m3u8`);
    expect(huge.status).toBe(400);
    expect(huge.text).toMatch(/longer than 86400 s/);
    const big = await get(handler(), `/${SOURCE}/${STREAM}/index-${DAY}-99999999999.m3u8`);
    expect(big.status).toBe(400);
  });
});

describe("timeshift_rel-{seconds}.m3u8 (delayed channel)", () => {
  const path = (s: number) => `/${SOURCE}/${STREAM}/timeshift_rel-${s}.m3u8`;

  it("slides with the clock, never moves its sequence numbers back, and two handlers agree, across a window boundary and holes", async () => {
    const delay = 1800;
    let last: { seq: number; disc: number; firstMs: number } | undefined;
    const seen = new Map<number, string>(); // sequence number -> byte range + uri: one segment per number
    for (let t = DAY + 3600 + delay + 60; t < DAY + 6600 + delay; t += 7) {
      const clock = () => t * 1000;
      const [a, b] = [await get(handler({ clock }), path(delay)), await get(handler({ clock }), path(delay))];
      expect(a.text).toBe(b.text);
      expect(a.status, `${t - DAY}: ${a.text}`).toBe(200);
      const p = mediaPlaylist(a.text);
      expect(p.playlistType).toBeUndefined();
      expect(p.endlist).toBe(false);
      const runs = checkAgainstIndex(p, STREAM);
      const first = p.segments[0]!;
      const edge = (t - delay) * 1000;
      const inHole =
        (edge > (DAY + 5000) * 1000 && edge < (DAY + 5100) * 1000) ||
        (edge > (DAY + 5400) * 1000 && edge < (DAY + 6000) * 1000);
      for (const r of runs) expect(r.startMs).toBeLessThanOrEqual(edge);
      // Outside holes the newest segment is the one playing at the edge; inside, the playlist waits.
      if (!inHole) expect(runs.at(-1)!.endMs).toBeGreaterThan(edge - 6000);
      expect(runs.at(-1)!.startMs - runs[0]!.startMs).toBeLessThan(60_000);
      for (const s of p.segments) {
        const id = `${s.uri} ${s.byterange.offset}+${s.byterange.length}`;
        expect(seen.get(s.mediaSequenceNumber) ?? id).toBe(id);
        seen.set(s.mediaSequenceNumber, id);
      }
      const now = {
        seq: p.mediaSequenceBase!,
        disc: p.discontinuitySequenceBase!,
        firstMs: first.programDateTime!.getTime(),
      };
      if (last) {
        expect(now.seq).toBeGreaterThanOrEqual(last.seq);
        expect(now.disc).toBeGreaterThanOrEqual(last.disc);
      }
      last = now;
    }
    expect(seen.size).toBeGreaterThan(300);
  });

  it("restarts its numbering at a UTC day's first segment without reusing a number", async () => {
    const delay = 3600;
    const seen = new Map<number, string>();
    const daysSeen = new Set<number>();
    let lastSeq = -1;
    for (let t = DAY + 86_400 - 300 + delay; t < DAY + 86_400 + 300 + delay; t += 5) {
      const res = await get(
        handler({ clock: () => t * 1000 }),
        `/${SOURCE}/midnight/timeshift_rel-${delay}.m3u8`,
        {
          token: token({ stream: "midnight", ttl: 3 * 86_400 }),
        },
      );
      expect(res.status, res.text).toBe(200);
      const p = mediaPlaylist(res.text);
      expect(p.mediaSequenceBase!).toBeGreaterThanOrEqual(lastSeq);
      lastSeq = p.mediaSequenceBase!;
      // One UTC day per playlist: a segment's window starts on the day its number belongs to.
      const days = new Set(p.segments.map((s) => Math.floor(s.mediaSequenceNumber / 1_000_000)));
      expect(days.size).toBe(1);
      const day = [...days][0]!;
      daysSeen.add(day);
      for (const s of p.segments)
        expect(s.uri).toContain(new Date(day * 86_400_000).toISOString().slice(0, 10));
      for (const s of p.segments) {
        const id = `${s.uri} ${s.byterange.offset}`;
        expect(seen.get(s.mediaSequenceNumber) ?? id).toBe(id);
        seen.set(s.mediaSequenceNumber, id);
      }
    }
    expect([...daysSeen]).toEqual([20423, 20424]);
  });

  it("a delay shorter than the backup's lag is 425 saying how far behind the backup is", async () => {
    const t = DAY + 6600 + 900; // newest stored second: DAY + 6600, 900 s ago
    const res = await get(handler({ clock: () => t * 1000 }), path(300));
    expect(res.status).toBe(425);
    expect(res.text).toMatch(/is 900 s behind live .*timeshift_rel-900 or more/);
  });
});

describe("timeshift_abs-{from}.m3u8", () => {
  it("redirects to a URL that carries its start time, then plays from `from` forward in real time", async () => {
    const from = DAY + 4190;
    const h = handler();
    const tok = token();
    const first = await get(h, `/${SOURCE}/${STREAM}/timeshift_abs-${from}.m3u8`, { token: tok });
    expect(first.status).toBe(302);
    const location = new URL(first.headers.Location!, "http://x");
    expect(location.pathname).toBe(`/${SOURCE}/${STREAM}/timeshift_abs-${from}.m3u8`);
    expect(location.searchParams.get("token")).toBe(tok);
    expect(location.searchParams.get("start")).toBe(String(nowMs / 1000));
    const query = Object.fromEntries(location.searchParams);
    const at = async (elapsed: number) => {
      const p = mediaPlaylist(
        (await get(handler({ clock: () => nowMs + elapsed * 1000 }), location.pathname, query)).text,
      );
      checkAgainstIndex(p, STREAM);
      return p;
    };
    const p0 = await at(0);
    const runs0 = checkAgainstIndex(p0, STREAM);
    // The first segment boundary at or after `from` (live segments are cut from each window's start).
    expect(runs0[0]!.startMs).toBeGreaterThanOrEqual(from * 1000);
    expect(runs0[0]!.startMs).toBeLessThan(from * 1000 + 6000);
    expect(runs0.length).toBeGreaterThanOrEqual(3);
    const p1 = await at(120);
    const runs1 = checkAgainstIndex(p1, STREAM);
    expect(p1.mediaSequenceBase!).toBeGreaterThan(p0.mediaSequenceBase!);
    expect(runs1.at(-1)!.startMs - runs0.at(-1)!.startMs).toBeGreaterThanOrEqual(114_000);
    expect(runs1.at(-1)!.startMs - runs0.at(-1)!.startMs).toBeLessThanOrEqual(126_000);
  });
});

describe("DASH: archive-{from}-{dur}.mpd, timeshift_abs-{from}.mpd, rewind-{ago}.mpd", () => {
  const ranges = (mpd: string) =>
    [...mpd.matchAll(/<SegmentURL media="([^"]+)" mediaRange="(\d+)-(\d+)"\/>/g)].map((m) => ({
      uri: m[1]!,
      offset: Number(m[2]),
      length: Number(m[3]) - Number(m[2]) + 1,
    }));

  it("archive-{from}-{dur}.mpd points at the same byte ranges as the HLS playlist of the range, as application/dash+xml", async () => {
    const from = DAY + 4100;
    const res = await get(handler(), `/${SOURCE}/${STREAM}/archive-${from}-1200.mpd`);
    expect(res.status).toBe(200);
    expect(res.headers["Content-Type"]).toBe("application/dash+xml");
    const hls = mediaPlaylist((await get(handler(), `/${SOURCE}/${STREAM}/archive-${from}-1200.m3u8`)).text);
    expect(ranges(res.text)).toEqual(
      hls.segments.map((s) => ({ uri: s.uri, offset: s.byterange!.offset, length: s.byterange!.length })),
    );
    // A window boundary (4200) and a hole inside W3 (5000-5100): periods at the hole only.
    expect(res.text.match(/<Period /g)).toHaveLength(2);
  });

  it("timeshift_abs-{from}.mpd redirects to a URL with its start, then is dynamic with its live edge at from + (now - start)", async () => {
    const from = DAY + 4190;
    const first = await get(handler(), `/${SOURCE}/${STREAM}/timeshift_abs-${from}.mpd`);
    expect(first.status).toBe(302);
    const location = new URL(first.headers.Location!, "http://x");
    expect(location.searchParams.get("start")).toBe(String(nowMs / 1000));
    const later = await get(
      handler({ clock: () => nowMs + 60_000 }),
      location.pathname,
      Object.fromEntries(location.searchParams),
    );
    expect(later.status).toBe(200);
    expect(later.text).toContain('type="dynamic"');
    // Wall clock minus availabilityStartTime is the position: AST = start - from.
    const ast = Date.parse(/availabilityStartTime="([^"]+)"/.exec(later.text)![1]!);
    expect(ast).toBe(nowMs - from * 1000);
    const last = [...later.text.matchAll(/<S t="(\d+)" d="(\d+)"(?: r="(\d+)")?\/>/g)].at(-1)!;
    const endMs = Number(last[1]) + (Number(last[3] ?? 0) + 1) * Number(last[2]);
    expect(endMs).toBeLessThanOrEqual((from + 60) * 1000 + 18_000);
    expect(endMs).toBeGreaterThan((from + 60) * 1000);
  });

  it("rewind-{ago}.mpd: 425 with the lag when the backup is more than a minute behind now, dynamic when it is not; a depth of 0 is 400", async () => {
    const behind = await get(handler(), `/${SOURCE}/${STREAM}/rewind-3600.mpd`);
    expect(behind.status).toBe(425);
    expect(behind.text).toMatch(
      /is 600 s behind live .*play timeshift_abs-\d+\.mpd or archive-\d+-3600\.mpd/,
    );
    const close = await get(
      handler({ clock: () => (DAY + 6630) * 1000 }),
      `/${SOURCE}/${STREAM}/rewind-600.mpd`,
    );
    expect(close.status).toBe(200);
    expect(close.text).toContain('timeShiftBufferDepth="PT600.000S"');
    expect((await get(handler(), `/${SOURCE}/${STREAM}/rewind-0.mpd`)).status).toBe(400);
  });
});

describe("archive-{from}-{dur}.mp4", () => {
  it("redirects to the stored object when the range is exactly one window", async () => {
    const w = indexes.get(STREAM)![1]!;
    const res = await get(handler(), `/${SOURCE}/${STREAM}/archive-${w.from}-${w.duration}.mp4`);
    expect(res.status).toBe(302);
    expect(res.headers.Location).toBe(`https://media.example/${w.key}`);
  });

  it.skipIf(!hasFfmpeg)(
    "joins a range across a window boundary into one fragmented MP4 (real H.264/AAC): one init, the range's fragments, decode times from 0, ffprobe reads its duration",
    async () => {
      const from = DAY + 3600 + 45; // 45 s into the first real-media window, 30 s across the boundary
      const res = await get(handler(), `/${SOURCE}/real/archive-${from}-30.mp4`, {
        token: token({ stream: "real" }),
      });
      expect(res.status, res.text.slice(0, 200)).toBe(200);
      expect(res.headers["Content-Type"]).toBe("video/mp4");
      const boxes = [...children(res.bytes, 0)];
      expect(boxes.filter((b) => b.type === "ftyp")).toHaveLength(1);
      const moovs = boxes.filter((b) => b.type === "moov");
      expect(moovs).toHaveLength(1);
      const { tracks } = readInitSegment(res.bytes.subarray(moovs[0]!.start, moovs[0]!.end));
      const moofs = boxes.filter((b) => b.type === "moof");
      // Expected fragments: from the first key frame at or after `from` to the last starting before the end.
      const all = indexes.get("real")!.flatMap((w) => w.fragments);
      const firstKey = all.findIndex((f) => f.keyframe && f.startMs >= from * 1000);
      const expected = all.slice(firstKey).filter((f) => f.startMs < (from + 30) * 1000);
      expect(moofs).toHaveLength(expected.length);
      const first = readMovieFragment(
        Buffer.from(res.bytes.subarray(moofs[0]!.start, moofs[0]!.end)),
        tracks,
      );
      expect(first.trafs[0]!.decodeTime).toBe(0);
      const file = join(mkdtempSync(join(tmpdir(), "playback-")), "range.mp4");
      writeFileSync(file, res.bytes);
      const probe = spawnSync(
        "ffprobe",
        ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", file],
        {
          encoding: "utf8",
        },
      );
      expect(Number(probe.stdout.trim())).toBeGreaterThan(29);
      expect(Number(probe.stdout.trim())).toBeLessThan(31.5);
    },
  );
});

describe("{from}-preview.mp4", () => {
  const preview = (from: number) =>
    get(handler(), `/${SOURCE}/real/${from}-preview.mp4`, { token: token({ stream: "real" }) });

  it.skipIf(!hasFfmpeg)(
    "is the first stored key frame at or after `from` as a one-fragment MP4 of the stored size (ffprobe: an H.264 key frame, 160x120), cut without decoding",
    async () => {
      const from = DAY + 3600 + 10;
      const res = await preview(from);
      expect(res.status, res.text.slice(0, 200)).toBe(200);
      expect(res.headers["Content-Type"]).toBe("video/mp4");
      const boxes = [...children(res.bytes, 0)];
      expect(boxes.map((b) => b.type)).toEqual(["ftyp", "moov", "moof", "mdat"]);
      // The fragment is the stored key-frame fragment at `from`, byte for byte in its mdat.
      const w = indexes.get("real")![0]!;
      const f = w.fragments.find((x) => x.keyframe && x.startMs >= from * 1000)!;
      expect(f.startMs).toBe(from * 1000);
      const mdat = boxes.find((b) => b.type === "mdat")!;
      expect(mdat.end - mdat.start).toBeLessThan(f.length);
      const file = join(mkdtempSync(join(tmpdir(), "preview-")), "preview.mp4");
      writeFileSync(file, res.bytes);
      const probe = spawnSync(
        "ffprobe",
        [
          ...["-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1"],
          ...["-show_entries", "frame=pict_type,key_frame,width,height", "-of", "json", file],
        ],
        { encoding: "utf8" },
      );
      const frame = (JSON.parse(probe.stdout) as { frames: Record<string, unknown>[] }).frames[0];
      expect(frame).toMatchObject({ pict_type: "I", key_frame: 1, width: 160, height: 120 });
    },
  );

  it.skipIf(!hasFfmpeg)(
    "a `from` in a gap gives the next stored key frame within 600 s (as the spec lets a client ask an approximate time); none there is 404 with the span searched",
    async () => {
      const before = await preview(DAY + 3600 - 30); // nothing stored before DAY + 3600
      const exact = await preview(DAY + 3600);
      expect(before.status).toBe(200);
      expect(before.bytes).toEqual(exact.bytes);
      const none = await preview(DAY + 3720 + 1);
      expect(none.status).toBe(404);
      expect(none.text).toBe(
        'no key frame of stream "real" is stored from 2025-12-01T01:02:01Z to 2025-12-01T01:12:01Z (600 s on): a hole in the backup, or not copied yet\n',
      );
    },
  );
});

/** ffprobe's view of a JPEG: codec and size. */
function probeImage(bytes: Buffer): { codec_name: string; width: number; height: number } {
  const file = join(mkdtempSync(join(tmpdir(), "preview-")), "preview.jpg");
  writeFileSync(file, bytes);
  const probe = spawnSync(
    "ffprobe",
    ["-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "json", file],
    { encoding: "utf8" },
  );
  return (JSON.parse(probe.stdout) as { streams: { codec_name: string; width: number; height: number }[] })
    .streams[0]!;
}

/** An in-memory ImageCache counting what it is asked. */
function memoryCache() {
  const images = new Map<string, Uint8Array>();
  const calls = { get: 0, put: 0 };
  const cache: ImageCache = {
    async get(source, stream, ms, size) {
      calls.get++;
      return images.get(`${source}/${stream}/${ms}/${size.width}x${size.height}`);
    },
    async put(source, stream, ms, size, jpeg) {
      calls.put++;
      images.set(`${source}/${stream}/${ms}/${size.width}x${size.height}`, jpeg);
    },
  };
  return { cache, images, calls };
}

describe("{from}-preview.jpg and thumbnails (images-{W}x{H}/…)", () => {
  const realToken = () => ({ token: token({ stream: "real" }) });
  const decoding = () => {
    const c = memoryCache();
    const decode = ffmpegJpegDecoder("ffmpeg");
    let decodes = 0;
    const h = handler({
      imageCache: c.cache,
      decodeJpeg: (mp4, size) => {
        decodes++;
        return decode(mp4, size);
      },
    });
    return { h, c, decodes: () => decodes };
  };

  it.skipIf(!hasFfmpeg)(
    "{from}-preview.jpg is the key frame of {from}-preview.mp4 decoded to a JPEG of the stored size (ffprobe: mjpeg 160x120), decoded once then read from the cache",
    async () => {
      const { h, c, decodes } = decoding();
      const from = DAY + 3600 + 10;
      const res = await get(h, `/${SOURCE}/real/${from}-preview.jpg`, realToken());
      expect(res.status, res.text.slice(0, 200)).toBe(200);
      expect(res.headers["Content-Type"]).toBe("image/jpeg");
      expect(probeImage(res.bytes)).toEqual({ codec_name: "mjpeg", width: 160, height: 120 });
      expect([...c.images.keys()]).toEqual([`${SOURCE}/real/${from * 1000}/160x120`]);
      const again = await get(h, `/${SOURCE}/real/${from}-preview.jpg`, realToken());
      expect(again.bytes).toEqual(res.bytes);
      expect(decodes()).toBe(1);
      expect(c.calls).toEqual({ get: 2, put: 1 });
    },
  );

  it.skipIf(!hasFfmpeg)(
    "images-{W}x{H}/seg-{from}-{offset}.hls.jpg and dvr-…m4v.jpg fit the frame into W x H keeping its shape, never enlarged (ffprobe)",
    async () => {
      const { h } = decoding();
      const from = DAY + 3600;
      const hls = await get(h, `/${SOURCE}/real/images-80x80/seg-${from}-20.hls.jpg`, realToken());
      expect(hls.status, hls.text.slice(0, 200)).toBe(200);
      expect(probeImage(hls.bytes)).toMatchObject({ codec_name: "mjpeg", width: 80, height: 60 });
      const dash = await get(h, `/${SOURCE}/real/images-80x80/dvr-${from}-20.m4v.jpg`, realToken());
      expect(dash.bytes).toEqual(hls.bytes);
      const big = await get(h, `/${SOURCE}/real/images-1920x1080/seg-${from}-20.hls.jpg`, realToken());
      expect(probeImage(big.bytes)).toMatchObject({ width: 160, height: 120 });
    },
  );

  it.skipIf(!hasFfmpeg)(
    "a `from` in a gap gives the next stored key frame (Flussonic searches after `from`); none within 600 s is 404",
    async () => {
      const { h } = decoding();
      const before = await get(h, `/${SOURCE}/real/${DAY + 3600 - 30}-preview.jpg`, realToken());
      const exact = await get(h, `/${SOURCE}/real/${DAY + 3600}-preview.jpg`, realToken());
      expect(before.status).toBe(200);
      expect(before.bytes).toEqual(exact.bytes);
      const none = await get(h, `/${SOURCE}/real/${DAY + 3721}-preview.jpg`, realToken());
      expect(none.status).toBe(404);
      expect(none.text).toMatch(/^no key frame of stream "real" is stored from /);
    },
  );

  it.skipIf(!hasFfmpeg)(
    "without a decoder a JPEG is 501 pointing to the MP4 preview of the same key frame",
    async () => {
      const res = await get(handler(), `/${SOURCE}/real/${DAY + 3610}-preview.jpg`, realToken());
      expect(res.status).toBe(501);
      expect(res.text).toContain(`ask for ${DAY + 3610}-preview.mp4`);
    },
  );

  it("sizes out of range and malformed ones are 400 naming the size and the range, never 500", async () => {
    const h = handler();
    for (const [size, says] of [
      ["8x8", "the width 8 is out of range: each side is 16 to 3840 pixels"],
      ["320x5000", "the height 5000 is out of range"],
      ["0x0", "the width 0 is out of range"],
      ["320by240", "not a thumbnail size"],
    ] as const) {
      const res = await get(h, `/${SOURCE}/real/images-${size}/seg-${DAY + 3600}-0.hls.jpg`, realToken());
      expect(res.status, size).toBe(400);
      expect(res.text, size).toContain(says);
    }
  });

  it("a stream without video (audio only) is 409 for a JPEG and for ?thumbnails, saying so", async () => {
    const h = handler({ decodeJpeg: () => Promise.reject(new Error("must not decode")) });
    const gop = { token: token({ stream: "gop" }) };
    const jpg = await get(h, `/${SOURCE}/gop/${DAY + 3600}-preview.jpg`, gop);
    expect(jpg.status).toBe(409);
    expect(jpg.text).toContain('stream "gop" has no video');
    for (const file of [`index-${DAY + 3600}-600.m3u8`, `archive-${DAY + 3600}-600.mpd`]) {
      const res = await get(h, `/${SOURCE}/gop/${file}`, { ...gop, thumbnails: "10" });
      expect(res.status, file).toBe(409);
      expect(res.text, file).toContain('stream "gop" has no video in this range (audio only)');
    }
  });

  it("?thumbnails that is not a count of 1 to 1000, or more images than seconds, is 400", async () => {
    const h = handler();
    for (const [n, says] of [
      ["0", "thumbnails=0 is not a count of images: ask for 1 to 1000"],
      ["abc", "thumbnails=abc is not a count"],
      ["1001", "thumbnails=1001 is not a count"],
      ["700", "thumbnails=700 over 600 s is less than 1 s per image: ask for at most 600"],
    ] as const) {
      const res = await get(h, `/${SOURCE}/${STREAM}/index-${DAY + 3600}-600.m3u8`, {
        token: token(),
        thumbnails: n,
      });
      expect(res.status, n).toBe(400);
      expect(res.text, n).toContain(says);
    }
  });

  it.skipIf(!hasFfmpeg)(
    "?thumbnails=N: HLS answers a multivariant playlist with EXT-X-IMAGE-STREAM-INF at images-{W}x{H}/tpl-{from}-{dur}-{N}.m3u8 (N images), DASH an image AdaptationSet at dvr-{from}-$Time$.m4v.jpg",
    async () => {
      const h = handler();
      const from = DAY + 3600;
      const q = { ...realToken(), thumbnails: "12" };
      const tq = `?token=${encodeURIComponent(q.token)}`;
      const master = await get(h, `/${SOURCE}/real/index-${from}-120.m3u8`, q);
      expect(master.status, master.text).toBe(200);
      const lines = master.text.trim().split("\n");
      expect(lines[0]).toBe("#EXTM3U");
      expect(lines).toContain(`index-${from}-120.m3u8${tq}`);
      expect(lines.find((l) => l.startsWith("#EXT-X-STREAM-INF:"))).toMatch(
        /RESOLUTION=160x120,CODECS="avc1\./,
      );
      expect(lines).toContain(
        `#EXT-X-IMAGE-STREAM-INF:BANDWIDTH=10000,RESOLUTION=160x120,CODECS="jpeg",URI="images-160x120/tpl-${from}-120-12.m3u8${tq}"`,
      );
      const tpl = await get(h, `/${SOURCE}/real/images-160x120/tpl-${from}-120-12.m3u8`, realToken());
      expect(tpl.status).toBe(200);
      expect(tpl.text).toContain("#EXT-X-IMAGES-ONLY");
      const images = tpl.text.split("\n").filter((l) => l.startsWith("seg-"));
      expect(images).toHaveLength(12);
      expect(images[0]).toBe(`seg-${from}-0.hls.jpg${tq}`);
      expect(images[11]).toBe(`seg-${from}-110.hls.jpg${tq}`);
      // The media playlist of the same range is unchanged by the option's absence.
      expect(
        mediaPlaylist((await get(h, `/${SOURCE}/real/index-${from}-120.m3u8`, realToken())).text).segments
          .length,
      ).toBeGreaterThan(0);
      const mpd = await get(h, `/${SOURCE}/real/archive-${from}-120.mpd`, q);
      expect(mpd.status, mpd.text).toBe(200);
      expect(mpd.text).toContain('<AdaptationSet id="1" contentType="image" mimeType="image/jpeg">');
      expect(mpd.text).toContain(
        `media="images-160x120/dvr-${from}-$Time$.m4v.jpg${tq.replace("&", "&amp;")}"`,
      );
      expect(mpd.text).toContain('<S t="0" d="10" r="11"/>');
      expect(mpd.text).toContain('value="1x1"');
    },
  );
});

describe("recording_status.json and ranges.json", () => {
  it("list what the backup stores, in Flussonic's shapes (seconds; milliseconds opened_at/closed_at)", async () => {
    const status = await get(handler(), `/${SOURCE}/${STREAM}/recording_status.json`);
    expect(status.status).toBe(200);
    const entry = JSON.parse(status.text); // the spec's dvr_info object (flussonic-shape.test.ts)
    expect(entry.ranges).toEqual([
      { from: DAY + 3600, duration: 1400 },
      { from: DAY + 5100, duration: 300 },
      { from: DAY + 6000, duration: 600 },
    ]);
    expect(entry.from).toBe(DAY + 3600);
    expect(entry.duration).toBe(2300);
    const ranges = await get(handler(), `/${SOURCE}/${STREAM}/ranges.json`, {
      token: token(),
      closed_at_gte: String((DAY + 5200) * 1000),
      opened_at_lte: String((DAY + 6100) * 1000),
    });
    expect(JSON.parse(ranges.text)).toEqual({
      ranges: [
        { opened_at: (DAY + 5200) * 1000, closed_at: (DAY + 5400) * 1000 },
        { opened_at: (DAY + 6000) * 1000, closed_at: (DAY + 6101) * 1000 },
      ],
    });
  });
});

describe("bad requests", () => {
  it("unknown source or stream is 404 (to a token for it; another source's token is refused first)", async () => {
    const nope = `/nope/${STREAM}/index-${DAY + 3600}-60.m3u8`;
    expect((await get(handler(), nope, { token: token({ source: "nope" }) })).status).toBe(404);
    expect((await get(handler(), nope)).status).toBe(403);
    const res = await get(handler(), `/${SOURCE}/cam9/index-${DAY + 3600}-60.m3u8`, {
      token: token({ stream: "cam9" }),
    });
    expect(res.status).toBe(404);
    expect(res.text).toMatch(/no stream "cam9" in source "s1"/);
    expect((await get(handler(), `/${SOURCE}/${STREAM}/whatever.m3u8`)).status).toBe(404);
  });

  it("malformed times are 400", async () => {
    for (const file of [
      `index-abc-60.m3u8`,
      `index-${DAY}-x.m3u8`,
      `timeshift_rel-.m3u8`,
      `archive-${DAY}-0.mp4`,
      "timeshift_rel-0.m3u8",
    ]) {
      const res = await get(handler(), `/${SOURCE}/${STREAM}/${file}`);
      expect(res.status, file).toBe(400);
    }
    const bad = await get(handler(), `/${SOURCE}/${STREAM}/timeshift_abs-${DAY + 4000}.m3u8`, {
      token: token(),
      start: "soon",
    });
    expect(bad.status).toBe(400);
  });

  it("a range before the retention window is 404, one in the future 416, one with nothing stored 404, each with the reason", async () => {
    const old = await get(handler(), `/${SOURCE}/${STREAM}/index-${DAY - 5 * 86_400}-600.m3u8`);
    expect(old.status).toBe(404);
    expect(old.text).toMatch(/before the retention window .*3 days/);
    const future = await get(handler(), `/${SOURCE}/${STREAM}/index-${nowMs / 1000 + 60}-600.m3u8`);
    expect(future.status).toBe(416);
    const hole = await get(handler(), `/${SOURCE}/${STREAM}/index-${DAY + 5500}-300.m3u8`);
    expect(hole.status).toBe(404);
    expect(hole.text).toMatch(/nothing of stream "site\/cam1" is stored/);
  });

  it("tokens: none, another stream's, another source's, an expired one or a forged one is 403 with the reason and never echoes the token; a source-wide token and one signed with the previous key are accepted", async () => {
    const path = `/${SOURCE}/${STREAM}/index-${DAY + 3600}-60.m3u8`;
    const cases: [Record<string, string | undefined>, RegExp][] = [
      [{}, /needs a token/],
      [{ token: token({ stream: "gop" }) }, /for stream "gop"/],
      [{ token: token({ source: "s2", stream: undefined }) }, /for source "s2"/],
      [{ token: token({ ttl: -1 }) }, /expired/],
      [{ token: token({ key: "x".repeat(40) }) }, /signature does not match/],
      [{ token: "v1.abc" }, /malformed/],
    ];
    for (const [query, reason] of cases) {
      const res = await get(handler(), path, query);
      expect(res.status, String(reason)).toBe(403);
      expect(res.text).toMatch(reason);
      if (query.token) expect(res.text).not.toContain(query.token);
    }
    expect((await get(handler(), path, { token: token({ stream: undefined }) })).status).toBe(200);
    expect((await get(handler(), path, { token: token({ key: OLD_KEY }) })).status).toBe(200);
    expect((await get(handler({ keys: undefined }), path, {})).status).toBe(200);
  });

  it("HEAD answers without a body; other methods are 405", async () => {
    const h = handler();
    const head = await h({
      method: "HEAD",
      path: `/${SOURCE}/${STREAM}/index-${DAY + 3600}-60.m3u8`,
      query: { token: token() },
      headers: {},
    });
    expect(head.status).toBe(200);
    expect(head.body).toBeUndefined();
    const post = await h({
      method: "POST",
      path: `/${SOURCE}/${STREAM}/index-${DAY + 3600}-60.m3u8`,
      query: { token: token() },
      headers: {},
    });
    expect(post.status).toBe(405);
  });
});

describe("source names cannot be probed without a token (issue 20 §6)", () => {
  it("answers an unknown source and a known one alike (403, the same sentence) without a token or with a bad one", async () => {
    const h = handler();
    for (const query of [{}, { token: "v1.x.y" }]) {
      const known = await h({
        method: "GET",
        path: `/${SOURCE}/${STREAM}/recording_status.json`,
        query,
        headers: {},
      });
      const unknown = await h({
        method: "GET",
        path: "/nosuch/cam/recording_status.json",
        query,
        headers: {},
      });
      expect(known.status).toBe(403);
      expect(unknown.status).toBe(403);
      expect(unknown.body).toBe(known.body);
    }
  });
});
