/**
 * Real, decodable archive content for the simulator (`media: "real"`), so restore tests can check a
 * restored file with ffprobe. A 10-second clip (H.264 test pattern 320x240 at 25 fps with a key
 * frame every second, AAC sine tone) is generated once with ffmpeg and cached in the OS temp
 * directory, as fragmented MP4 (one init segment + ten 1-second `moof`+`mdat` fragments) and as ten
 * 1-second MPEG-TS segments (each with PAT/PMT and a key frame).
 *
 * Second `s` of an archive is fragment `s mod 10` of the clip with its timestamps moved to the
 * archive's timeline, so adjacent windows continue each other as a real DVR's do:
 * - MP4: `tfdt` + (whole clips since the unix epoch) x 10 s; the clip's audio runs ~27 ms past
 *   10 s, so audio overlaps that much where the clip repeats (players and ffprobe accept it);
 * - TS: PTS/DTS/PCR + (whole clips since the UTC midnight) x 10 s, at 90 kHz, so they never pass
 *   the 33-bit wrap within a day; they restart at midnight as a broadcast's would.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  type Mp4Track,
  readInitSegment,
  readMovieFragment,
  writeDecodeTime,
} from "../functions/domain/mp4-join.ts";
import type { TimeRange } from "../functions/domain/ranges.ts";

const CLIP_SECONDS = 10;
const CACHE_VERSION = "v2";
const TS_PACKET = 188;
const PTS_WRAP = 2 ** 33;

export interface RealMedia {
  mp4: { init: Buffer; fragments: Buffer[]; tracks: Map<number, Mp4Track> };
  ts: { segments: Buffer[] };
}

const run = promisify(execFile);
let loading: Promise<RealMedia> | undefined;

/** The clip, generated on first use (needs `ffmpeg` on the PATH) and cached across processes. */
export function loadRealMedia(): Promise<RealMedia> {
  loading ??= load();
  return loading;
}

async function load(): Promise<RealMedia> {
  const dir = join(tmpdir(), `flussonic-backup-real-media-${CACHE_VERSION}`);
  if (!existsSync(join(dir, "clip.mp4"))) await generate(dir);
  const mp4 = readFileSync(join(dir, "clip.mp4"));
  const boxes = topLevelBoxes(mp4);
  const ftyp = boxes.find((b) => b.type === "ftyp");
  const moov = boxes.find((b) => b.type === "moov");
  if (!ftyp || !moov) throw new Error(`real media: ${dir}/clip.mp4 has no init segment`);
  const { tracks } = readInitSegment(moov.bytes);
  const fragments: Buffer[] = [];
  for (let i = 0; i < boxes.length; i++) {
    if (boxes[i]!.type === "moof" && boxes[i + 1]?.type === "mdat") {
      fragments.push(Buffer.concat([boxes[i]!.bytes, boxes[i + 1]!.bytes]));
    }
  }
  const segments = Array.from({ length: CLIP_SECONDS }, (_, i) =>
    readFileSync(join(dir, `seg${String(i).padStart(2, "0")}.ts`)),
  );
  if (fragments.length !== CLIP_SECONDS) {
    throw new Error(`real media: expected ${CLIP_SECONDS} fragments in clip.mp4, found ${fragments.length}`);
  }
  return { mp4: { init: Buffer.concat([ftyp.bytes, moov.bytes]), fragments, tracks }, ts: { segments } };
}

async function generate(dir: string): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), "flussonic-backup-real-media-"));
  const input = [
    // Small on purpose (about 40 kbit/s): the demo keeps hours of it for several streams.
    ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=10"],
    ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050"],
    ["-t", String(CLIP_SECONDS)],
    ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-crf", "32"],
    ["-g", "10", "-keyint_min", "10", "-sc_threshold", "0"],
    ["-c:a", "aac", "-ac", "1", "-b:a", "16k"],
  ].flat();
  try {
    await run("ffmpeg", [
      ...["-v", "error", "-y", ...input],
      ...["-f", "mp4", "-movflags", "frag_keyframe+empty_moov+default_base_moof"],
      join(work, "clip.mp4"),
    ]);
    await run("ffmpeg", [
      ...["-v", "error", "-y", ...input],
      ...["-f", "segment", "-segment_format", "mpegts", "-segment_time", "1", "-reset_timestamps", "0"],
      join(work, "seg%02d.ts"),
    ]);
    mkdirSync(join(dir, ".."), { recursive: true });
    try {
      renameSync(work, dir);
    } catch (error) {
      // Another process generated it meanwhile: use theirs.
      if (!existsSync(join(dir, "clip.mp4"))) throw error;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function topLevelBoxes(buf: Buffer): { type: string; bytes: Buffer }[] {
  const out: { type: string; bytes: Buffer }[] = [];
  for (let p = 0; p + 8 <= buf.length; ) {
    const size = buf.readUInt32BE(p);
    if (size < 8) throw new Error("real media: unexpected box size");
    out.push({ type: buf.toString("latin1", p + 4, p + 8), bytes: buf.subarray(p, p + size) });
    p += size;
  }
  return out;
}

/** The window's bytes: the recorded seconds as real media (fragments, or TS segments). */
export function* realWindowChunks(
  media: RealMedia,
  seconds: TimeRange[],
  format: "mp4" | "ts",
): Generator<Buffer> {
  if (format === "mp4") yield media.mp4.init;
  for (const r of seconds) {
    for (let s = r.from; s < r.to; s++) {
      yield format === "mp4" ? mp4Second(media, s) : tsSecond(media, s);
    }
  }
}

/** Size in bytes of `realWindowChunks` for the same arguments. */
export function realWindowBytes(media: RealMedia, seconds: TimeRange[], format: "mp4" | "ts"): number {
  let n = format === "mp4" ? media.mp4.init.length : 0;
  for (const r of seconds) {
    for (let s = r.from; s < r.to; s++) {
      const k = s % CLIP_SECONDS;
      n += format === "mp4" ? media.mp4.fragments[k]!.length : media.ts.segments[k]!.length;
    }
  }
  return n;
}

function mp4Second(media: RealMedia, s: number): Buffer {
  const k = s % CLIP_SECONDS;
  const clips = Math.floor(s / CLIP_SECONDS);
  const fragment = Buffer.from(media.mp4.fragments[k]!);
  const moofSize = fragment.readUInt32BE(0);
  const moof = fragment.subarray(0, moofSize);
  const { sequenceAt, trafs } = readMovieFragment(moof, media.mp4.tracks);
  for (const t of trafs) {
    const timescale = media.mp4.tracks.get(t.trackId)!.timescale;
    writeDecodeTime(moof, t.tfdtAt, t.decodeTime + clips * CLIP_SECONDS * timescale);
  }
  if (sequenceAt !== undefined) moof.writeUInt32BE(s >>> 0, sequenceAt);
  return fragment;
}

function tsSecond(media: RealMedia, s: number): Buffer {
  const k = s % CLIP_SECONDS;
  const offset = ((s % 86_400) - k) * 90_000;
  const segment = Buffer.from(media.ts.segments[k]!);
  for (let p = 0; p + TS_PACKET <= segment.length; p += TS_PACKET) shiftPacketTimes(segment, p, offset);
  return segment;
}

/** Adds `offset` (90 kHz) to the PCR, PTS and DTS of the TS packet at `p`. */
function shiftPacketTimes(b: Buffer, p: number, offset: number): void {
  if (b[p] !== 0x47) throw new Error("real media: TS segment out of sync");
  const unitStart = (b[p + 1]! & 0x40) !== 0;
  const control = (b[p + 3]! >> 4) & 3;
  let payload = p + 4;
  if (control & 2) {
    const length = b[p + 4]!;
    if (length > 0 && b[p + 5]! & 0x10) {
      const at = p + 6;
      const base =
        b[at]! * 2 ** 25 + b[at + 1]! * 2 ** 17 + b[at + 2]! * 2 ** 9 + b[at + 3]! * 2 + (b[at + 4]! >> 7);
      const v = (base + offset) % PTS_WRAP;
      b[at] = Math.floor(v / 2 ** 25) & 0xff;
      b[at + 1] = Math.floor(v / 2 ** 17) & 0xff;
      b[at + 2] = Math.floor(v / 2 ** 9) & 0xff;
      b[at + 3] = Math.floor(v / 2) & 0xff;
      b[at + 4] = ((v % 2) << 7) | (b[at + 4]! & 0x7f);
    }
    payload = p + 5 + length;
  }
  if (!(control & 1) || !unitStart || payload + 14 > p + TS_PACKET) return;
  if (b[payload] !== 0 || b[payload + 1] !== 0 || b[payload + 2] !== 1) return;
  const flags = b[payload + 7]! >> 6;
  if (flags & 2) shiftTimestamp(b, payload + 9, offset);
  if (flags === 3 && payload + 19 <= p + TS_PACKET) shiftTimestamp(b, payload + 14, offset);
}

function shiftTimestamp(b: Buffer, at: number, offset: number): void {
  const t =
    ((b[at]! >> 1) & 7) * 2 ** 30 +
    b[at + 1]! * 2 ** 22 +
    (b[at + 2]! >> 1) * 2 ** 15 +
    b[at + 3]! * 2 ** 7 +
    (b[at + 4]! >> 1);
  const v = (t + offset) % PTS_WRAP;
  b[at] = (b[at]! & 0xf0) | ((Math.floor(v / 2 ** 30) & 7) << 1) | 1;
  b[at + 1] = Math.floor(v / 2 ** 22) & 0xff;
  b[at + 2] = ((Math.floor(v / 2 ** 15) & 0x7f) << 1) | 1;
  b[at + 3] = Math.floor(v / 2 ** 7) & 0xff;
  b[at + 4] = ((v & 0x7f) << 1) | 1;
}
