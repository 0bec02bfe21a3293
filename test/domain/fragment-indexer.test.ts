/**
 * The fragment index built while a window's bytes stream through the container check, on the
 * simulator's synthetic bytes and (when ffmpeg is on the PATH) its real H.264/AAC media.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MEDIA_END_TOLERANCE_SECONDS } from "../../functions/domain/container-check.ts";
import type { WindowIndex } from "../../functions/domain/fragment-index.ts";
import { FragmentIndexer, indexingCheck } from "../../functions/domain/fragment-indexer.ts";
import type { Mp4Track, Mp4TrackFragment } from "../../functions/domain/mp4-join.ts";
import { windowChunks } from "../../simulator/content.ts";
import { loadRealMedia, realWindowChunks } from "../../simulator/real-media.ts";

const hasFfmpeg = spawnSync("ffmpeg", ["-version"], { stdio: "ignore" }).status === 0;
const hasX265 =
  hasFfmpeg && spawnSync("ffmpeg", ["-hide_banner", "-encoders"]).stdout.toString().includes("libx265");
if (!hasFfmpeg)
  console.log("real-media index tests skipped: ffmpeg not on the PATH (apt-get install ffmpeg)");

const FROM = 1_764_547_200; // 2025-12-01T00:00:00Z, a multiple of the real clip's 10 s

/** Feeds the bytes in `piece`-byte chunks (regrouped), returns the index and the whole body. */
function index(
  format: "mp4" | "ts",
  chunks: Iterable<Buffer>,
  window: { from: number; duration: number },
  piece = 4096,
): { index: WindowIndex; body: Buffer } {
  const body = Buffer.concat([...chunks]);
  const { check, indexer } = indexingCheck(format, window);
  for (let i = 0; i < body.length; i += piece) check.feed(body.subarray(i, i + piece));
  check.finish();
  return { index: indexer.result("key", body.length, '"etag"'), body };
}

function expectTiles(ix: WindowIndex, size: number): void {
  const f = ix.fragments;
  expect(f.length).toBeGreaterThan(0);
  for (let i = 1; i < f.length; i++) expect(f[i]!.offset).toBe(f[i - 1]!.offset + f[i - 1]!.length);
  expect(f[f.length - 1]!.offset + f[f.length - 1]!.length).toBe(size);
}

describe("fragment index of synthetic fMP4", () => {
  const seconds = [{ from: FROM, to: FROM + 60 }];
  const { index: ix, body } = index("mp4", windowChunks("cam1", 80_000, seconds, "mp4"), {
    from: FROM,
    duration: 60,
  });

  it("has the init segment first and fragments that tile the rest of the body exactly", () => {
    expect(ix.init?.offset).toBe(0);
    expect(body.toString("latin1", 4, 8)).toBe("ftyp");
    expect(ix.fragments[0]!.offset).toBe(ix.init!.length);
    expectTiles(ix, body.length);
    for (const f of ix.fragments) expect(body.toString("latin1", f.offset + 4, f.offset + 8)).toBe("moof");
  });

  it("places each fragment on its archive second (absolute tfdt), one keyframe second each", () => {
    expect(ix.origin).toBe("absolute");
    expect(ix.fragments.map((f) => f.startMs)).toEqual(
      Array.from({ length: 60 }, (_, i) => (FROM + i) * 1000),
    );
    expect(new Set(ix.fragments.map((f) => f.durationMs))).toEqual(new Set([1000]));
    expect(ix.fragments.every((f) => f.keyframe)).toBe(true);
    // The payload of each fragment's mdat starts with its unix second.
    for (const f of ix.fragments) {
      const moof = body.readUInt32BE(f.offset);
      expect(Number(body.readBigUInt64BE(f.offset + moof + 8))).toBe(f.startMs / 1000);
    }
  });

  it("knows no codec of bytes without a sample description, and is the same in any chunking", () => {
    expect(ix.codecs).toBeUndefined();
    for (const piece of [1, 7, 100_000]) {
      expect(
        index("mp4", windowChunks("cam1", 80_000, seconds, "mp4"), { from: FROM, duration: 60 }, piece).index,
      ).toEqual(ix);
    }
  });

  it("maps decode times from the window start when they do not read as unix times", () => {
    // The same bytes taken for a window a day later: the tfdt is then a relative origin.
    const later = index("mp4", windowChunks("cam1", 80_000, seconds, "mp4"), {
      from: FROM + 86_400,
      duration: 60,
    }).index;
    expect(later.origin).toBe("window");
    expect(later.fragments[0]!.startMs).toBe((FROM + 86_400) * 1000);
    expect(later.fragments[59]!.startMs).toBe((FROM + 86_400 + 59) * 1000);
  });
});

describe("fragment index of synthetic MPEG-TS", () => {
  it("finds no random-access point in bytes without PAT/PMT or key frames", () => {
    const { index: ix } = index("ts", windowChunks("cam1", 80_000, [{ from: FROM, to: FROM + 10 }], "ts"), {
      from: FROM,
      duration: 10,
    });
    expect(ix.origin).toBe("window");
    expect(ix.psi).toEqual([]);
    expect(ix.fragments).toEqual([]);
  });
});

describe.skipIf(!hasFfmpeg)("fragment index of real media (ffmpeg H.264/AAC)", () => {
  const window = { from: FROM + 20, duration: 30 };
  const seconds = [{ from: window.from, to: window.from + window.duration }];

  it("fMP4: init, tiling fragments on the archive seconds, key frames, codecs and resolution", async () => {
    const media = await loadRealMedia();
    const { index: ix, body } = index("mp4", realWindowChunks(media, seconds, "mp4"), window);
    expect(ix.init).toEqual({ offset: 0, length: media.mp4.init.length });
    expect(ix.fragments[0]!.offset).toBe(media.mp4.init.length);
    expectTiles(ix, body.length);
    expect(ix.origin).toBe("absolute");
    expect(ix.fragments.map((f) => f.startMs)).toEqual(
      Array.from({ length: 30 }, (_, i) => (window.from + i) * 1000),
    );
    expect(ix.fragments.every((f) => f.durationMs === 1000 && f.keyframe)).toBe(true);
    expect(ix.codecs).toMatch(/^avc1\.[0-9a-f]{6},mp4a\.40\.2$/);
    expect([ix.width, ix.height]).toEqual([160, 120]);
  });

  it("fMP4: a fragment whose first video sample is not a sync sample is not a keyframe", async () => {
    const media = await loadRealMedia();
    const body = Buffer.concat([...realWindowChunks(media, seconds, "mp4")]);
    const { index: ix } = index("mp4", [body], window);
    // Set sample_is_non_sync on the first sample of the third fragment's video run.
    const third = ix.fragments[2]!;
    const moof = body.subarray(third.offset, third.offset + body.readUInt32BE(third.offset));
    const trun = moof.indexOf("trun", 0, "latin1") - 4;
    const flags = moof.readUInt32BE(trun + 8) & 0xffffff;
    expect(flags & 0x04, "ffmpeg writes first-sample flags").toBe(0x04);
    const at = trun + 16 + (flags & 0x01 ? 4 : 0);
    moof.writeUInt32BE(moof.readUInt32BE(at) | 0x10000, at);
    const changed = index("mp4", [body], window).index;
    expect(changed.fragments.map((f) => f.keyframe)).toEqual(ix.fragments.map((_, i) => i !== 2));
  });

  it("MPEG-TS: PAT and PMT first, a random-access point per second on its PTS", async () => {
    const media = await loadRealMedia();
    const { index: ix, body } = index("ts", realWindowChunks(media, seconds, "ts"), window);
    expect(ix.psi?.map((r) => r.length)).toEqual([188, 188]);
    const [pat, pmt] = ix.psi!;
    expect(body.readUInt16BE(pat!.offset + 1) & 0x1fff).toBe(0);
    expect(pmt!.offset).toBeGreaterThan(pat!.offset);
    expect(ix.fragments.length).toBe(30);
    expect(ix.fragments[0]!.offset).toBeGreaterThan(pmt!.offset);
    expectTiles(ix, body.length);
    // The first PTS of the body is the window's start; key frames follow once a second.
    for (const [i, f] of ix.fragments.entries()) {
      expect(Math.abs(f.startMs - (window.from + i) * 1000)).toBeLessThanOrEqual(100);
      expect(body[f.offset]).toBe(0x47);
      // Each TS fragment starts at a random-access point and lasts until the next one (the last
      // until the body's latest PTS): about a second each.
      expect(f.keyframe).toBe(true);
      expect(Math.abs(f.durationMs - 1000), `fragment ${i} lasts ${f.durationMs} ms`).toBeLessThanOrEqual(
        100,
      );
    }
    const next = ix.fragments.slice(1);
    for (const [i, f] of next.entries())
      expect(f.startMs).toBe(ix.fragments[i]!.startMs + ix.fragments[i]!.durationMs);
  });
});

describe.skipIf(!hasFfmpeg)("fragment index of MPEG-TS without random-access flags", () => {
  it("finds the key frames from the H.264 IDR and SPS units when the adaptation fields do not mark them", async () => {
    const window = { from: FROM + 20, duration: 30 };
    const media = await loadRealMedia();
    const flagged = Buffer.concat([
      ...realWindowChunks(media, [{ from: window.from, to: window.from + 30 }], "ts"),
    ]);
    const body = Buffer.from(flagged);
    let cleared = 0;
    for (let p = 0; p + 188 <= body.length; p += 188) {
      const control = (body[p + 3]! >> 4) & 3;
      if (control & 2 && body[p + 4]! > 0 && body[p + 5]! & 0x40) {
        body[p + 5] = body[p + 5]! & ~0x40;
        cleared++;
      }
    }
    expect(cleared, "the real TS marks its random-access points").toBeGreaterThan(0);
    const { index: withFlags } = index("ts", [flagged], window);
    const { index: without } = index("ts", [body], window);
    expect(without.fragments).toHaveLength(30);
    expect(without.fragments).toEqual(withFlags.fragments);
  });
});

describe.skipIf(!hasX265)("fragment index of HEVC (ffmpeg libx265)", () => {
  it("names the codec as HLS expects (hvc1.{profile}.{compat}.{tier}{level}.{constraints}) with the resolution", () => {
    const dir = mkdtempSync(join(tmpdir(), "fb-hevc-"));
    try {
      const file = join(dir, "hevc.mp4");
      const made = spawnSync("ffmpeg", [
        ...["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t", "2"],
        ...["-pix_fmt", "yuv420p", "-c:v", "libx265", "-x265-params", "log-level=error", "-g", "10"],
        ...["-tag:v", "hvc1", "-f", "mp4", "-movflags", "frag_keyframe+empty_moov+default_base_moof", file],
      ]);
      expect(made.status, made.stderr.toString()).toBe(0);
      const { index: ix } = index("mp4", [readFileSync(file)], { from: 0, duration: 2 });
      // Main profile (1, compatible with 1 and 2: flags 0x60000000 reversed = 6), level 1 (30).
      expect(ix.codecs).toBe("hvc1.1.6.L30.90");
      expect([ix.width, ix.height]).toEqual([160, 120]);
      expect(ix.fragments.map((f) => [f.startMs, f.durationMs, f.keyframe])).toEqual([
        [0, 1000, true],
        [1000, 1000, true],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("fMP4 fragments as the container check reports them", () => {
  const NON_SYNC = 0x10000;
  const audio: Mp4Track = {
    id: 1,
    timescale: 48_000,
    handler: "soun",
    defaultSampleDuration: 1024,
    defaultSampleFlags: 0,
    described: true,
  };
  const video: Mp4Track = {
    id: 2,
    timescale: 90_000,
    handler: "vide",
    defaultSampleDuration: 3000,
    defaultSampleFlags: 0,
    described: true,
  };
  const moov = Buffer.concat([Buffer.from([0, 0, 0, 8]), Buffer.from("moov")]);
  const traf = (t: Mp4Track, second: number, flags: number | undefined): Mp4TrackFragment => ({
    trackId: t.id,
    tfdtAt: 0,
    decodeTime: second * t.timescale,
    duration: t.timescale,
    baseDataOffsetAt: undefined,
    firstSampleFlags: flags,
  });

  it("times and key frames come from the video track, whatever the order of the tracks and trafs", () => {
    const ix = new FragmentIndexer("mp4", { from: FROM, duration: 60 });
    ix.init(
      500,
      moov,
      new Map([
        [1, audio],
        [2, video],
      ]),
    );
    // A second init (a repeated moov) changes nothing.
    ix.init(900, moov, new Map([[1, audio]]));
    ix.fragment(508, [traf(audio, FROM, 0), traf(video, FROM, NON_SYNC)]);
    ix.fragment(600, [traf(audio, FROM + 1.5, NON_SYNC), traf(video, FROM + 1, 0)]);
    ix.fragment(700, [traf(audio, FROM + 2, 0)]);
    ix.fragment(800, [traf(video, FROM + 3, undefined)]);
    ix.fragment(850, []);
    const w = ix.result("key", 900);
    expect(w.init).toEqual({ offset: 0, length: 508 });
    expect(w.origin).toBe("absolute");
    expect(
      w.fragments.map((f) => [f.offset, f.length, f.startMs - FROM * 1000, f.durationMs, f.keyframe]),
    ).toEqual([
      [508, 92, 0, 1000, false],
      [600, 100, 1000, 1000, true],
      // Without the video track a fragment cannot start a segment, whatever its audio says.
      [700, 100, 2000, 1000, false],
      // No sample flags at all: not known to be a key frame.
      [800, 100, 3000, 1000, false],
    ]);
  });

  it("a stream of audio only takes its one track as the primary one", () => {
    const ix = new FragmentIndexer("mp4", { from: FROM, duration: 60 });
    ix.init(0, moov, new Map([[1, audio]]));
    ix.fragment(8, [traf(audio, FROM, 0)]);
    expect(ix.result("key", 100).fragments.map((f) => f.keyframe)).toEqual([true]);
  });

  it("decode times are unix times when the first falls within the window (its tolerance included), else window-relative", () => {
    const origin = (second: number) => {
      const ix = new FragmentIndexer("mp4", { from: FROM, duration: 60 });
      ix.init(0, moov, new Map([[2, video]]));
      ix.fragment(8, [traf(video, second, 0)]);
      return ix.result("key", 100).origin;
    };
    expect(origin(FROM - MEDIA_END_TOLERANCE_SECONDS)).toBe("absolute");
    expect(origin(FROM + 60)).toBe("absolute");
    expect(origin(FROM + 61)).toBe("window");
    expect(origin(FROM - MEDIA_END_TOLERANCE_SECONDS - 1)).toBe("window");
  });
});
