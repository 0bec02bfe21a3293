/**
 * Issue 27 item 6: our playback answers are Flussonic-shaped where they say so.
 * - recording_status.json is the spec's dvr_info object (flussonic-contract.ts recordingStatus);
 * - archive-{from}-{dur}.m3u8 is VOD unless dur=now or ?event=true (spec: paths/playback/hls-dvr.yml);
 * - archive-{from}-now.mp4 is answered (spec: paths/playback/mp4-export.yml allows `now`).
 */
import * as HLS from "hls-parser";
import { describe, expect, it } from "vitest";
import { type BackupConfig, configSchema } from "../../functions/config/config.ts";
import { recordingStatus } from "../../functions/domain/flussonic-contract.ts";
import type { FragmentIndexReader, WindowIndex } from "../../functions/domain/fragment-index.ts";
import { indexingCheck } from "../../functions/domain/fragment-indexer.ts";
import { windowKey } from "../../functions/domain/keys.ts";
import type { TimeRange } from "../../functions/domain/ranges.ts";
import { createPlaybackHandler, type PlaybackResponse } from "../../functions/playback/handler.ts";
import { windowChunks } from "../../simulator/content.ts";

HLS.setOptions({ strictMode: true, silent: true });

const DAY = 1_764_547_200; // 2025-12-01T00:00:00Z
const SOURCE = "s1";
const STREAM = "site/cam1";
const PREFIX = "flussonic/";
const NOW = DAY + 6900; // the newest window ends now

/** Windows (seconds after DAY): a hole 4800-5100 and 5700-6300; the newest ends now. */
const LAYOUT: { from: number; duration: number; seconds: TimeRange[] }[] = [
  { from: 3600, duration: 600, seconds: [{ from: 3600, to: 4200 }] },
  { from: 4200, duration: 600, seconds: [{ from: 4200, to: 4800 }] },
  { from: 5100, duration: 600, seconds: [{ from: 5100, to: 5700 }] },
  { from: 6300, duration: 600, seconds: [{ from: 6300, to: 6900 }] },
].map((w) => ({
  from: DAY + w.from,
  duration: w.duration,
  seconds: w.seconds.map((r) => ({ from: DAY + r.from, to: DAY + r.to })),
}));

const objects = new Map<string, Buffer>();
const windows: WindowIndex[] = LAYOUT.map((w) => {
  const body = Buffer.concat([...windowChunks(STREAM, 8000, w.seconds, "mp4")]);
  const { check, indexer } = indexingCheck("mp4", w);
  check.feed(body);
  check.finish();
  const key = windowKey(
    PREFIX,
    { source: SOURCE, stream: STREAM, from: w.from, duration: w.duration },
    "mp4",
  );
  objects.set(key, body);
  return indexer.result(key, body.length, '"etag"');
});

const reader: FragmentIndexReader = {
  async readFragmentIndex(source, stream, fromSec, toSec) {
    if (source !== SOURCE || stream !== STREAM) return [];
    return windows.filter((w) => w.from < toSec && w.from + w.duration > fromSec);
  },
};

const config: BackupConfig = configSchema.parse({
  bucket: "backup",
  sources: [{ name: SOURCE, url: "http://flussonic.example", retentionDays: 3, streams: [STREAM] }],
});

const handler = createPlaybackHandler({
  config,
  index: reader,
  async readObject(key, range) {
    const body = objects.get(key);
    if (!body) throw new Error(`no object ${key}`);
    const slice = range ? body.subarray(range.offset, range.offset + range.length) : body;
    return (async function* () {
      yield slice;
    })();
  },
  mediaUrl: (key) => `https://media.example/${key}`,
  now: () => NOW * 1000,
  tokenKeys: undefined, // open: no token check
});

async function get(
  path: string,
  query: Record<string, string> = {},
): Promise<PlaybackResponse & { text: string; bytes: Buffer }> {
  const res = await handler({ method: "GET", path: `/${SOURCE}/${STREAM}/${path}`, query, headers: {} });
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

describe("recording_status.json", () => {
  it("is the spec's dvr_info object: from, depth from the first range's start to the last one's end, ranges", async () => {
    const res = await get("recording_status.json");
    expect(res.status).toBe(200);
    const body = JSON.parse(res.text);
    expect(Array.isArray(body)).toBe(false);
    const parsed = recordingStatus.parse(body);
    expect(parsed.ranges).toEqual([
      { from: DAY + 3600, duration: 1200 },
      { from: DAY + 5100, duration: 600 },
      { from: DAY + 6300, duration: 600 },
    ]);
    expect(parsed.from).toBe(DAY + 3600);
    expect(parsed.depth).toBe(6900 - 3600);
    expect(parsed.duration).toBe(2400);
  });

  it("is a dvr_info object with no ranges when nothing is stored in the span", async () => {
    const res = await get("recording_status.json", { from: String(DAY + 4850), to: String(DAY + 5000) });
    const parsed = recordingStatus.parse(JSON.parse(res.text));
    expect(parsed.ranges).toEqual([]);
    expect(parsed.depth).toBe(0);
  });
});

describe("archive-{from}-{dur}.m3u8 playlist type", () => {
  it("is VOD when the range reaches past now (players start a VOD at its beginning)", async () => {
    const res = await get(`archive-${DAY + 6300}-3600.m3u8`);
    expect(res.status).toBe(200);
    const p = mediaPlaylist(res.text);
    expect(p.playlistType).toBe("VOD");
    expect(p.endlist).toBe(true);
  });

  it("is EVENT with ?event=true while from + dur is in the future, VOD once it is past", async () => {
    const open = mediaPlaylist((await get(`archive-${DAY + 6300}-3600.m3u8`, { event: "true" })).text);
    expect(open.playlistType).toBe("EVENT");
    expect(open.endlist).toBe(false);
    const past = mediaPlaylist((await get(`archive-${DAY + 3600}-600.m3u8`, { event: "true" })).text);
    expect(past.playlistType).toBe("VOD");
  });

  it("is EVENT with dur=now", async () => {
    const p = mediaPlaylist((await get(`index-${DAY + 6300}-now.m3u8`)).text);
    expect(p.playlistType).toBe("EVENT");
  });
});

describe("archive-{from}-now.mp4", () => {
  it("exports from `from` to now, as the spec allows, instead of refusing it with 400", async () => {
    // From the newest window's start to now is that window: the same answer as its numeric URL.
    const res = await get(`archive-${DAY + 6300}-now.mp4`);
    expect(res.status, res.text).toBe(302);
    const exact = await get(`archive-${DAY + 6300}-600.mp4`);
    expect(exact.status).toBe(302);
    expect(res.headers.Location).toBe(exact.headers.Location);
    expect(res.headers.Location).toContain("014500Z-600s.mp4");
  });

  it("is 416 when `from` is in the future", async () => {
    expect((await get(`archive-${NOW + 60}-now.mp4`)).status).toBe(416);
  });
});
