/**
 * issue 26: the cost report counts the copier's SQS requests. The local poller's receives (the empty
 * ones of its polling included), deletes and visibility changes go into the records of the copies
 * that follow them, so a source's records add up to every one of them but those made after the last
 * record; `cost` shows them per stream and in the totals. Checked against the requests the emulator
 * was sent, through a hop in front of its SQS endpoint.
 */
import { afterEach, expect, it } from "vitest";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { HttpHop } from "../../dev/kit/http-hop.ts";
import { runOnce } from "../../local/once.ts";
import { readCost } from "../../ops/cost.ts";

const NOW = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
const STREAMS = ["cam1", "cam2", "cam3"].map((name) => ({
  name,
  bitrateBps: 16_000,
  ranges: [{ from: NOW - 2 * HOUR, to: NOW + 1 }],
}));

let h: Harness | undefined;
let hop: HttpHop | undefined;
afterEach(async () => {
  await hop?.close();
  await h?.close();
  h = undefined;
  hop = undefined;
});

it("the copies' records count the poller's SQS requests: with those after the last record, what the emulator was sent", async () => {
  h = await startHarness({
    sim: { streams: STREAMS },
    source: { retentionDays: 2 / 24, maxConcurrentCopies: 4 },
  });
  const seen: Record<string, number> = {};
  const e = h.emulator.endpoints;
  hop = await HttpHop.start(e.sqsEndpoint!, (req) => {
    const action = String(req.headers["x-amz-target"] ?? "").replace("AmazonSQS.", "");
    seen[action] = (seen[action] ?? 0) + 1;
    return false;
  });
  const rt = await h.runtime({ endpoints: { ...e, sqsEndpoint: hop.url } });
  await rt.startCopiers();
  const poller = rt.pollers.get("src1")!;
  const summary = await runOnce(rt, h.tally);
  expect(summary.ok).toBe(true);
  expect(summary.copied).toBeGreaterThan(8);

  // The poller's own counts are what the queue service was sent (the planner sends, the runtime
  // asks the depth: other actions).
  expect(poller.requests.receive).toBe(seen.ReceiveMessage);
  expect(poller.requests.delete).toBe(seen.DeleteMessageBatch);
  expect(poller.requests.changeVisibility).toBe(seen.ChangeMessageVisibilityBatch ?? 0);
  const made = seen.ReceiveMessage! + seen.DeleteMessageBatch! + (seen.ChangeMessageVisibilityBatch ?? 0);

  const report = await readCost({ config: h.config, store: rt.store, now: h.clock.now(), since: 0 });
  const inRecords = report.streams.reduce((n, s) => n + s.requests.sqs, 0);
  expect(report.streams.every((s) => s.requests.sqs > 0)).toBe(true);
  expect(inRecords + poller.untakenRequests).toBe(made);
  // Only the last deletes and the polls until the stop come after the last record.
  expect(inRecords).toBeGreaterThan(0.8 * made);
  // Batched: far fewer than a receive and a delete per window.
  expect(inRecords).toBeLessThan(summary.copied);
  expect(report.total.requests.sqs).toBe(inRecords + report.planner.reduce((n, p) => n + p.requests.sqs, 0));
});
