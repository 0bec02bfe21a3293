/**
 * S3 requests per playback request (issue 20 §5): `recording_status.json` and `ranges.json`
 * without `from` at ten years of retention read a bounded number of objects (the fragment index's
 * per-stream summary, one listing of the stream's index days, the partial days at both ends), not
 * one object per day; and the answer is the one reading every day gives, also when the summary
 * lags a day object. Against the embedded emulator; requests counted by the store.
 */
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "../../dev/kit/harness.ts";
import { syntheticWindowIndex } from "../../dev/kit/index-fixtures.ts";
import { FRAGMENT_INDEX_VERSION, type StoredWindowIndex } from "../../functions/domain/fragment-index.ts";
import { fragmentIndexKey, utcDate } from "../../functions/domain/keys.ts";
import { createPlaybackHandler, type PlaybackHandler } from "../../functions/playback/handler.ts";
import { forEachLimited } from "../../functions/shared/for-each-limited.ts";
import type { BackupStore } from "../../functions/store/backup-store.ts";
import { FragmentIndexStore } from "../../functions/store/fragment-index-store.ts";
import { listCoverage } from "../../local/playback-server.ts";

const DAY = 86_400;
const DAYS = 3650;
/** Now: 15:00 UTC on the last day of the archive. */
const NOW = Math.floor(Date.UTC(2026, 11, 7, 15, 0, 0) / 1000);
const FIRST_DAY = Math.floor(NOW / DAY) * DAY - (DAYS - 1) * DAY;

let h: Harness;
let store: BackupStore;
let index: FragmentIndexStore;
let handler: PlaybackHandler;

/** A 600 s window of ten 60 s fragments at `from`, `size` bytes. */
function stored(from: number, size = 1000): StoredWindowIndex {
  return syntheticWindowIndex(from, `${h.config.prefix}src1/cam1/${utcDate(from)}/x-${from}.mp4`, size);
}

/** Two windows a day (00:00 and 12:00), written as the planner leaves them. */
function dayObject(dayStart: number) {
  return {
    v: FRAGMENT_INDEX_VERSION,
    source: "src1",
    stream: "cam1",
    day: utcDate(dayStart),
    windows: [stored(dayStart), stored(dayStart + DAY / 2)],
  };
}

function requests(): number {
  return [...store.requests.values()].reduce((n, v) => n + v, 0);
}

async function counted(handler: PlaybackHandler, path: string, query: Record<string, string> = {}) {
  const before = requests();
  const res = await handler({ method: "GET", path, query, headers: {} });
  return { res, requests: requests() - before };
}

/** What the backup holds: two 600 s windows a day (`changed`: days with only the first one). */
function expected(changed: ReadonlySet<number> = new Set()) {
  const ranges: { from: number; duration: number }[] = [];
  let bytes = 0;
  for (let i = 0; i < DAYS; i++) {
    const day = FIRST_DAY + i * DAY;
    ranges.push({ from: day, duration: 600 });
    bytes += changed.has(day) ? 5 : 1000;
    if (changed.has(day)) continue;
    ranges.push({ from: day + DAY / 2, duration: 600 });
    bytes += 1000;
  }
  return { ranges, bytes };
}

beforeAll(async () => {
  h = await startHarness({
    sim: { streams: [{ name: "cam1", bitrateBps: 40_000 }] },
    source: { retentionDays: DAYS, streams: ["cam1"] },
  });
  const rt = await h.runtime();
  store = rt.store;
  index = new FragmentIndexStore(store);
  // Ten years of index days, put straight into the bucket (as days written before summaries).
  const days = Array.from({ length: DAYS }, (_, i) => FIRST_DAY + i * DAY);
  await forEachLimited(days, 16, async (d) => {
    const body = dayObject(d);
    await store.s3.send(
      new PutObjectCommand({
        Bucket: store.bucket,
        Key: fragmentIndexKey(store.prefix, "src1", "cam1", body.day),
        Body: JSON.stringify(body),
      }),
    );
  });
  // Days written before summaries existed: reindex makes the summary once (here, so that each
  // test runs alone and in any order).
  expect(await index.refreshSummary("src1", "cam1")).toBe(DAYS);
  handler = createPlaybackHandler({
    config: h.config,
    index,
    readObject: async () => (async function* () {})(),
    mediaUrl: (key: string) => key,
    now: () => NOW * 1000,
    tokenKeys: undefined,
  });
}, 300_000);

afterAll(async () => {
  await h?.close();
});

describe("playback reads a bounded number of S3 objects per request at ten years of retention", () => {
  it("recording_status.json and ranges.json without from: at most 12 S3 requests (the summary, a listing of the days, the partial days), the whole retention answered", async () => {
    const status = await counted(handler, "/src1/cam1/recording_status.json");
    console.log(`recording_status.json at ${DAYS} days: ${status.requests} S3 requests`);
    expect(status.res.status).toBe(200);
    expect(status.requests).toBeLessThanOrEqual(12);
    const want = expected();
    const info = JSON.parse(String(status.res.body)); // the spec's dvr_info object
    expect(info.ranges).toEqual(want.ranges);
    expect(info.bytes).toBe(want.bytes);

    const ranges = await counted(handler, "/src1/cam1/ranges.json");
    console.log(`ranges.json at ${DAYS} days: ${ranges.requests} S3 requests`);
    expect(ranges.requests).toBeLessThanOrEqual(12);
    expect(JSON.parse(String(ranges.res.body)).ranges).toEqual(
      want.ranges.map((r) => ({ opened_at: r.from * 1000, closed_at: (r.from + r.duration) * 1000 })),
    );
  }, 120_000);

  it("a day changed behind the summary's back is read itself (its ETag differs): the answer follows the day object, and a writer through the store keeps the summary", async () => {
    const day = FIRST_DAY + 100 * DAY;
    // One window left on that day, written without updating the summary.
    const changed = { ...dayObject(day), windows: [stored(day, 5)] };
    await store.s3.send(
      new PutObjectCommand({
        Bucket: store.bucket,
        Key: fragmentIndexKey(store.prefix, "src1", "cam1", changed.day),
        Body: JSON.stringify(changed),
      }),
    );
    const path = "/src1/cam1/recording_status.json";
    const status = await counted(handler, path);
    expect(status.requests).toBeLessThanOrEqual(13);
    const info = JSON.parse(String(status.res.body)); // the spec's dvr_info object
    const want = expected(new Set([day]));
    expect(info.ranges).toEqual(want.ranges);
    expect(info.bytes).toBe(want.bytes);

    // A writer through the store (the planner, reindex, verify --repair) keeps the summary; it
    // also puts the day back as the other tests expect it.
    await index.updateDay("src1", "cam1", changed.day, () => dayObject(day).windows);
    const again = await counted(handler, path);
    expect(again.requests).toBeLessThanOrEqual(12);
    expect(JSON.parse(String(again.res.body)).ranges).toEqual(expected().ranges);
  }, 120_000);

  it("the page's listing reads nothing of a stream the token does not grant: 500 pending records of another stream cost no GET", async () => {
    await forEachLimited(
      Array.from({ length: 500 }, (_, i) => NOW - 3600 + i),
      16,
      async (from) => {
        const record = { source: "src1", stream: "cam2", from, duration: 1, key: `k${from}`, size: 1 };
        await store.s3.send(
          new PutObjectCommand({
            Bucket: store.bucket,
            Key: store.recordKeyOf({ source: "src1", stream: "cam2", from, duration: 1 }),
            Body: JSON.stringify(record),
          }),
        );
      },
    );
    const before = requests();
    const listing = await listCoverage(
      h.config,
      store,
      NOW,
      (source, stream) => source === "src1" && stream === "cam1",
    );
    const used = requests() - before;
    console.log(`streams.json for a token of one stream, 500 pending records elsewhere: ${used} S3 requests`);
    expect(listing.sources.map((x) => x.streams.map((st) => st.stream))).toEqual([["cam1"]]);
    expect(used).toBeLessThanOrEqual(4);
  }, 120_000);
});
