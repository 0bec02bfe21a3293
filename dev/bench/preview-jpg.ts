/**
 * `node dev/bench/preview-jpg.ts [--runs N]`: latency of `{from}-preview.jpg` (issue 24 §3), cold
 * (the key frame decoded by ffmpeg, the JPEG written to the cache) and warm (read from the cache),
 * through the playback handler as `serve` and the Lambda run it: the window and the cache in the
 * embedded S3 emulator, the fragment index warm in memory. The window is a 40 s fMP4 of 1280x720
 * H.264 at 1 Mbit/s (2 s GOP, made by ffmpeg's test source), 20 key frames: each cold run asks for another
 * key frame, so every cold run decodes. For each ffmpeg found (Debian's on the PATH, the static one
 * of the npm package @ffmpeg-installer/linux-x64): median and p90 of cold and warm, the S3 requests
 * per request (counted at the deps), and the JPEG sizes (full frame, and a 320x240 thumbnail).
 * Wall-clock figures: print the load average beside them.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { configSchema } from "../../functions/config/config.ts";
import type { FragmentIndexReader, WindowIndex } from "../../functions/domain/fragment-index.ts";
import { indexingCheck } from "../../functions/domain/fragment-indexer.ts";
import { windowKey } from "../../functions/domain/keys.ts";
import { ffmpegCandidates, ffmpegJpegDecoder, findFfmpeg } from "../../functions/playback/frame-decoder.ts";
import { createPlaybackHandler } from "../../functions/playback/handler.ts";
import type { ImageCache } from "../../functions/playback/request.ts";
import { S3ImageCache } from "../../functions/store/image-cache.ts";
import { createS3Client } from "../../local/aws-clients.ts";
import { startEmbedded } from "../../local/embedded.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "20" } } });
const runs = Math.min(19, Number(values.runs));

const FROM = 1_764_547_200; // 2025-12-01T00:00:00Z
const BUCKET = "backup";
const PREFIX = "flussonic/";

const made = spawnSync(
  "ffmpeg",
  [
    ...["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25", "-t", "40"],
    ...[
      "-c:v",
      "libx264",
      "-preset",
      "veryfast",
      "-b:v",
      "1M",
      "-g",
      "50",
      "-keyint_min",
      "50",
      "-sc_threshold",
      "0",
    ],
    ...["-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", "pipe:1"],
  ],
  { maxBuffer: 1 << 30 },
);
if (made.status !== 0) throw new Error(`ffmpeg could not make the test window: ${made.stderr}`);
const body = made.stdout;
const w = { from: FROM, duration: 40, seconds: [{ from: FROM, to: FROM + 40 }] };
const { check, indexer } = indexingCheck("mp4", w);
check.feed(body);
check.finish();
const key = windowKey(PREFIX, { source: "s1", stream: "cam1", from: FROM, duration: 40 }, "mp4");
const ix: WindowIndex = indexer.result(key, body.length, '"etag"');
const keyframes = ix.fragments.filter((f) => f.keyframe).map((f) => Math.floor(f.startMs / 1000));

const emulator = await startEmbedded(undefined);
const s3 = createS3Client(emulator.endpoints);
await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));

const index: FragmentIndexReader = {
  async readFragmentIndex(_s, _t, from, to) {
    return ix.from < to && ix.from + ix.duration > from ? [ix] : [];
  },
};
const config = configSchema.parse({
  bucket: BUCKET,
  prefix: PREFIX,
  sources: [{ name: "s1", url: "http://flussonic.example", streams: ["cam1"] }],
});

/** CPU seconds of this process's finished children (ffmpeg): /proc/self/stat cutime + cstime. */
const childCpuSeconds = () => {
  const fields = readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[13]) + Number(fields[14])) / 100;
};
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
const q = (times: number[], p: number) =>
  [...times].sort((a, b) => a - b)[Math.min(times.length - 1, Math.floor(p * times.length))]!.toFixed(1);

console.log(
  `window: ${(body.length / 1e6).toFixed(2)} MB, 1280x720 H.264, ${ix.fragments.length} fragments, ${keyframes.length} key frames; ${runs} runs each; load average before: ${load()}`,
);
const bins = [...new Set(ffmpegCandidates())].filter((b) => findFfmpeg([b]) === b);
for (const [n, bin] of bins.entries()) {
  const counts = { objectReads: 0, cacheGets: 0, cachePuts: 0 };
  const s3Cache = new S3ImageCache(s3, BUCKET, `${PREFIX}bench-${n}/`);
  const cache: ImageCache = {
    get: (...a) => {
      counts.cacheGets++;
      return s3Cache.get(...a);
    },
    put: (...a) => {
      counts.cachePuts++;
      return s3Cache.put(...a);
    },
  };
  const handler = createPlaybackHandler({
    config,
    index,
    async readObject(k, range) {
      counts.objectReads++;
      const r = await s3.send(
        new GetObjectCommand({
          Bucket: BUCKET,
          Key: k,
          ...(range ? { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : {}),
        }),
      );
      return r.Body as AsyncIterable<Uint8Array>;
    },
    mediaUrl: (k) => `/media/${k}`,
    now: () => (FROM + 86_400) * 1000,
    tokenKeys: undefined,
    decodeJpeg: ffmpegJpegDecoder(bin),
    imageCache: cache,
  });
  const ask = async (file: string) => {
    const t0 = performance.now();
    const res = await handler({ method: "GET", path: `/s1/cam1/${file}`, query: {}, headers: {} });
    const ms = performance.now() - t0;
    if (res.status !== 200 || !(res.body instanceof Uint8Array))
      throw new Error(`${file}: status ${res.status}`);
    return { ms, bytes: res.body.length };
  };
  // One decode to warm the JIT and the page cache of the binary; not counted.
  await ask(`${keyframes[runs]!}-preview.jpg`);
  for (const c of Object.keys(counts) as (keyof typeof counts)[]) counts[c] = 0;
  const cold: number[] = [];
  const warm: number[] = [];
  let fullBytes = 0;
  const cpu0 = childCpuSeconds();
  for (let i = 0; i < runs; i++) {
    const r = await ask(`${keyframes[i]!}-preview.jpg`);
    cold.push(r.ms);
    fullBytes = r.bytes;
  }
  const coldCounts = { ...counts };
  const ffmpegCpuMs = ((childCpuSeconds() - cpu0) * 1000) / runs;
  for (const c of Object.keys(counts) as (keyof typeof counts)[]) counts[c] = 0;
  for (let i = 0; i < runs; i++) warm.push((await ask(`${keyframes[i]!}-preview.jpg`)).ms);
  const warmCounts = { ...counts };
  const thumb = await ask(`images-320x240/seg-${FROM}-10.hls.jpg`);
  const version = spawnSync(bin, ["-version"], { encoding: "utf8" }).stdout.split("\n")[0]!.slice(0, 40);
  console.log(
    [
      `${bin.includes("@ffmpeg-installer") ? "npm @ffmpeg-installer/linux-x64" : bin} (${version}):`,
      `  cold preview.jpg: median ${q(cold, 0.5)} ms, p90 ${q(cold, 0.9)} ms; per request ${coldCounts.objectReads / runs} window reads, ${coldCounts.cacheGets / runs} cache GET (miss), ${coldCounts.cachePuts / runs} cache PUT; ffmpeg CPU ${ffmpegCpuMs.toFixed(0)} ms per decode (user + sys, 10 ms ticks, load-independent)`,
      `  warm preview.jpg: median ${q(warm, 0.5)} ms, p90 ${q(warm, 0.9)} ms; per request ${warmCounts.objectReads / runs} window reads, ${warmCounts.cacheGets / runs} cache GET (hit), ${warmCounts.cachePuts / runs} PUT`,
      `  JPEG: 1280x720 ${(fullBytes / 1024).toFixed(1)} KiB, 320x180 thumbnail ${(thumb.bytes / 1024).toFixed(1)} KiB`,
    ].join("\n"),
  );
}
console.log(`load average after: ${load()}`);
s3.destroy();
await emulator.stop();
