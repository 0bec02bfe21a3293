/**
 * issue 26 item 3: the local SQS poller receives up to 10 messages a call and deletes finished ones
 * together, instead of one ReceiveMessage and one DeleteMessageBatch per window. What it must keep:
 * never more batches at once than its concurrency, every message handled, a failed one left on the
 * queue for its retry (the others not lost), and a message deleted only after its handler succeeded
 * (for the copier: after the window is stored and recorded). Against the embedded emulator, through
 * a hop that logs every SQS request.
 */
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { afterEach, expect, it } from "vitest";
import { HttpHop } from "../../dev/kit/http-hop.ts";
import { createSqsClient } from "../../local/aws-clients.ts";
import { type EmbeddedEmulator, startEmbedded } from "../../local/embedded.ts";
import { type BatchHandler, QueuePoller } from "../../local/poller.ts";

let emulator: EmbeddedEmulator | undefined;
let hop: HttpHop | undefined;
let sqs: SQSClient | undefined;
afterEach(async () => {
  sqs?.destroy();
  await hop?.close();
  await emulator?.stop();
  sqs = undefined;
  hop = undefined;
  emulator = undefined;
});

interface SqsCall {
  action: string;
  at: number;
  /** Receipt handles a DeleteMessageBatch named. */
  receipts: string[];
}

/** The emulator behind a hop logging each SQS action (and the receipts of each delete). */
async function setUp(messages: number): Promise<{ url: string; calls: SqsCall[] }> {
  emulator = await startEmbedded(undefined);
  const calls: SqsCall[] = [];
  const e = emulator.endpoints;
  hop = await HttpHop.start(e.sqsEndpoint!, (req, _res, forward) => {
    const target = String(req.headers["x-amz-target"] ?? "").replace("AmazonSQS.", "");
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const receipts =
        target === "DeleteMessageBatch"
          ? (JSON.parse(body.toString()) as { Entries: { ReceiptHandle: string }[] }).Entries.map(
              (x) => x.ReceiptHandle,
            )
          : [];
      calls.push({ action: target, at: performance.now(), receipts });
      forward(body);
    });
    return true;
  });
  sqs = createSqsClient({ ...e, sqsEndpoint: hop.url });
  const { QueueUrl } = await sqs.send(
    new CreateQueueCommand({ QueueName: "poller-test", Attributes: { VisibilityTimeout: "60" } }),
  );
  for (let i = 0; i < messages; i += 10) {
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl,
        Entries: Array.from({ length: Math.min(10, messages - i) }, (_, j) => ({
          Id: String(j),
          MessageBody: `m${i + j}`,
        })),
      }),
    );
  }
  calls.length = 0;
  return { url: QueueUrl!, calls };
}

function poller(url: string, concurrency: number, handler: BatchHandler): QueuePoller {
  return new QueuePoller({
    sqs: sqs!,
    queueUrl: url,
    queueArn: "arn:aws:sqs:us-east-1:000000000000:poller-test",
    region: "us-east-1",
    concurrency,
    batchSize: 1,
    waitTimeSeconds: 0,
    idleMs: 20,
    timeoutSeconds: 30,
    handler,
  });
}

async function depth(url: string): Promise<number> {
  const res = await sqs!.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    }),
  );
  const a = res.Attributes ?? {};
  return Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesNotVisible ?? 0);
}

/** Resolves once the queue holds no message (visible or in flight). */
async function drained(url: string): Promise<void> {
  while ((await depth(url)) > 0) await new Promise((r) => setTimeout(r, 20));
}

it("handles every message once, never more at once than its concurrency but several, in a few receives and deletes", async () => {
  const { url, calls } = await setUp(40);
  const handled: string[] = [];
  let open = 0;
  let peak = 0;
  const p = poller(url, 4, async (event: SQSEvent): Promise<SQSBatchResponse> => {
    open++;
    peak = Math.max(peak, open);
    // A copy's work: a few turns of the event loop.
    await new Promise((r) => setTimeout(r, 5));
    handled.push(...event.Records.map((r) => r.body));
    open--;
    return { batchItemFailures: [] };
  });
  p.start();
  await drained(url);
  await p.stop();

  expect(handled.sort()).toEqual(Array.from({ length: 40 }, (_, i) => `m${i}`).sort());
  expect(peak).toBeLessThanOrEqual(4);
  expect(peak).toBeGreaterThan(1);
  expect(p.peakBusy).toBe(peak);
  const count = (action: string) => calls.filter((c) => c.action === action).length;
  // One receive and one delete per message before; now up to 10 messages a call.
  expect(count("ReceiveMessage") - p.requests.emptyReceive).toBeLessThanOrEqual(40 / 4);
  expect(count("DeleteMessageBatch")).toBeLessThanOrEqual(40 / 4);
  expect(calls.flatMap((c) => c.receipts)).toHaveLength(40);
  // The poller's own counts are the requests the queue was sent.
  expect(p.requests.receive).toBe(count("ReceiveMessage"));
  expect(p.requests.delete).toBe(count("DeleteMessageBatch"));
  expect(p.requests.received).toBe(40);
  expect(p.requests.deleted).toBe(40);
});

it("leaves a failed message of a batch for its retry, loses no other, and deletes each only after its handler succeeded", async () => {
  const { url, calls } = await setUp(20);
  const failOnce = new Set(["m3", "m4", "m11"]);
  const throwOnce = new Set(["m7"]);
  const succeededAt = new Map<string, number>();
  const receiptsOf = new Map<string, string[]>();
  const attempts = new Map<string, number>();
  const p = poller(url, 4, async (event: SQSEvent): Promise<SQSBatchResponse> => {
    const failures: { itemIdentifier: string }[] = [];
    await new Promise((r) => setTimeout(r, 5));
    for (const r of event.Records) {
      attempts.set(r.body, (attempts.get(r.body) ?? 0) + 1);
      receiptsOf.set(r.body, [...(receiptsOf.get(r.body) ?? []), r.receiptHandle]);
      if (throwOnce.delete(r.body)) throw new Error("the handler failed as a whole");
      if (failOnce.delete(r.body)) {
        // As the copier does for a retryable failure: visible again after its retry delay (0 here).
        await sqs!.send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: url,
            ReceiptHandle: r.receiptHandle,
            VisibilityTimeout: 0,
          }),
        );
        failures.push({ itemIdentifier: r.messageId });
        continue;
      }
      succeededAt.set(r.body, performance.now());
    }
    return { batchItemFailures: failures };
  });
  p.start();
  // The thrown batch's message comes back after the queue's visibility timeout: make it visible now.
  while (succeededAt.size < 19) await new Promise((r) => setTimeout(r, 20));
  const thrown = receiptsOf.get("m7")!;
  await sqs!.send(
    new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: thrown[0]!, VisibilityTimeout: 0 }),
  );
  await drained(url);
  await p.stop();

  expect([...succeededAt.keys()].sort()).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`).sort());
  for (const body of ["m3", "m4", "m11", "m7"]) expect(attempts.get(body)).toBe(2);
  expect([...attempts.values()].reduce((a, b) => a + b, 0)).toBe(24);
  const deletes = calls.filter((c) => c.action === "DeleteMessageBatch");
  const deletedAt = new Map(deletes.flatMap((c) => c.receipts.map((r) => [r, c.at] as const)));
  for (const [body, receipts] of receiptsOf) {
    const last = receipts.at(-1)!;
    // The delivery that succeeded is deleted, after it succeeded; the failed deliveries never are.
    expect(deletedAt.get(last), body).toBeGreaterThan(succeededAt.get(body)!);
    for (const r of receipts.slice(0, -1)) expect(deletedAt.has(r), body).toBe(false);
  }
});

it("a stop returns the messages received but not started to the queue at once", async () => {
  const { url, calls } = await setUp(10);
  const releases: (() => void)[] = [];
  const started: string[] = [];
  const p = poller(url, 2, async (event: SQSEvent): Promise<SQSBatchResponse> => {
    started.push(...event.Records.map((r) => r.body));
    await new Promise<void>((resolve) => releases.push(resolve));
    return { batchItemFailures: [] };
  });
  p.start();
  while (releases.length < 2) await new Promise((r) => setTimeout(r, 10));
  const stopped = p.stop();
  for (const release of releases) release();
  await stopped;
  expect(started).toHaveLength(2);
  // It took more than it ran: two waited beside the two running.
  expect(p.requests.received).toBe(4);
  expect(calls.filter((c) => c.action === "ChangeMessageVisibilityBatch")).toHaveLength(1);
  const res = await sqs!.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    }),
  );
  // The two handled are deleted; the 8 others are visible again, none hidden for a visibility timeout.
  expect(res.Attributes?.ApproximateNumberOfMessages).toBe("8");
  expect(res.Attributes?.ApproximateNumberOfMessagesNotVisible).toBe("0");
});
