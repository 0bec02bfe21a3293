/**
 * The key-frame decoder (playback/frame-decoder.ts) with the real ffmpeg: what it does when there
 * is no ffmpeg (501 with the way out), and when ffmpeg cannot decode what it is given (502 with
 * ffmpeg's own words, never a hang, even when ffmpeg stops reading a long input early). The JPEG
 * it makes of real media is checked in handler.test.ts (ffprobe). Skips without ffmpeg.
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { HttpProblemError } from "../../functions/playback/answers.ts";
import { ffmpegJpegDecoder, findFfmpeg, lazyJpegDecoder } from "../../functions/playback/frame-decoder.ts";

const hasFfmpeg = spawnSync("ffmpeg", ["-version"], { stdio: "ignore" }).status === 0;
if (!hasFfmpeg) console.log("frame decoder tests skipped: ffmpeg not on the PATH (apt-get install ffmpeg)");

async function* chunks(total: number, size = 64 * 1024): AsyncGenerator<Uint8Array> {
  for (let sent = 0; sent < total; sent += size)
    yield new Uint8Array(Math.min(size, total - sent)).fill(0x47);
}

describe("frame decoder", () => {
  it("no ffmpeg among the candidates: none is found, and a decode is 501 pointing to the MP4 preview", async () => {
    expect(findFfmpeg(["/nonexistent/ffmpeg"])).toBeUndefined();
    const decode = lazyJpegDecoder(() => ["/nonexistent/ffmpeg"]);
    let error: unknown;
    try {
      await decode(chunks(10), { width: 16, height: 16 });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(HttpProblemError);
    expect((error as HttpProblemError).status).toBe(501);
    expect((error as HttpProblemError).message).toContain("ask for {from}-preview.mp4");
  });

  it.skipIf(!hasFfmpeg)(
    "bytes that are not an MP4 (8 MB of them, which ffmpeg stops reading): 502 with ffmpeg's reason, no hang",
    async () => {
      const decode = ffmpegJpegDecoder("ffmpeg");
      let error: unknown;
      try {
        await decode(chunks(8 * 1024 * 1024), { width: 16, height: 16 });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(HttpProblemError);
      expect((error as HttpProblemError).status).toBe(502);
      expect((error as HttpProblemError).message).toMatch(
        /^the key frame could not be decoded to JPEG \(ffmpeg exited \d+: .+\)/,
      );
    },
    20_000,
  );
});
