/**
 * A Central source's window dead-lettered into its FIFO dead-letter queue keeps its message group
 * (`<server>#<k>`), so that `redrive` puts it back into its server's group; a standard dead-letter
 * queue gets no group. Against the embedded emulator (fauxqs: real FIFO queues).
 */
import type { SQSClient } from "@aws-sdk/client-sqs";
import type { SQSRecord } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createQueue, takeMessages } from "../../dev/kit/test-queues.ts";
import { createCopierHandler } from "../../functions/copier/copy-messages.ts";
import { BackupStore } from "../../functions/store/backup-store.ts";
import { createS3Client, createSqsClient } from "../../local/aws-clients.ts";
import { type EmbeddedEmulator, startEmbedded } from "../../local/embedded.ts";

let emulator: EmbeddedEmulator;
let sqs: SQSClient;

beforeAll(async () => {
  emulator = await startEmbedded(undefined);
  sqs = createSqsClient(emulator.endpoints);
});

afterAll(async () => {
  sqs?.destroy();
  await emulator?.stop();
});

const queue = (name: string) => createQueue(sqs, name);

/** A delivery of an unreadable body (dead-lettered at once, the source never asked) from `group`. */
function record(body: string, group: string | undefined): SQSRecord {
  return {
    messageId: `m-${body}`,
    receiptHandle: `r-${body}`,
    body,
    attributes: {
      ApproximateReceiveCount: "1",
      SentTimestamp: String(Date.now()),
      SenderId: "test",
      ApproximateFirstReceiveTimestamp: String(Date.now()),
      ...(group ? { MessageGroupId: group, MessageDeduplicationId: body, SequenceNumber: "1" } : {}),
    },
    messageAttributes: {},
    md5OfBody: "",
    eventSource: "aws:sqs",
    eventSourceARN: "arn:aws:sqs:us-east-1:000000000000:flussonic-backup-fleet.fifo",
    awsRegion: "us-east-1",
  };
}

function copier(deadLetterUrl: string) {
  const s3 = createS3Client(emulator.endpoints);
  return createCopierHandler({
    store: new BackupStore(s3, "unused-bucket", "flussonic/"),
    sqs,
    flussonic: () => {
      throw new Error("an unreadable message asks no source");
    },
    throttle: () => {
      throw new Error("an unreadable message is not paced");
    },
    queueUrl: () => `${deadLetterUrl}-unused`,
    deadLetterUrl: () => deadLetterUrl,
    maxReceiveCount: 5,
    now: () => 1_800_000_000,
    partSize: 8 * 1024 * 1024,
    copyTimeoutSeconds: 60,
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
}

async function received(url: string): Promise<[string, string | undefined][]> {
  return (await takeMessages(sqs, url)).map((m) => [m.body, m.group] as [string, string | undefined]);
}

describe("dead letters of a central source", () => {
  it("keep the window's message group in a FIFO dead-letter queue", async () => {
    const dlq = await queue("flussonic-backup-fleet-dlq.fifo");
    const handle = copier(dlq);
    const answer = await handle({
      Records: [record("garbage one", "a.example#1"), record("garbage two", "b.example#0")],
    });
    expect(answer.batchItemFailures).toEqual([]);
    expect((await received(dlq)).sort()).toEqual([
      ["garbage one", "a.example#1"],
      ["garbage two", "b.example#0"],
    ]);
  });

  it("carry no group in a standard dead-letter queue", async () => {
    const dlq = await queue("flussonic-backup-plain-dlq");
    const answer = await copier(dlq)({ Records: [record("garbage three", undefined)] });
    expect(answer.batchItemFailures).toEqual([]);
    expect(await received(dlq)).toEqual([["garbage three", undefined]]);
  });
});
