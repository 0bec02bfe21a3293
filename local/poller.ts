/**
 * An SQS poller that behaves like the Lambda SQS event source mapping: long polling, a batch size,
 * at most `concurrency` batches in flight per queue, the queue's visibility timeout, partial batch
 * failures (only the failed items stay on the queue) and the queue's redrive to its DLQ.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { CopierStoppingError } from "../functions/copier/copy-messages.ts";

export type BatchHandler = (event: SQSEvent, options: { signal?: AbortSignal }) => Promise<SQSBatchResponse>;

export interface PollerOptions {
  sqs: SQSClient;
  queueUrl: string;
  queueArn: string;
  region: string;
  concurrency: number;
  batchSize: number;
  /**
   * Long polling wait (the mapping uses 20 s; shorter makes `stop` and draining quicker). 0: short
   * polls, `idleMs` apart while the queue is empty, and a stop does not wait for a poll to end.
   */
  waitTimeSeconds: number;
  /** With short polls: the pause after an empty receive (default 250 ms; a stop cuts it short). */
  idleMs?: number;
  /** A batch running longer than this is aborted (the Lambda timeout). */
  timeoutSeconds: number;
  handler: BatchHandler;
  onError?: (error: unknown) => void;
}

export class QueuePoller {
  readonly #o: PollerOptions;
  #stopping = false;
  #workers: Promise<void>[] = [];
  /** Aborts the batches in flight when a stop's grace period ends. */
  readonly #shutdown = new AbortController();
  /** Batches being handled right now. */
  busy = 0;
  /** Largest number of batches handled at once (checked against the cap in tests). */
  peakBusy = 0;
  /** Messages whose copy a stop aborted, made visible again. */
  aborted = 0;
  /** Ends the pauses between short polls (a stop). */
  readonly #idle = new AbortController();

  constructor(options: PollerOptions) {
    this.#o = options;
  }

  start(): void {
    for (let i = 0; i < this.#o.concurrency; i++) this.#workers.push(this.#work());
  }

  /**
   * Stops receiving and waits for the batches in flight to finish. A long poll under way is not
   * aborted but waited for (at most `waitTimeSeconds`): an aborted receive may still take messages
   * on the server side and hide them for a visibility timeout. What it receives is released at once
   * (visible again), not handled.
   *
   * With `graceMs`, batches still running when it has passed are aborted (their copies abort their
   * uploads) and their messages are made visible again, for the next run to take.
   */
  async stop(graceMs?: number): Promise<void> {
    this.#stopping = true;
    this.#idle.abort();
    const all = Promise.all(this.#workers);
    if (graceMs === undefined) {
      await all;
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([all, graceOver]);
    clearTimeout(timer);
    this.abortInFlight();
    await all;
  }

  /** Aborts the batches in flight now (a stop's grace period is over, or a second signal came). */
  abortInFlight(): void {
    this.#stopping = true;
    if (!this.#shutdown.signal.aborted)
      this.#shutdown.abort(new CopierStoppingError("the service is stopping"));
  }

  async #work(): Promise<void> {
    const o = this.#o;
    while (!this.#stopping) {
      let messages: SQSRecordLike[];
      try {
        const res = await o.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: o.queueUrl,
            MaxNumberOfMessages: o.batchSize,
            WaitTimeSeconds: o.waitTimeSeconds,
            MessageSystemAttributeNames: ["All"],
            MessageAttributeNames: ["All"],
          }),
        );
        messages = (res.Messages ?? []) as SQSRecordLike[];
      } catch (error) {
        if (this.#stopping) return;
        o.onError?.(error);
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      if (messages.length === 0) {
        if (o.waitTimeSeconds === 0) await this.#pause(o.idleMs ?? 250);
        continue;
      }
      if (this.#stopping) {
        // Received while stopping: not taken, visible again for the next run.
        await this.#release(messages).catch((error: unknown) => o.onError?.(error));
        return;
      }
      this.busy++;
      this.peakBusy = Math.max(this.peakBusy, this.busy);
      try {
        await this.#handle(messages);
      } catch (error) {
        o.onError?.(error);
      } finally {
        this.busy--;
      }
    }
  }

  /** Waits `ms`, or less when a stop comes meanwhile. */
  #pause(ms: number): Promise<void> {
    const signal = this.#idle.signal;
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  async #handle(messages: SQSRecordLike[]): Promise<void> {
    const o = this.#o;
    const event: SQSEvent = { Records: messages.map((m) => toRecord(m, o.queueArn, o.region)) };
    const signal = AbortSignal.any([AbortSignal.timeout(o.timeoutSeconds * 1000), this.#shutdown.signal]);
    let failed: Set<string>;
    try {
      const res = await o.handler(event, { signal });
      failed = new Set(res.batchItemFailures.map((f) => f.itemIdentifier));
    } catch {
      // A batch that throws is retried whole, like Lambda does.
      if (this.#shutdown.signal.aborted) {
        await this.#release(messages);
        this.aborted += messages.length;
      }
      return;
    }
    // Copies aborted by a stop go back to the queue at once, not after their retry delay.
    if (this.#shutdown.signal.aborted) {
      const back = messages.filter((m) => failed.has(m.MessageId ?? ""));
      await this.#release(back);
      this.aborted += back.length;
    }
    const done = messages.filter((m) => !failed.has(m.MessageId ?? ""));
    if (done.length === 0) return;
    await o.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: o.queueUrl,
        Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
      }),
    );
  }

  /** Makes messages visible again now (visibility 0). */
  async #release(messages: SQSRecordLike[]): Promise<void> {
    if (messages.length === 0) return;
    const res = await this.#o.sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: this.#o.queueUrl,
        Entries: messages.map((m, i) => ({
          Id: String(i),
          ReceiptHandle: m.ReceiptHandle,
          VisibilityTimeout: 0,
        })),
      }),
    );
    const failed = res.Failed ?? [];
    if (failed.length > 0) {
      throw new Error(
        `could not make ${failed.length} message(s) visible again: ${failed[0]!.Code} ${failed[0]!.Message ?? ""}`,
      );
    }
  }
}

interface SQSRecordLike {
  MessageId?: string;
  ReceiptHandle?: string;
  Body?: string;
  MD5OfBody?: string;
  Attributes?: Record<string, string>;
  MessageAttributes?: Record<string, { StringValue?: string; DataType?: string }>;
}

function toRecord(m: SQSRecordLike, arn: string, region: string): SQSRecord {
  const a = m.Attributes ?? {};
  return {
    messageId: m.MessageId ?? "",
    receiptHandle: m.ReceiptHandle ?? "",
    body: m.Body ?? "",
    attributes: {
      ApproximateReceiveCount: a.ApproximateReceiveCount ?? "1",
      SentTimestamp: a.SentTimestamp ?? String(Date.now()),
      SenderId: a.SenderId ?? "local",
      ApproximateFirstReceiveTimestamp: a.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes: Object.fromEntries(
      Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [
        k,
        {
          stringValue: v.StringValue,
          dataType: v.DataType ?? "String",
        } as SQSRecord["messageAttributes"][string],
      ]),
    ),
    md5OfBody: m.MD5OfBody ?? "",
    eventSource: "aws:sqs",
    eventSourceARN: arn,
    awsRegion: region,
  };
}
