/**
 * The key-frame decoder of the JPEG URLs (request.ts `decodeJpeg`): an ffmpeg process reads the
 * one-fragment MP4 on its standard input and writes one JPEG of the asked size on its standard
 * output. Which ffmpeg: `FFMPEG_PATH` when set, else the static binary of the npm package
 * `@ffmpeg-installer/linux-x64` (an optional dependency; the playback Lambda bundle carries it),
 * else `ffmpeg` on the PATH (Debian's). None of them: no decoder, and the JPEG URLs answer 501.
 */
import { spawn, spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { ImageSize } from "../domain/thumbnails.ts";
import { HttpProblemError } from "./answers.ts";

/** Longest a decode may take before it is stopped (a key frame takes tens of milliseconds). */
const DECODE_TIMEOUT_MS = 15_000;

/** The ffmpeg binaries to try, in order (module comment). */
export function ffmpegCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  if (env.FFMPEG_PATH) out.push(env.FFMPEG_PATH);
  try {
    const require = createRequire(import.meta.url);
    out.push(join(dirname(require.resolve("@ffmpeg-installer/linux-x64/package.json")), "ffmpeg"));
  } catch {
    // Not installed (another platform, or installed without optional dependencies).
  }
  out.push("ffmpeg");
  return out;
}

/** The first candidate that runs (`ffmpeg -version` exits 0), or undefined. */
export function findFfmpeg(candidates: readonly string[] = ffmpegCandidates()): string | undefined {
  for (const bin of candidates) {
    const r = spawnSync(bin, ["-hide_banner", "-version"], { stdio: "ignore", timeout: 10_000 });
    if (r.status === 0) return bin;
  }
  return undefined;
}

/** `decodeJpeg` over the ffmpeg at `bin`. */
export function ffmpegJpegDecoder(
  bin: string,
): (mp4: AsyncIterable<Uint8Array>, size: ImageSize) => Promise<Uint8Array> {
  return async (mp4, size) => {
    const child = spawn(
      bin,
      [
        ...["-hide_banner", "-loglevel", "error", "-nostdin", "-f", "mp4", "-i", "pipe:0"],
        ...["-map", "0:v:0", "-frames:v", "1", "-vf", `scale=${size.width}:${size.height}`],
        ...["-q:v", "4", "-f", "image2", "-c:v", "mjpeg", "pipe:1"],
      ],
      { stdio: ["pipe", "pipe", "pipe"], timeout: DECODE_TIMEOUT_MS },
    );
    const out: Buffer[] = [];
    let err = "";
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => {
      if (err.length < 2000) err += c.toString();
    });
    const exited = new Promise<number | null>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (code) => resolve(code));
    });
    // ffmpeg may stop reading once it has its frame: a closed pipe then is not a failure.
    child.stdin.on("error", () => undefined);
    try {
      for await (const chunk of mp4) {
        if (!child.stdin.write(chunk)) {
          await Promise.race([new Promise((r) => child.stdin.once("drain", r)), exited.catch(() => null)]);
        }
        if (child.exitCode !== null) break;
      }
    } finally {
      child.stdin.end();
    }
    const code = await exited;
    const jpeg = Buffer.concat(out);
    if (code !== 0 || jpeg.length < 4 || jpeg[0] !== 0xff || jpeg[1] !== 0xd8) {
      throw new HttpProblemError(
        502,
        `the key frame could not be decoded to JPEG (ffmpeg exited ${code}: ${err.trim().split("\n")[0] ?? ""}); its MP4 preview may still play`,
      );
    }
    return new Uint8Array(jpeg.buffer, jpeg.byteOffset, jpeg.length);
  };
}

/**
 * `decodeJpeg` that looks for ffmpeg on its first use (not at start: most requests never decode)
 * among `candidates`; none runs: 501 with the way out (the MP4 preview needs no decoding).
 */
export function lazyJpegDecoder(
  candidates: () => readonly string[] = () => ffmpegCandidates(),
): (mp4: AsyncIterable<Uint8Array>, size: ImageSize) => Promise<Uint8Array> {
  let decoder: ((mp4: AsyncIterable<Uint8Array>, size: ImageSize) => Promise<Uint8Array>) | null | undefined;
  return (mp4, size) => {
    if (decoder === undefined) {
      const bin = findFfmpeg(candidates());
      decoder = bin === undefined ? null : ffmpegJpegDecoder(bin);
    }
    if (decoder === null) {
      throw new HttpProblemError(
        501,
        "this server cannot decode video to JPEG (no ffmpeg found: install ffmpeg or set FFMPEG_PATH): ask for {from}-preview.mp4, the same key frame as MP4",
      );
    }
    return decoder(mp4, size);
  };
}
