/**
 * README "Pause": the operator's switch in the bucket is obeyed by every runtime within 30 s; the
 * planner sends a paused source no request; a copier that receives a window while paused puts it
 * back with a 15-minute delay, or on a FIFO queue (no per-message delay, equal bodies deduplicated)
 * leaves it for the planner to plan again after resume. Queues are the embedded emulator's own.
 */
import {
  CreateQueueCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";

import type { SQSRecord } from "aws-lambda";
import { afterEach, describe, expect, it } from "vitest";
import { pauseCommand } from "../../cli/commands/pause.ts";
import { type Harness, startHarness } from "../../dev/kit/harness.ts";
import { operatorTarget, TextSink } from "../../dev/kit/ops-target.ts";
import { type CopierEvent, createCopierHandler } from "../../functions/copier/copy-messages.ts";
import type { CopyMessage } from "../../functions/domain/archive.ts";
import { queueDepth } from "../../functions/queue/source-queues.ts";
import type { LocalRuntime } from "../../local/runtime.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function pause(hh: Harness): Promise<void> {
  const out = new TextSink();
  const file = operatorTarget(hh);
  expect(
    await pauseCommand({ config: file, source: "src1", reason: "disk swap", now: hh.clock.now(), out }, true),
  ).toBe(0);
}

describe("pause", () => {
  it("is obeyed within 30 s by a runtime that read the switch before; the planner then asks the source nothing", async () => {
    h = await startHarness({ sim: { streams: 1 } });
    const rt = await h.runtime();
    const source = h.config.sources[0]!;
    expect((await rt.switches.state(source)).copying).toBe(true); // read, and cached
    await pause(h);
    h.clock.advance(29);
    // (Within the cache's 30 s the runtime may still copy.)
    h.clock.advance(1);
    const state = await rt.switches.state(source);
    expect(state.copying).toBe(false);
    expect(state.reason).toMatch(/disk swap/);

    const asked = h.sim.requests.length;
    const report = (await rt.plan()).sources[0]!;
    expect(report.paused).toBe(true);
    expect(report.planned).toEqual([]);
    expect(h.sim.requests.length).toBe(asked);
  });

  /** The copier handler of `rt`, for one source, with a paused switch and the given queue. */
  function pausedCopier(rt: LocalRuntime, queueUrl: string, events: CopierEvent[]) {
    return createCopierHandler({
      store: rt.store,
      sqs: rt.sqs,
      flussonic: (s) => rt.clients.get(s)!,
      throttle: (s) => rt.throttles.get(s)!,
      switches: async () => ({
        copying: false,
        reason: "paused by the operator: disk swap",
        maxBandwidthMbps: 0,
      }),
      queueUrl: () => queueUrl,
      deadLetterUrl: () => rt.queues.get("src1")!.deadLetterUrl,
      maxReceiveCount: 5,
      now: h!.clock.now,
      partSize: 8 * 1024 * 1024,
      copyTimeoutSeconds: 60,
      logger: { debug() {}, info() {}, warn() {}, error() {} },
      onEvent: (e) => events.push(e),
    });
  }

  async function receiveOne(sqs: SQSClient, url: string, body: string): Promise<SQSRecord> {
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: url,
        MessageBody: body,
        ...(url.endsWith(".fifo") ? { MessageGroupId: "copies" } : {}),
      }),
    );
    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 1 }));
    const m = got.Messages![0]!;
    return {
      messageId: m.MessageId!,
      receiptHandle: m.ReceiptHandle!,
      body: m.Body!,
      attributes: {
        ApproximateReceiveCount: "1",
        SentTimestamp: String(Date.now()),
        SenderId: "test",
        ApproximateFirstReceiveTimestamp: String(Date.now()),
      },
      messageAttributes: {},
      md5OfBody: m.MD5OfBody!,
      eventSource: "aws:sqs",
      eventSourceARN: "arn:aws:sqs:us-east-1:000000000000:q",
      awsRegion: "us-east-1",
    };
  }

  for (const fifo of [false, true]) {
    it(
      fifo
        ? "a window received while paused on a FIFO queue is acknowledged and not sent again (the planner re-plans it)"
        : "a window received while paused goes back to the queue as a delayed message (not downloaded)",
      async () => {
        h = await startHarness({ sim: { streams: 1 } });
        const rt = await h.runtime();
        const url = fifo
          ? (
              await rt.sqs.send(
                new CreateQueueCommand({
                  QueueName: "flussonic-backup-src1-paused.fifo",
                  Attributes: { FifoQueue: "true", ContentBasedDeduplication: "true" },
                }),
              )
            ).QueueUrl!
          : rt.queues.get("src1")!.url;
        const message: CopyMessage = {
          v: 1,
          source: "src1",
          stream: "cam1",
          from: h.clock.now() - 3600,
          duration: 600,
          format: "mp4",
          leaseUntil: h.clock.now() + 3600,
        };
        const events: CopierEvent[] = [];
        const record = await receiveOne(rt.sqs, url, JSON.stringify(message));
        const result = await pausedCopier(rt, url, events)({ Records: [record] });
        // Acknowledged (this delivery is done with), deferred, nothing downloaded.
        expect(result.batchItemFailures).toEqual([]);
        expect(events.map((e) => e.type)).toEqual(["deferred"]);
        expect(h.sim.requests.filter((r) => r.kind === "archive")).toEqual([]);
        // The delivery handled is still in flight (the poller or Lambda deletes it); a standard queue
        // holds the window again, delayed; a FIFO queue nothing more.
        expect(await queueDepth(rt.sqs, url)).toEqual({ visible: 0, inFlight: 1, delayed: fifo ? 0 : 1 });
      },
    );
  }
});
