/**
 * The planner counts its own S3 and SQS requests per source as it runs and keeps them in the next
 * catalog it writes (compact-records.ts), at no request of its own; `cost` sums them per source. The
 * counts are checked against what the emulator was sent: every S3 and SQS request goes through a
 * hop that counts them while the planner runs (the copies run with the hop not counting).
 */
import { afterEach, expect, it } from "vitest";
import { s3Operation } from "../../dev/bench/reference-cost.ts";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { HttpHop } from "../../dev/kit/http-hop.ts";
import { catalogKey } from "../../functions/domain/keys.ts";
import { byClass } from "../../functions/domain/prices.ts";
import { readCost } from "../../ops/cost.ts";
import { rebuildBackup } from "../../ops/rebuild.ts";

const NOW = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
const STREAMS = [
  { name: "cam1", bitrateBps: 64_000, ranges: [{ from: NOW - 2 * HOUR, to: NOW + 1 }] },
  { name: "cam2", bitrateBps: 64_000, ranges: [{ from: NOW - 2 * HOUR, to: NOW + 1 }] },
];

let h: Harness | undefined;
const hops: HttpHop[] = [];
afterEach(async () => {
  for (const hop of hops.splice(0)) await hop.close();
  await h?.close();
  h = undefined;
});

it("the planner's requests kept in the catalogs plus those not written yet are the ones the emulator was sent", async () => {
  h = await startHarness({ sim: { streams: STREAMS }, source: { retentionDays: 1 / 24 } });
  let counting = false;
  const seen: Record<string, number> = {};
  const add = (op: string) => {
    if (counting) seen[op] = (seen[op] ?? 0) + 1;
  };
  const e = h.emulator.endpoints;
  const s3Hop = await HttpHop.start(e.s3Endpoint!, (req) => {
    add(s3Operation(req));
    return false;
  });
  const sqsHop = await HttpHop.start(e.sqsEndpoint!, (req) => {
    const target = req.headers["x-amz-target"];
    const action = typeof target === "string" ? target.replace("AmazonSQS.", "") : "query";
    // The copiers' poller (idle between the copies) is not the planner: its requests are the copies'.
    if (/^(ReceiveMessage|DeleteMessageBatch|ChangeMessageVisibilityBatch)$/.test(action)) return false;
    add(`sqs:${action}`);
    return false;
  });
  hops.push(s3Hop, sqsHop);
  const rt = await h.runtime({ endpoints: { ...e, s3Endpoint: s3Hop.url, sqsEndpoint: sqsHop.url } });
  const plan = async () => {
    counting = true;
    try {
      return await rt.plan();
    } finally {
      counting = false;
    }
  };

  // Run 1 leases and queues the windows (no catalog written: its counts wait in the process).
  const first = await plan();
  expect(first.sources[0]!.planned.length).toBeGreaterThan(0);
  expect(seen["sqs:SendMessageBatch"]).toBeGreaterThan(0);
  await rt.startCopiers();
  await rt.drain();
  // Run 2 folds the copies' records into the catalogs: one of those writes carries runs 1 and 2.
  await plan();

  const left = rt.store.plannerTallies.get("src1")!.record();
  const report = await readCost({ config: h.config, store: rt.store, now: h.clock.now(), since: 0 });
  const p = report.planner.find((x) => x.source === "src1")!;
  expect(p.runs).toBe(2);
  const sent = byClass(seen);
  const notWritten = byClass(Object.fromEntries(Object.entries(left).filter(([op]) => op !== "run")));
  expect(sent.put).toBeGreaterThan(0);
  expect(sent.get).toBeGreaterThan(0);
  expect(p.requests.put + notWritten.put).toBe(sent.put);
  expect(p.requests.get + notWritten.get).toBe(sent.get);
  expect(p.requests.sqs + notWritten.sqs).toBe(sent.sqs);
  // Most of it is in the bucket: only what came after the carrying write (the manifests' writes,
  // the records' deletion) waits for the next run.
  expect(p.requests.sqs).toBe(sent.sqs);
  expect(p.requests.get).toBeGreaterThan(0);
  // The totals include the planner's.
  const copies = report.streams.reduce((n, s) => n + s.requests.put, 0);
  expect(report.total.requests.put).toBe(copies + p.requests.put);
  const copiesSqs = report.streams.reduce((n, s) => n + s.requests.sqs, 0);
  expect(report.total.requests.sqs).toBe(copiesSqs + p.requests.sqs);

  // `rebuild` rewrites a catalog that lost an entry: the planner's counts it carries stay.
  const days: string[] = [];
  for await (const o of rt.store.listObjects(
    catalogKey(rt.store.prefix, "src1", "-", "-").replace(/-\/-\.json$/, ""),
  ))
    days.push(o.key);
  expect(days.length).toBeGreaterThan(0);
  let carrier: { stream: string; day: string } | undefined;
  for (const key of days) {
    const [stream, file] = key.split("/").slice(-2) as [string, string];
    const c = await rt.store.readCatalog("src1", stream, file.replace(/\.json$/, ""));
    if (c.planner) carrier = { stream, day: c.day };
  }
  expect(carrier).toBeDefined();
  await rt.store.updateCatalog("src1", carrier!.stream, carrier!.day, (c) => ({
    ...c,
    windows: c.windows.slice(1),
  }));
  const rebuilt = await rebuildBackup({ config: h.config, store: rt.store, source: "src1" });
  expect(rebuilt.streams.reduce((n, s) => n + s.hashed + s.fromRecords, 0)).toBeGreaterThan(0);
  const after = await readCost({ config: h.config, store: rt.store, now: h.clock.now(), since: 0 });
  expect(after.planner).toEqual(report.planner);
});
