/**
 * SendMessageBatch can succeed for some entries and fail others (SQS answers 200 with `Failed`):
 * the copy queue sends the failed entries again, and what still fails after its attempts is reported.
 * The planner leases first, so those windows stay leased, unqueued, until their lease ends. Against the embedded emulator (fauxqs), behind a hop that fails
 * chosen entries of a batch the way SQS does: they never reach the queue, the others do.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { DeleteMessageCommand, ReceiveMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { afterEach, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "../../dev/kit/harness.ts";
import { HttpHop } from "../../dev/kit/http-hop.ts";
import type { CopyMessage } from "../../functions/domain/archive.ts";
import { CopyQueue } from "../../functions/queue/copy-queue.ts";
import { createSqsClient } from "../../local/aws-clients.ts";

let h: Harness | undefined;
let hop: HttpHop | undefined;
afterEach(async () => {
  await h?.close();
  await hop?.close();
  h = undefined;
  hop = undefined;
});

/**
 * A hop in front of the emulator's SQS endpoint: for SendMessageBatch calls, `fail(entry index,
 * call number)` picks entries answered as failed (InternalError, not the sender's fault); the rest
 * of the batch is forwarded and its real answer merged in.
 */
async function partialFailures(target: string, fail: (index: number, call: number) => boolean) {
  let calls = 0;
  const proxy = await HttpHop.start(target, (req: IncomingMessage, res: ServerResponse) => {
    if (req.headers["x-amz-target"] !== "AmazonSQS.SendMessageBatch") return false;
    const call = ++calls;
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const input = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { Entries: { Id: string }[] };
      const failing = input.Entries.filter((_, i) => fail(i, call));
      const kept = input.Entries.filter((_, i) => !fail(i, call));
      let successful: unknown[] = [];
      if (kept.length > 0) {
        const up = await fetch(new URL(req.url ?? "/", target), {
          method: "POST",
          headers: {
            "content-type": String(req.headers["content-type"]),
            "x-amz-target": "AmazonSQS.SendMessageBatch",
            authorization: String(req.headers.authorization ?? ""),
          },
          body: JSON.stringify({ ...input, Entries: kept }),
        });
        successful = ((await up.json()) as { Successful?: unknown[] }).Successful ?? [];
      }
      const body = JSON.stringify({
        Successful: successful,
        Failed: failing.map((e) => ({
          Id: e.Id,
          SenderFault: false,
          Code: "InternalError",
          Message: "injected",
        })),
      });
      res.writeHead(200, { "content-type": "application/x-amz-json-1.0" });
      res.end(body);
    })();
    return true;
  });
  return { proxy, calls: () => calls };
}

async function drainQueue(sqs: SQSClient, url: string): Promise<CopyMessage[]> {
  const out: CopyMessage[] = [];
  for (;;) {
    const res = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    if (!res.Messages?.length) return out;
    for (const m of res.Messages) {
      out.push(JSON.parse(m.Body!) as CopyMessage);
      await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle! }));
    }
  }
}

const message = (i: number): CopyMessage => ({
  v: 1,
  source: "src1",
  stream: "cam1",
  from: 1_800_000_000 + i * 600,
  duration: 600,
  format: "mp4",
  leaseUntil: 1_800_100_000,
});

describe("SendMessageBatch with failed entries", () => {
  it("sends the failed entries again: every message queued exactly once", async () => {
    h = await startHarness();
    const rt = await h.runtime();
    const sqsEndpoint = h.emulator.endpoints.sqsEndpoint!;
    // The first two calls fail every other entry.
    const faults = await partialFailures(sqsEndpoint, (i, call) => call <= 2 && i % 2 === 0);
    hop = faults.proxy;
    const sqs = createSqsClient({ ...h.emulator.endpoints, sqsEndpoint: hop.url });
    try {
      const url = rt.queues.get("src1")!.url;
      const queue = new CopyQueue(sqs, () => url);
      const messages = Array.from({ length: 25 }, (_, i) => message(i));
      const result = await queue.send("src1", messages);
      expect(result.failed).toEqual([]);
      expect(result.sent.map((m) => m.from).sort()).toEqual(messages.map((m) => m.from));
      // 3 batches (10, 10, 5), the first two sent again once (their 5 failed entries).
      expect(faults.calls()).toBe(5);
      expect(queue.batchCalls).toBe(5);
      expect(queue.lean, "the lean SendMessageBatch sent them (and did not decline)").toBe(true);
      const queued = await drainQueue(rt.sqs, url);
      expect(queued.map((m) => m.from).sort()).toEqual(messages.map((m) => m.from));
    } finally {
      sqs.destroy();
    }
  });

  it("reports what still fails after three attempts; the planner, leasing first, holds those windows till the lease ends", async () => {
    h = await startHarness({ sim: { streams: 1 } });
    const sqsEndpoint = h.emulator.endpoints.sqsEndpoint!;
    // The first entry of every batch always fails.
    const faults = await partialFailures(sqsEndpoint, (i) => i === 0);
    hop = faults.proxy;
    const rt = await h.runtime({ endpoints: { ...h.emulator.endpoints, sqsEndpoint: hop.url } });
    const report = (await rt.plan()).sources[0]!;
    const queued = await drainQueue(rt.sqs, rt.queues.get("src1")!.url);
    const batches = Math.ceil((queued.length + report.errors.length) / 10);
    expect(queued.length).toBeGreaterThan(0);
    // The first entry of each batch lost after three attempts, each reported with the SQS error.
    expect(report.errors).toHaveLength(batches);
    expect(faults.calls()).toBe(3 * batches);
    expect(report.planned.map((m) => m.from).sort()).toEqual(queued.map((m) => m.from).sort());
    const { manifest } = await rt.store.readManifest("src1", "cam1");
    // Each sentence names the window and when its lease ends (the time it is planned again).
    for (const e of report.errors) {
      const from = Number(/^could not queue window (\d+):/.exec(e.message)?.[1]);
      const lease = manifest.leases.find((l) => l.from === from);
      expect(lease, e.message).toBeDefined();
      expect(e.message).toBe(
        `could not queue window ${from}: InternalError: injected (leased until ${new Date(lease!.until * 1000).toISOString()}: planned again after that)`,
      );
    }
    // Lease first (the premise changed: before, only what was queued was leased): every window
    // chosen is leased, the ones not queued too, so no other planner queues them before the lease ends.
    const notQueued = report.errors.map((e) => Number(/window (\d+)/.exec(e.message)![1]));
    expect(manifest.leases.map((l) => l.from).sort()).toEqual(
      [...queued.map((m) => m.from), ...notQueued].sort(),
    );
    expect((await rt.plan()).sources[0]!.planned.filter((m) => notQueued.includes(m.from))).toEqual([]);
  });
});
