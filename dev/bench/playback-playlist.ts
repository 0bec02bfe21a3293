/**
 * `node dev/bench/playback-playlist.ts [--runs N]`: time to answer a 24-hour catch-up playlist
 * (`index-{from}-86400.m3u8`) and the DASH manifest of the same range (`archive-{from}-86400.mpd`,
 * issue 24: under 20 ms from a warm index) with the playback handler (issue 11 §5: under 20 ms from a warm
 * index), on 144 windows of 600 one-second key-frame fragments (86,400 fragments, 14,400
 * segments). Two figures:
 *   - warm: the reader returns decoded indexes held in memory;
 *   - warm JSON: the reader parses and decodes the two stored per-day objects on every request
 *     (what an adapter that caches the objects' text, not their decoded form, pays);
 * and the reader calls per request (one per request, covering both days).
 * Wall-clock and CPU time (process.cpuUsage: this process's own, less sensitive to a loaded machine).
 * Media URLs are short local ones; a presigned URL (~600 characters) makes the text ~6 MB larger.
 */
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { configSchema } from "../../functions/config/config.ts";
import {
  decodeWindowIndex,
  encodeWindowIndex,
  type FragmentIndexReader,
  type WindowIndex,
} from "../../functions/domain/fragment-index.ts";
import { windowKey } from "../../functions/domain/keys.ts";
import { createPlaybackHandler } from "../../functions/playback/handler.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "30" } } });
const runs = Number(values.runs);

const DAY = 1_764_547_200; // 2025-12-01T00:00:00Z
const FROM = DAY + 43_200; // noon to noon: two stream-days
const windows: WindowIndex[] = [];
for (let from = DAY; from < DAY + 2 * 86_400; from += 600) {
  const fragments = Array.from({ length: 600 }, (_, i) => ({
    offset: 1200 + i * 250_000,
    length: 250_000,
    startMs: (from + i) * 1000,
    durationMs: 1000,
    keyframe: true,
  }));
  windows.push({
    from,
    duration: 600,
    format: "mp4",
    key: windowKey("flussonic/", { source: "s1", stream: "cam1", from, duration: 600 }, "mp4"),
    size: 1200 + 600 * 250_000,
    origin: "absolute",
    init: { offset: 0, length: 1200 },
    codecs: "avc1.64001f,mp4a.40.2",
    width: 1280,
    height: 720,
    fragments,
  });
}
const storedDays = new Map<number, string>();
for (const d of [DAY, DAY + 86_400]) {
  storedDays.set(
    d,
    JSON.stringify(windows.filter((w) => w.from >= d && w.from < d + 86_400).map(encodeWindowIndex)),
  );
}

let calls = 0;
const overlapping = (list: WindowIndex[], from: number, to: number) =>
  list.filter((w) => w.from < to && w.from + w.duration > from);
const warm: FragmentIndexReader = {
  async readFragmentIndex(_source, _stream, from, to) {
    calls++;
    return overlapping(windows, from, to);
  },
};
const warmJson: FragmentIndexReader = {
  async readFragmentIndex(_source, _stream, from, to) {
    calls++;
    const out: WindowIndex[] = [];
    for (let d = Math.floor(from / 86_400) * 86_400; d < to; d += 86_400) {
      for (const s of JSON.parse(storedDays.get(d) ?? "[]")) out.push(decodeWindowIndex(s)!);
    }
    return overlapping(out, from, to);
  },
};

const config = configSchema.parse({
  bucket: "backup",
  sources: [{ name: "s1", url: "http://flussonic.example", streams: ["cam1"] }],
});

async function measure(label: string, index: FragmentIndexReader, file: string): Promise<void> {
  const handler = createPlaybackHandler({
    config,
    index,
    readObject: async () => {
      throw new Error("no media read for a playlist");
    },
    mediaUrl: (key) => `/media/${key}`,
    now: () => (DAY + 3 * 86_400) * 1000,
    tokenKeys: undefined,
  });
  const req = { method: "GET", path: `/s1/cam1/${file}`, query: {}, headers: {} };
  const times: number[] = [];
  const cpu: number[] = [];
  let bytes = 0;
  let segments = 0;
  calls = 0;
  for (let i = 0; i < runs + 3; i++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const res = await handler(req);
    const c = process.cpuUsage(c0);
    const ms = performance.now() - t0;
    if (i >= 3) cpu.push((c.user + c.system) / 1000);
    if (res.status !== 200 || typeof res.body !== "string") throw new Error(`status ${res.status}`);
    if (i >= 3) times.push(ms); // the first runs warm up the JIT
    bytes = res.body.length;
    segments = file.endsWith(".mpd")
      ? res.body.split("<SegmentURL").length - 1
      : res.body.split("#EXTINF").length - 1;
  }
  times.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  const pick = (q: number, list = times) =>
    list[Math.min(list.length - 1, Math.floor(q * list.length))]!.toFixed(1);
  console.log(
    `${label}: 24 h ${file.endsWith(".mpd") ? "DASH manifest" : "playlist"}, ${segments} segments, ${(bytes / 1e6).toFixed(2)} MB: median ${pick(0.5)} ms, p90 ${pick(0.9)} ms, max ${pick(1)} ms over ${runs} runs (CPU median ${pick(0.5, cpu)} ms, p90 ${pick(0.9, cpu)} ms; load average ${loadavg()[0]!.toFixed(2)}); ${calls / (runs + 3)} index read(s) per request`,
  );
}

for (const file of [`index-${FROM}-86400.m3u8`, `archive-${FROM}-86400.mpd`]) {
  await measure("warm (decoded index)", warm, file);
  await measure("warm JSON (parse + decode per request)", warmJson, file);
}
