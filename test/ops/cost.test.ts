/**
 * The cost report (ops/cost.ts) against the emulator's own count: a runtime backs up windows
 * through an HTTP hop that counts every S3 request it forwards; the requests the report says the
 * copies made are the ones the hop saw for the windows' objects and their records (and one read
 * of the holds per copy). Bytes by storage class follow deployment.storageClassTransition; prices
 * from the configuration override the list prices.
 */
import type { IncomingMessage } from "node:http";
import { afterEach, expect, it } from "vitest";
import { costText } from "../../cli/commands/cost.ts";
import { s3Operation } from "../../dev/bench/reference-cost.ts";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { HttpHop } from "../../dev/kit/http-hop.ts";
import { parseConfig } from "../../functions/config/config.ts";
import { catalogKey } from "../../functions/domain/keys.ts";
import { requestClass, requestsCost } from "../../functions/domain/prices.ts";
import { runOnce } from "../../local/once.ts";
import { readCost } from "../../ops/cost.ts";
import { rebuildBackup } from "../../ops/rebuild.ts";

const NOW = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
const STREAMS = [{ name: "cam1", bitrateBps: 64_000, ranges: [{ from: NOW - 2 * HOUR, to: NOW + 1 }] }];

let h: Harness | undefined;
let hop: HttpHop | undefined;
afterEach(async () => {
  await hop?.close();
  await h?.close();
  h = undefined;
  hop = undefined;
});

it("the requests the report counts are the ones the emulator was sent for the copies", async () => {
  h = await startHarness({ sim: { streams: STREAMS }, source: { retentionDays: 1 / 24 } });
  const seen = { put: 0, get: 0, holds: 0 };
  hop = await HttpHop.start(h.emulator.endpoints.s3Endpoint!, (req: IncomingMessage) => {
    const url = new URL(req.url ?? "/", "http://hop");
    const path = decodeURIComponent(url.pathname) + (url.searchParams.get("prefix") ?? "");
    const op = s3Operation(req);
    const c = requestClass(op);
    const window = /\.(mp4|ts)$/.test(path) && !path.includes("/.backup/");
    if (window && c !== "free") seen[c]++;
    if (path.includes("/.backup/records/") && op === "PutObject") seen.put++;
    if (path.includes("/.backup/holds/") && op === "GetObject") seen.holds++;
    return false;
  });
  const rt = await h.runtime({ endpoints: { ...h.emulator.endpoints, s3Endpoint: hop.url } });
  const run = await runOnce(rt, h.tally);
  expect(run.ok).toBe(true);
  const report = await readCost({ config: h.config, store: rt.store, now: h.clock.now(), since: 0 });
  const s = report.streams.find((x) => x.stream === "cam1")!;
  expect(s.windows).toBeGreaterThan(0);
  expect(s.counted).toBe(s.windows);
  expect(s.requests.put).toBe(seen.put);
  // GET-class: the HEADs of the windows, and one read of the holds per copy.
  expect(seen.holds).toBeGreaterThanOrEqual(s.windows);
  expect(s.requests.get).toBe(seen.get + s.windows);
  expect(s.gbSeconds).toBeUndefined();
  expect(report.total.gbSeconds).toBeUndefined();
});

it("bytes by storage class after a GLACIER_IR transition, billed for its 90-day minimum; prices from the configuration", async () => {
  h = await startHarness({ sim: { streams: STREAMS }, source: { retentionDays: 30 } });
  const rt = await h.runtime();
  expect((await runOnce(rt, h.tally)).ok).toBe(true);
  const config = parseConfig(
    JSON.stringify({
      bucket: h.config.bucket,
      sources: [{ name: "src1", url: "http://127.0.0.1:1", retentionDays: 30 }],
      deployment: {
        storageClassTransition: { storageClass: "GLACIER_IR", afterDays: 0 },
        noncurrentVersionDays: 1,
      },
    }),
    "cost.json",
  );
  const now = h.clock.now();
  const standard = await readCost({
    config: { ...config, deployment: { ...config.deployment, storageClassTransition: undefined } },
    store: rt.store,
    now,
    since: 0,
  });
  const moved = await readCost({ config, store: rt.store, now, since: 0 });
  const a = standard.streams.find((x) => x.stream === "cam1")!;
  const b = moved.streams.find((x) => x.stream === "cam1")!;
  const bytes = a.bytesByClass.STANDARD!;
  expect(bytes).toBeGreaterThan(0);
  expect(b.bytesByClass).toEqual({ GLACIER_IR: bytes });
  // 32 days kept (30 + 1 + 1 of old versions): in STANDARD 0.023 x 32, in GLACIER_IR 0.004 x 90 (its minimum).
  expect(b.month.storageUsd).toBeLessThan(a.month.storageUsd);
  // And a transition request per window (USD 0.02 per 1,000), which small windows feel.
  const perMonth = 30 / ((now - 0) / 86_400);
  expect(b.month.storageUsd).toBeCloseTo(
    (a.month.storageUsd * (0.004 * 90)) / (0.023 * 32) + (b.windows * perMonth * 0.02) / 1000,
    12,
  );

  const priced = parseConfig(
    JSON.stringify({
      bucket: h.config.bucket,
      sources: [{ name: "src1", url: "http://127.0.0.1:1", retentionDays: 30 }],
      prices: { standardGbMonth: 0.046, region: "eu-somewhere" },
    }),
    "cost.json",
  );
  const doubled = await readCost({ config: priced, store: rt.store, now, since: 0 });
  expect(doubled.prices.region).toBe("eu-somewhere");
  const c = doubled.streams.find((x) => x.stream === "cam1")!;
  expect(c.month.storageUsd).toBeCloseTo(
    2 *
      (
        await readCost({
          config: { ...priced, prices: undefined } as typeof priced,
          store: rt.store,
          now,
          since: 0,
        })
      ).streams.find((x) => x.stream === "cam1")!.month.storageUsd,
    9,
  );
});

it("windows whose entries rebuild made from the objects carry no counts: estimated at the counted average, shown apart", async () => {
  const streams = [...STREAMS, { ...STREAMS[0]!, name: "cam2" }];
  h = await startHarness({ sim: { streams }, source: { retentionDays: 1 / 24 } });
  const rt = await h.runtime();
  expect((await runOnce(rt, h.tally)).ok).toBe(true);
  const now = h.clock.now();
  const before = await readCost({ config: h.config, store: rt.store, now, since: 0 });
  const cam1 = before.streams.find((x) => x.stream === "cam1")!;
  const cam2 = before.streams.find((x) => x.stream === "cam2")!;
  expect(cam2.counted).toBe(cam2.windows);
  expect(cam2.estimated).toBeUndefined();
  // cam2's catalogs lost, then rebuilt from the stored objects: its entries carry no counts.
  const catalogs = await h.keys(catalogKey(rt.store.prefix, "src1", "cam2", "-").replace(/-\.json$/, ""));
  expect(catalogs.length).toBeGreaterThan(0);
  await rt.store.deleteKeys(catalogs);
  await rebuildBackup({ config: h.config, store: rt.store, source: "src1", stream: "cam2" });
  const after = await readCost({ config: h.config, store: rt.store, now, since: 0 });
  const rebuilt = after.streams.find((x) => x.stream === "cam2")!;
  expect(rebuilt.windows).toBe(cam2.windows);
  expect(rebuilt.counted).toBe(0);
  expect(rebuilt.requests).toEqual({ put: 0, get: 0, sqs: 0 });
  // None of cam2's windows is counted: the source's average (cam1's) stands for them.
  expect(rebuilt.estimated).toEqual({
    put: Math.round((cam1.requests.put / cam1.counted) * cam2.windows),
    get: Math.round((cam1.requests.get / cam1.counted) * cam2.windows),
    windows: cam2.windows,
  });
  expect(rebuilt.month.requestsUsd).toBeGreaterThan(0);
  const perMonth = 30 / (now / 86_400);
  expect(rebuilt.month.requestsUsd).toBeCloseTo(
    requestsCost(
      { put: rebuilt.estimated!.put * perMonth, get: rebuilt.estimated!.get * perMonth, sqs: 0 },
      after.prices,
    ),
    12,
  );
  expect(costText(after)).toMatch(
    new RegExp(
      `0/0 \\(0 of ${cam2.windows} counted; the other ${cam2.windows} estimated ${rebuilt.estimated!.put}/${rebuilt.estimated!.get}\\)`,
    ),
  );
}, 60_000);
