/**
 * The streaming fMP4 joiner (functions/domain/mp4-join.ts) on the simulator's synthetic windows,
 * in process: the joined file is read back with the same box readers and the fragment indexer (the
 * container check included), so what is checked is what a player gets: one init segment, fragments
 * renumbered from 1, times rebased to start at 0 and follow each other without a gap, the range
 * trimmed at fragment granularity. Real media and ffprobe: test/ops/restore.test.ts.
 */
import { spawnSync } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import type { WindowIndex } from "../../functions/domain/fragment-index.ts";
import { indexingCheck } from "../../functions/domain/fragment-indexer.ts";
import { windowSegments } from "../../functions/domain/hls-playlist.ts";
import {
  children,
  joinPlan,
  Mp4JoinError,
  Mp4Joiner,
  readInitSegment,
  readMovieFragment,
  writeDecodeTime,
} from "../../functions/domain/mp4-join.ts";
import { windowChunks } from "../../simulator/content.ts";
import { loadRealMedia, type RealMedia, realWindowChunks } from "../../simulator/real-media.ts";

const hasFfmpeg = spawnSync("ffmpeg", ["-version"], { stdio: "ignore" }).status === 0;
if (!hasFfmpeg) console.log("MP4 join tests skipped: ffmpeg not on the PATH (apt-get install ffmpeg)");

const FROM = 1_764_547_200; // 2025-12-01T00:00:00Z

let media: RealMedia;
/** A stored window of the simulator's real H.264/AAC media (1 s fragments). */
function windowBody(from: number, seconds = 60): Buffer {
  return Buffer.concat([...realWindowChunks(media, [{ from, to: from + seconds }], "mp4")]);
}

function join(windows: { from: number; body: Buffer }[], options = {}, piece = 1000) {
  const joiner = new Mp4Joiner(options);
  const out: Buffer[] = [];
  for (const w of windows) {
    joiner.startWindow({ from: w.from, duration: 60, label: `window ${w.from}` });
    for (let i = 0; i < w.body.length; i += piece) out.push(...joiner.push(w.body.subarray(i, i + piece)));
    joiner.endWindow();
  }
  joiner.finish();
  return { joiner, file: Buffer.concat(out) };
}

describe.skipIf(!hasFfmpeg)("joining fMP4 windows", () => {
  beforeAll(async () => {
    media = await loadRealMedia();
  });

  it("writes one init segment, then every fragment renumbered from 1 with times from 0 and no gap between windows", () => {
    const { joiner, file } = join([
      { from: FROM, body: windowBody(FROM) },
      { from: FROM + 60, body: windowBody(FROM + 60) },
    ]);
    const top = [...children(file, 0)].map((b) => b.type);
    expect(top.filter((t) => t === "ftyp")).toHaveLength(1);
    expect(top.filter((t) => t === "moov")).toHaveLength(1);
    expect(top.indexOf("moov")).toBeLessThan(top.indexOf("moof"));
    expect(top.filter((t) => t === "moof")).toHaveLength(120);
    expect(joiner.fragments).toBe(120);
    expect(joiner.trimmedFragments).toBe(0);

    const moov = [...children(file, 0)].find((b) => b.type === "moov")!;
    const { tracks } = readInitSegment(file.subarray(moov.start, moov.end));
    const moofs = [...children(file, 0)].filter((b) => b.type === "moof");
    const sequences = moofs.map((b) => {
      const moof = file.subarray(b.start, b.end);
      const { sequenceAt } = readMovieFragment(moof, tracks);
      return moof.readUInt32BE(sequenceAt!);
    });
    expect(sequences).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));

    // Read back as a player would: whole, decode times from 0, each fragment where the last ended.
    const { check, indexer } = indexingCheck("mp4", { from: FROM, duration: 120 });
    check.feed(file);
    check.finish();
    const ix = indexer.result("joined", file.length);
    expect(ix.fragments).toHaveLength(120);
    expect(ix.fragments[0]!.startMs).toBe(FROM * 1000);
    // Within a window each fragment starts where the last ended; the second window follows the
    // first's longest track (its audio may run a little past the video), never later.
    for (let i = 1; i < ix.fragments.length; i++) {
      const prev = ix.fragments[i - 1]!;
      const gap = ix.fragments[i]!.startMs - (prev.startMs + prev.durationMs);
      if (i === 60) {
        expect(gap).toBeGreaterThanOrEqual(0);
        expect(gap).toBeLessThan(500);
      } else expect(gap, `fragment ${i}`).toBe(0);
    }
    const last = ix.fragments.at(-1)!;
    // The output lasts to the end of its longest track: at or a little past the video's end.
    const videoEnd = (last.startMs + last.durationMs - FROM * 1000) / 1000;
    expect(joiner.outputSeconds).toBeGreaterThanOrEqual(videoEnd);
    expect(joiner.outputSeconds).toBeLessThan(videoEnd + 0.5);
    expect(videoEnd).toBeGreaterThan(119.5);
  });

  it("trims to the fragments overlapping the range, whatever the chunking", () => {
    for (const piece of [7, 4096]) {
      const { joiner, file } = join(
        [
          { from: FROM, body: windowBody(FROM) },
          { from: FROM + 60, body: windowBody(FROM + 60) },
        ],
        { keepFrom: FROM + 10, keepTo: FROM + 100 },
        piece,
      );
      // Kept: the 90 one-second fragments of [FROM + 10, FROM + 100), and the one before when its
      // audio runs past FROM + 10; the rest trimmed.
      expect(joiner.fragments).toBeGreaterThanOrEqual(90);
      expect(joiner.fragments).toBeLessThanOrEqual(91);
      expect(joiner.fragments + joiner.trimmedFragments).toBe(120);
      expect([...children(file, 0)].filter((b) => b.type === "moof")).toHaveLength(joiner.fragments);
      expect(joiner.outputSeconds).toBeGreaterThan(89.5);
      expect(joiner.outputSeconds).toBeLessThan(92);
    }
  });

  it("refuses a window whose init segment is not decodable or describes other tracks, naming it", () => {
    const synthetic = (from: number) =>
      Buffer.concat([...windowChunks("cam1", 80_000, [{ from, to: from + 60 }], "mp4")]);
    expect(() => join([{ from: FROM, body: synthetic(FROM) }])).toThrow(
      `window ${FROM}: not a playable MP4 init segment (track 1 has no sample description)`,
    );
    expect(() =>
      join([
        { from: FROM, body: windowBody(FROM) },
        { from: FROM + 60, body: synthetic(FROM + 60) },
      ]),
    ).toThrow(Mp4JoinError);
  });

  it("refuses a window cut inside a box, and a join with nothing in the range", () => {
    const body = windowBody(FROM);
    expect(() => join([{ from: FROM, body: body.subarray(0, body.length - 10) }])).toThrow(
      `window ${FROM}: ends inside an MP4 box (stored object is cut)`,
    );
    expect(() => join([{ from: FROM, body }], { keepFrom: FROM + 3600 })).toThrow(
      "no media fragment inside the requested range",
    );
    expect(() => new Mp4Joiner().finish()).toThrow("no init segment (ftyp/moov) in the stored windows");
  });
});

describe("what an export copies (joinPlan)", () => {
  /** A window index of `n` one-second key-frame fragments of 10 bytes after a 500-byte init. */
  const win = (from: number, n: number): WindowIndex => ({
    from,
    duration: 600,
    format: "mp4",
    key: `w${from}`,
    size: 500 + n * 10,
    origin: "absolute",
    init: { offset: 0, length: 500 },
    fragments: Array.from({ length: n }, (_, i) => ({
      offset: 500 + i * 10,
      length: 10,
      startMs: (from + i) * 1000,
      durationMs: 1000,
      keyframe: true,
    })),
  });
  const a = win(FROM, 12);
  const b = win(FROM + 600, 12);

  it("one run of contiguous bytes per window, each window its own part, in order", () => {
    const plan = joinPlan([...windowSegments(a), ...windowSegments(b)], Number.POSITIVE_INFINITY);
    expect(plan.map((p) => [p.window.key, p.runs])).toEqual([
      [`w${FROM}`, [{ offset: 500, length: 120, startMs: FROM * 1000 }]],
      [`w${FROM + 600}`, [{ offset: 500, length: 120, startMs: (FROM + 600) * 1000 }]],
    ]);
  });

  it("a segment left out splits the window's bytes into two runs", () => {
    const [s0, s1] = windowSegments(win(FROM, 18));
    const s2 = windowSegments(win(FROM, 18))[2]!;
    expect(s1).toBeDefined();
    const plan = joinPlan([s0!, { ...s2, window: s0!.window }], Number.POSITIVE_INFINITY);
    expect(plan).toHaveLength(1);
    expect(plan[0]!.runs).toEqual([
      { offset: 500, length: 60, startMs: FROM * 1000 },
      { offset: 620, length: 60, startMs: (FROM + 12) * 1000 },
    ]);
  });

  it("cuts the segment that runs past the end before the first fragment starting there", () => {
    const plan = joinPlan(windowSegments(a), FROM * 1000 + 8000);
    expect(plan[0]!.runs).toEqual([{ offset: 500, length: 80, startMs: FROM * 1000 }]);
    // Ending inside a fragment keeps that fragment.
    expect(joinPlan(windowSegments(a), FROM * 1000 + 8500)[0]!.runs[0]!.length).toBe(90);
  });
});

describe("reading boxes built by hand (ISO/IEC 14496-12)", () => {
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n >>> 0);
    return b;
  };
  const u64 = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(n));
    return b;
  };
  const box = (type: string, ...payload: Buffer[]) => {
    const body = Buffer.concat(payload);
    return Buffer.concat([u32(8 + body.length), Buffer.from(type, "latin1"), body]);
  };
  const full = (version: number, flags: number) => u32((version << 24) | flags);
  const track = (id: number, defaults: { duration: number; flags: number }) =>
    new Map([
      [
        id,
        {
          id,
          timescale: 1000,
          handler: "vide",
          defaultSampleDuration: defaults.duration,
          defaultSampleFlags: defaults.flags,
          described: true,
        },
      ],
    ]);
  const tfdt = (version: number, t: number) => box("tfdt", full(version, 0), version === 1 ? u64(t) : u32(t));
  const NON_SYNC = 0x10000;

  it("takes durations and the first sample's flags from the trun, else the tfhd, else the trex defaults", () => {
    const tracks = track(1, { duration: 40, flags: NON_SYNC });
    const moof = (...traf: Buffer[]) => box("moof", box("mfhd", full(0, 0), u32(7)), box("traf", ...traf));
    const read = (m: Buffer) => readMovieFragment(m, tracks).trafs[0]!;

    // tfhd with every optional field (base offset, description index, duration, size, flags).
    const tfhdAll = box(
      "tfhd",
      full(0, 0x01 | 0x02 | 0x08 | 0x10 | 0x20),
      u32(1),
      u64(0),
      u32(1),
      u32(25),
      u32(999),
      u32(0),
    );
    // trun with 3 samples of the tfhd's default duration and no flags: the tfhd's flags (sync).
    const a = read(moof(tfhdAll, tfdt(1, 5_000_000_000), box("trun", full(0, 0x01), u32(3), u32(0))));
    expect(a).toMatchObject({ trackId: 1, decodeTime: 5_000_000_000, duration: 75, firstSampleFlags: 0 });
    expect(a.baseDataOffsetAt).toBe(8 + 16 + 8 + 16);

    // No tfhd defaults: the trex's duration and flags (not sync).
    const tfhdNone = box("tfhd", full(0, 0), u32(1));
    const b = read(moof(tfhdNone, tfdt(0, 90), box("trun", full(0, 0), u32(2))));
    expect(b).toMatchObject({
      decodeTime: 90,
      duration: 80,
      firstSampleFlags: NON_SYNC,
      baseDataOffsetAt: undefined,
    });

    // trun first-sample flags win; per-sample durations (with sizes, flags and composition offsets).
    const samples = [
      [33, 100, NON_SYNC, 0],
      [34, 100, NON_SYNC, 0],
    ].flatMap((x) => x.map(u32));
    const c = read(
      moof(
        tfhdNone,
        tfdt(0, 0),
        box("trun", full(0, 0x01 | 0x04 | 0x100 | 0x200 | 0x400 | 0x800), u32(2), u32(0), u32(0), ...samples),
      ),
    );
    expect(c).toMatchObject({ duration: 67, firstSampleFlags: 0 });
    // Without first-sample flags, the first sample's own flags (after its duration and size).
    const d = read(
      moof(tfhdNone, tfdt(0, 0), box("trun", full(0, 0x100 | 0x200 | 0x400 | 0x800), u32(2), ...samples)),
    );
    expect(d).toMatchObject({ duration: 67, firstSampleFlags: NON_SYNC });

    // A trun shorter than its count, a traf of another track, no tfdt: refused.
    expect(() => read(moof(tfhdNone, tfdt(0, 0), box("trun", full(0, 0x100), u32(5), u32(1))))).toThrow(
      "trun box shorter than its sample count",
    );
    expect(() => read(moof(box("tfhd", full(0, 0), u32(9)), tfdt(0, 0)))).toThrow(
      "fragment of track 9, which the init segment does not have",
    );
    expect(() => read(moof(tfhdNone))).toThrow("fragment of track 1 has no tfdt: cannot place it in time");
  });

  it("reads an init segment's tracks with version 0 or 1 headers and the trex defaults, refusing one without track, id or timescale", () => {
    const tkhd = (version: number, id: number) =>
      box("tkhd", full(version, 7), Buffer.alloc(version === 1 ? 16 : 8), u32(id), Buffer.alloc(60));
    const mdhd = (version: number, timescale: number) =>
      box("mdhd", full(version, 0), Buffer.alloc(version === 1 ? 16 : 8), u32(timescale), Buffer.alloc(8));
    const hdlr = (h: string) => box("hdlr", full(0, 0), u32(0), Buffer.from(h, "latin1"), Buffer.alloc(12));
    const stsd = box("stsd", full(0, 0), u32(1), box("avc1", Buffer.alloc(78)));
    const trak = (version: number, id: number, timescale: number, handler: string) =>
      box(
        "trak",
        tkhd(version, id),
        box("mdia", mdhd(version, timescale), hdlr(handler), box("minf", box("stbl", stsd))),
      );
    const trex = (id: number, duration: number, flags?: number) =>
      box(
        "trex",
        full(0, 0),
        u32(id),
        u32(1),
        u32(duration),
        u32(0),
        ...(flags === undefined ? [] : [u32(flags)]),
      );
    const moov = (...b: Buffer[]) => box("moov", ...b);

    const { tracks, signature } = readInitSegment(
      moov(
        trak(0, 1, 90_000, "vide"),
        trak(1, 2, 48_000, "soun"),
        box("mvex", trex(1, 3000, 0x10000), trex(2, 1024)),
      ),
    );
    expect([...tracks.values()]).toEqual([
      {
        id: 1,
        timescale: 90_000,
        handler: "vide",
        defaultSampleDuration: 3000,
        defaultSampleFlags: 0x10000,
        described: true,
      },
      {
        id: 2,
        timescale: 48_000,
        handler: "soun",
        defaultSampleDuration: 1024,
        defaultSampleFlags: 0,
        described: true,
      },
    ]);
    // The signature changes with what must match for a join: a track's timescale or its defaults.
    const other = readInitSegment(
      moov(
        trak(0, 1, 90_000, "vide"),
        trak(1, 2, 44_100, "soun"),
        box("mvex", trex(1, 3000, 0x10000), trex(2, 1024)),
      ),
    );
    expect(other.signature).not.toBe(signature);
    const defaults = readInitSegment(
      moov(
        trak(0, 1, 90_000, "vide"),
        trak(1, 2, 48_000, "soun"),
        box("mvex", trex(1, 3001, 0x10000), trex(2, 1024)),
      ),
    );
    expect(defaults.signature).not.toBe(signature);
    expect(() => readInitSegment(moov())).toThrow("init segment has no track");
    expect(() => readInitSegment(moov(trak(0, 0, 90_000, "vide")))).toThrow(
      "init segment: a track has no id or timescale",
    );
    expect(() => readInitSegment(moov(trak(0, 1, 0, "vide")))).toThrow(
      "init segment: a track has no id or timescale",
    );
  });

  it("writes a decode time into a tfdt of either version, refusing what a version 0 cannot hold", () => {
    const v0 = tfdt(0, 1);
    writeDecodeTime(v0, 0, 0xffffffff);
    expect(v0.readUInt32BE(12)).toBe(0xffffffff);
    expect(() => writeDecodeTime(v0, 0, 0x100000000)).toThrow("decode time does not fit a version 0 tfdt");
    const v1 = tfdt(1, 1);
    writeDecodeTime(v1, 0, 0x100000000);
    expect(Number(v1.readBigUInt64BE(12))).toBe(0x100000000);
  });

  it("walks 64-bit and to-the-end box sizes, and refuses a box that overruns its parent", () => {
    const large = Buffer.concat([u32(1), Buffer.from("mdat"), u64(20), Buffer.alloc(4)]);
    const rest = Buffer.concat([u32(0), Buffer.from("free"), Buffer.alloc(6)]);
    expect([...children(Buffer.concat([large, rest]), 0)]).toEqual([
      { type: "mdat", start: 0, end: 20 },
      { type: "free", start: 20, end: 34 },
    ]);
    expect(() => [...children(Buffer.concat([u32(40), Buffer.from("moov"), Buffer.alloc(8)]), 0)]).toThrow(
      'box "moov" overruns its parent',
    );
    expect(() => [...children(Buffer.concat([u32(4), Buffer.from("moov")]), 0)]).toThrow(
      'box "moov" overruns its parent',
    );
  });
});
