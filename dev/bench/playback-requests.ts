/**
 * Figure 7 (issue 20 §5): S3 requests per playback request at ten years of retention. A stream
 * with one fragment index object per day for 3,650 days (two 600 s windows a day) in the emulator
 * process; `recording_status.json` and `ranges.json` without `from` through the playback handler
 * over the S3 fragment index, requests counted by the store. First as a backup indexed before the
 * per-stream summary existed (one GET per day), then after `reindex` made the summary once.
 * Not in the default run (`npm run bench -- --only 7`).
 */
import { CreateBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { configSchema } from "../../functions/config/config.ts";
import { fragmentIndexKey, utcDate } from "../../functions/domain/keys.ts";
import { createPlaybackHandler } from "../../functions/playback/handler.ts";
import { forEachLimited } from "../../functions/shared/for-each-limited.ts";
import { BackupStore } from "../../functions/store/backup-store.ts";
import { FragmentIndexStore } from "../../functions/store/fragment-index-store.ts";
import { syntheticWindowIndex } from "../kit/index-fixtures.ts";
import type { BenchContext } from "./bench-context.ts";
import { type FigureResult, verdict } from "./figures.ts";

const DAY = 86_400;
/** At most this many S3 requests per request, whatever the retention. */
const TARGET = 12;

export async function measurePlaybackRequests(ctx: BenchContext): Promise<FigureResult> {
  const days = ctx.smoke ? 30 : 3650;
  const bucket = "bench-playback";
  await ctx.s3.send(new CreateBucketCommand({ Bucket: bucket })).catch(() => undefined);
  const store = new BackupStore(ctx.s3, bucket, "flussonic/");
  const index = new FragmentIndexStore(store);
  const now = Math.floor(Date.UTC(2026, 11, 7, 15, 0, 0) / 1000);
  const first = Math.floor(now / DAY) * DAY - (days - 1) * DAY;
  ctx.progress(`figure 7: writing ${days} fragment index days`);
  await forEachLimited(
    Array.from({ length: days }, (_, i) => first + i * DAY),
    16,
    async (day) => {
      const windows = [day, day + DAY / 2].map((from) =>
        syntheticWindowIndex(from, `flussonic/s1/cam1/${utcDate(from)}/x-${from}.mp4`),
      );
      await ctx.s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: fragmentIndexKey(store.prefix, "s1", "cam1", utcDate(day)),
          Body: JSON.stringify({ v: 1, source: "s1", stream: "cam1", day: utcDate(day), windows }),
        }),
      );
    },
  );
  const config = configSchema.parse({
    bucket,
    sources: [{ name: "s1", url: "http://flussonic.example", retentionDays: days, streams: ["cam1"] }],
  });
  const handler = createPlaybackHandler({
    config,
    index,
    readObject: async () => (async function* () {})(),
    mediaUrl: (key) => key,
    now: () => now * 1000,
    tokenKeys: undefined,
  });
  const total = () => [...store.requests.values()].reduce((n, v) => n + v, 0);
  const count = async (file: string) => {
    const before = total();
    const started = performance.now();
    const res = await handler({ method: "GET", path: `/s1/cam1/${file}`, query: {}, headers: {} });
    if (res.status !== 200) throw new Error(`${file}: ${res.status} ${String(res.body)}`);
    return { requests: total() - before, ms: performance.now() - started };
  };
  const before = await count("recording_status.json");
  ctx.progress(`figure 7: recording_status.json without a summary: ${before.requests} requests`);
  await index.refreshSummary("s1", "cam1");
  const status = await count("recording_status.json");
  const ranges = await count("ranges.json");
  const years = (days / 365).toFixed(0);
  return {
    figure: 7,
    title: "S3 requests per playback request",
    rows: [
      {
        figure: 7,
        what: `recording_status.json, ${years} y retention, before reindex (no summary)`,
        measured: `${before.requests} requests, ${before.ms.toFixed(0)} ms`,
        target: "-",
        verdict: "PASS",
      },
      {
        figure: 7,
        what: `recording_status.json, ${years} y retention, with the summary`,
        measured: `${status.requests} requests, ${status.ms.toFixed(0)} ms`,
        target: `<= ${TARGET}`,
        verdict: verdict(status.requests <= TARGET),
      },
      {
        figure: 7,
        what: `ranges.json, ${years} y retention, with the summary`,
        measured: `${ranges.requests} requests, ${ranges.ms.toFixed(0)} ms`,
        target: `<= ${TARGET}`,
        verdict: verdict(ranges.requests <= TARGET),
      },
    ],
    details: { days, before, status, ranges },
    notes: [
      "Index days as the planner writes them (two 600 s windows a day), in the emulator process; requests counted by the store.",
    ],
  };
}
