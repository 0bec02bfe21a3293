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
