/**
 * An SQS poller that behaves like the Lambda SQS event source mapping: a batch size, at most
 * `concurrency` batches in flight per queue, the queue's visibility timeout, partial batch failures
 * (only the failed items stay on the queue) and the queue's redrive to its DLQ.
 *
 * One receive loop per queue feeds the batches (like the mapping's pollers, which receive up to 10
 * messages a call whatever the batch size): on a standard queue it asks for up to 10 messages at a
 * time and keeps up to `concurrency` batches waiting beside those running, so that a fleet of small
 * windows costs about one ReceiveMessage per `concurrency` windows instead of one per window. The
 * messages of finished batches are deleted together (DeleteMessageBatch, up to 10 a call, within
 * `deleteDelayMs`), each only after its handler succeeded (its window stored and recorded). A FIFO
 * queue is received as before, one batch per free slot, so that a message group is never handled by
 * two batches at once.
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
  /**
   * The queue's visibility timeout (default `timeoutSeconds` + 30, what the local runtime sets): a
   * batch that waited beside the running ones long enough that a whole copy might outlast it gets
   * its visibility extended before it starts.
   */
  visibilityTimeoutSeconds?: number;
  /** Finished messages wait at most this long to be deleted together (default 50 ms). */
  deleteDelayMs?: number;
  handler: BatchHandler;
  onError?: (error: unknown) => void;
}

/** SQS's most messages per ReceiveMessage and per DeleteMessageBatch. */
const MAX_MESSAGES = 10;

/** The SQS requests a poller made (the cost report's copier SQS requests). */
export interface PollerRequests {
  receive: number;
  /** Receives that returned no message (idle polling). */
  emptyReceive: number;
  delete: number;
  changeVisibility: number;
  /** Messages received and deleted. */
  received: number;
  deleted: number;
}

interface Waiting {
  messages: SQSRecordLike[];
  /** performance.now() at the receive: the visibility timeout runs from then. */
  receivedAt: number;
}

export class QueuePoller {
  readonly #o: PollerOptions;
  readonly #fifo: boolean;
  #stopping = false;
  #loop: Promise<void> | undefined;
  /** Batches received and not started yet (standard queues only). */
  readonly #waiting: Waiting[] = [];
  readonly #running = new Set<Promise<void>>();
  /** Messages whose batch succeeded, waiting for the next DeleteMessageBatch. */
  #toDelete: SQSRecordLike[] = [];
  #deleteTimer: NodeJS.Timeout | undefined;
  readonly #deletes = new Set<Promise<void>>();
  /** Wakes the receive loop when a batch ends. */
  #wake: (() => void) | undefined;
  /** Aborts the batches in flight when a stop's grace period ends. */
  readonly #shutdown = new AbortController();
  /** Batches being handled right now. */
  busy = 0;
  /** Largest number of batches handled at once (checked against the cap in tests). */
  peakBusy = 0;
  /** Messages whose copy a stop aborted, made visible again. */
  aborted = 0;
  /** SQS requests made so far. */
  readonly requests: PollerRequests = {
    receive: 0,
    emptyReceive: 0,
    delete: 0,
    changeVisibility: 0,
    received: 0,
    deleted: 0,
  };
  /** Ends the pauses between short polls (a stop). */
  readonly #idle = new AbortController();

  constructor(options: PollerOptions) {
    this.#o = options;
    this.#fifo = options.queueUrl.endsWith(".fifo");
  }

  start(): void {
    this.#loop ??= this.#receiveLoop();
  }

  /** Requests already counted into a copy's record (takeRequests). */
  #taken = 0;

  /**
   * The SQS requests made since the last call (receives, the empty ones included, deletes and
   * visibility changes): each copy counts them into its record, so that the records of a source add
   * up to every request its poller made but those after the last record.
   */
  takeRequests(): number {
    const r = this.requests;
    const made = r.receive + r.delete + r.changeVisibility;
    const n = made - this.#taken;
    this.#taken = made;
    return n;
  }

  /** Requests not counted into any record yet. */
  get untakenRequests(): number {
    const r = this.requests;
    return r.receive + r.delete + r.changeVisibility - this.#taken;
  }

  /**
   * Stops receiving and waits for the batches in flight to finish. A long poll under way is not
   * aborted but waited for (at most `waitTimeSeconds`): an aborted receive may still take messages
   * on the server side and hide them for a visibility timeout. What it receives, and the batches
   * received but not started, are released at once (visible again), not handled.
   *
   * With `graceMs`, batches still running when it has passed are aborted (their copies abort their
   * uploads) and their messages are made visible again, for the next run to take.
   */
  async stop(graceMs?: number): Promise<void> {
    this.#stopping = true;
    this.#idle.abort();
    this.#wake?.();
    const all = this.#settled();
    if (graceMs !== undefined) {
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      });
      await Promise.race([all, graceOver]);
      clearTimeout(timer);
      this.abortInFlight();
    }
    await all;
  }

  /** The receive loop, every batch and every delete ended. */
  async #settled(): Promise<void> {
    await this.#loop;
    while (this.#running.size > 0) await Promise.all(this.#running);
    this.#flushDeletes();
    while (this.#deletes.size > 0) await Promise.all(this.#deletes);
  }

  /** Aborts the batches in flight now (a stop's grace period is over, or a second signal came). */
  abortInFlight(): void {
    this.#stopping = true;
    if (!this.#shutdown.signal.aborted)
      this.#shutdown.abort(new CopierStoppingError("the service is stopping"));
  }

  get #waitingMessages(): number {
    return this.#waiting.reduce((n, w) => n + w.messages.length, 0);
  }

  /**
   * Messages to ask for now, 0 to wait for a batch to end. A standard queue with more than one slot
   * keeps up to `concurrency` batches waiting beside the running ones and asks once a full receive
   * fits (or nothing waits); one slot, or a FIFO queue: one batch when the slot is free, as before.
   */
  #wanted(): number {
    const o = this.#o;
    const slots = Math.max(1, o.concurrency);
    const batch = Math.max(1, Math.min(MAX_MESSAGES, o.batchSize));
    if (this.#fifo) return this.busy < slots ? batch : 0;
    // One copy at a time gains nothing from a batch waiting (a receive per window either way).
    const ahead = slots > 1 ? slots * batch : 0;
    const room = slots * batch + ahead - this.busy * batch - this.#waitingMessages;
    const want = Math.min(MAX_MESSAGES, room);
    if (want <= 0) return 0;
    if (this.#waiting.length > 0 && want < Math.min(MAX_MESSAGES, slots * batch)) return 0;
    return want;
  }

  async #receiveLoop(): Promise<void> {
    const o = this.#o;
    while (!this.#stopping) {
      const want = this.#wanted();
      if (want === 0) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        this.#wake = undefined;
        continue;
      }
      let messages: SQSRecordLike[];
      try {
        this.requests.receive++;
        const res = await o.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: o.queueUrl,
            MaxNumberOfMessages: want,
            WaitTimeSeconds: o.waitTimeSeconds,
            MessageSystemAttributeNames: ["All"],
            MessageAttributeNames: ["All"],
          }),
        );
        messages = (res.Messages ?? []) as SQSRecordLike[];
      } catch (error) {
        if (this.#stopping) return;
        o.onError?.(error);
        await this.#pause(1000);
        continue;
      }
      this.requests.received += messages.length;
      if (messages.length === 0) {
        this.requests.emptyReceive++;
        if (o.waitTimeSeconds === 0) await this.#pause(o.idleMs ?? 250);
        continue;
      }
      const receivedAt = performance.now();
      if (this.#fifo) {
        this.#waiting.push({ messages, receivedAt });
      } else {
        const batch = Math.max(1, Math.min(MAX_MESSAGES, o.batchSize));
        for (let i = 0; i < messages.length; i += batch) {
          this.#waiting.push({ messages: messages.slice(i, i + batch), receivedAt });
        }
      }
      this.#dispatch();
    }
    // Received but not started: not taken, visible again for the next run.
    const left = this.#waiting.splice(0).flatMap((w) => w.messages);
    await this.#release(left).catch((error: unknown) => o.onError?.(error));
  }

  /** Starts waiting batches while slots are free. */
  #dispatch(): void {
    while (!this.#stopping && this.busy < Math.max(1, this.#o.concurrency) && this.#waiting.length > 0) {
      const next = this.#waiting.shift()!;
      this.busy++;
      this.peakBusy = Math.max(this.peakBusy, this.busy);
      const run = this.#run(next).finally(() => {
        this.#running.delete(run);
        this.busy--;
        this.#dispatch();
        this.#wake?.();
      });
      this.#running.add(run);
    }
  }

  async #run(w: Waiting): Promise<void> {
    try {
      const messages = await this.#keepVisible(w);
      if (messages.length > 0) await this.#handle(messages);
    } catch (error) {
      this.#o.onError?.(error);
    }
  }

  /**
   * A batch that waited so long that its copy could outlast the messages' visibility gets them
   * hidden again for a whole copy first; messages that cannot be (their receipt expired: visible
   * again, perhaps taken by another consumer) are left out.
   */
  async #keepVisible(w: Waiting): Promise<SQSRecordLike[]> {
    const o = this.#o;
    const visibility = o.visibilityTimeoutSeconds ?? o.timeoutSeconds + 30;
    const left = visibility - (performance.now() - w.receivedAt) / 1000;
    if (left >= o.timeoutSeconds + 10) return w.messages;
    this.requests.changeVisibility++;
    const res = await o.sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: o.queueUrl,
        Entries: w.messages.map((m, i) => ({
          Id: String(i),
          ReceiptHandle: m.ReceiptHandle,
          VisibilityTimeout: Math.min(43_200, o.timeoutSeconds + 30),
        })),
      }),
    );
    const failed = new Set((res.Failed ?? []).map((f) => f.Id));
    if (failed.size > 0) {
      o.onError?.(
        new Error(
          `${failed.size} message(s) waited too long to start and could not be kept hidden: left to their next delivery`,
        ),
      );
    }
    return w.messages.filter((_, i) => !failed.has(String(i)));
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
    this.#toDelete.push(...done);
    if (this.#toDelete.length >= MAX_MESSAGES || this.#stopping) this.#flushDeletes();
    else this.#deleteTimer ??= setTimeout(() => this.#flushDeletes(), this.#o.deleteDelayMs ?? 50);
  }

  /** Deletes the finished messages waiting, 10 a call. */
  #flushDeletes(): void {
    clearTimeout(this.#deleteTimer);
    this.#deleteTimer = undefined;
    while (this.#toDelete.length > 0) {
      const entries = this.#toDelete.splice(0, MAX_MESSAGES);
      const call = this.#delete(entries)
        .catch((error: unknown) => this.#o.onError?.(error))
        .finally(() => this.#deletes.delete(call));
      this.#deletes.add(call);
    }
  }

  async #delete(messages: SQSRecordLike[]): Promise<void> {
    this.requests.delete++;
    const res = await this.#o.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: this.#o.queueUrl,
        Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
      }),
    );
    const failed = res.Failed ?? [];
    this.requests.deleted += messages.length - failed.length;
    if (failed.length > 0) {
      // Stored and recorded: a redelivery finds the window stored and acknowledges it.
      throw new Error(
        `could not delete ${failed.length} copied message(s): ${failed[0]!.Code} ${failed[0]!.Message ?? ""}`,
      );
    }
  }

  /** Makes messages visible again now (visibility 0). */
  async #release(messages: SQSRecordLike[]): Promise<void> {
    for (let i = 0; i < messages.length; i += MAX_MESSAGES) {
      const part = messages.slice(i, i + MAX_MESSAGES);
      this.requests.changeVisibility++;
      const res = await this.#o.sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: this.#o.queueUrl,
          Entries: part.map((m, j) => ({
            Id: String(j),
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
