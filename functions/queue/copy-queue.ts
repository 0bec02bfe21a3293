/**
 * The SQS side: planned windows go to one queue per source with SendMessageBatch (10 a call);
 * entries that fail are retried, and what still fails is reported so that it is not leased.
 * Sends take the lean path (lean-sqs.ts) when the client allows it, else the SDK. On a FIFO queue
 * (`.fifo`) each window carries its deduplication id (window and lease) and, when the caller gives
 * one, its message group (copy-groups.ts).
 */
import { SendMessageBatchCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { CopyMessage } from "../domain/archive.ts";
import { noteRequest } from "../shared/request-scope.ts";
import { LeanUnsupportedError } from "../store/lean-s3.ts";
import { deduplicationId } from "./copy-groups.ts";
import { type BatchEntry, LeanSqs } from "./lean-sqs.ts";

export interface SendResult {
  sent: CopyMessage[];
  failed: { message: CopyMessage; reason: string }[];
}

export class CopyQueue {
  readonly sqs: SQSClient;
  readonly #queueUrl: (source: string) => string;
  /** SendMessageBatch calls made (for the planner's request count). */
  batchCalls = 0;
  #lean: LeanSqs | undefined;

  constructor(sqs: SQSClient, queueUrl: (source: string) => string, options: { lean?: boolean } = {}) {
    this.sqs = sqs;
    this.#queueUrl = queueUrl;
    this.#lean = options.lean === false ? undefined : LeanSqs.forClient(sqs);
  }

  /** Whether sends take the lean path (until it declines). */
  get lean(): boolean {
    return this.#lean !== undefined;
  }

  /** Closes the lean path's idle sockets (the SDK client is the caller's to destroy). */
  destroy(): void {
    this.#lean?.destroy();
  }

  async #sendBatch(
    queueUrl: string,
    entries: BatchEntry[],
  ): Promise<{
    Failed?: { Id?: string | undefined; Code?: string | undefined; Message?: string | undefined }[];
  }> {
    const lean = this.#lean;
    if (lean) {
      try {
        return await lean.sendMessageBatch(queueUrl, entries);
      } catch (error) {
        if (!(error instanceof LeanUnsupportedError)) throw error;
        this.#lean = undefined;
        lean.destroy();
      }
    }
    return this.sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
  }

  queueUrl(source: string): string {
    return this.#queueUrl(source);
  }

  /**
   * Sends `messages` in order. `groups` (FIFO queues only): the message group of each message, by
   * index (undefined: the SQS client's own, see functions/lambda/environment.ts). `delaySeconds`
   * (standard queues only, at most 900): no copier receives them before then.
   */
  async send(
    source: string,
    messages: readonly CopyMessage[],
    options: { attempts?: number; groups?: readonly (string | undefined)[]; delaySeconds?: number } = {},
  ): Promise<SendResult> {
    const attempts = options.attempts ?? 3;
    const queueUrl = this.#queueUrl(source);
    const fifo = queueUrl.endsWith(".fifo");
    const entry = (id: string, message: CopyMessage, index: number): BatchEntry => {
      const e: BatchEntry = { Id: id, MessageBody: JSON.stringify(message) };
      if (!fifo) {
        if (options.delaySeconds) e.DelaySeconds = Math.min(900, Math.ceil(options.delaySeconds));
        return e;
      }
      e.MessageDeduplicationId = deduplicationId(message);
      const group = options.groups?.[index];
      if (group !== undefined) e.MessageGroupId = group;
      return e;
    };
    const result: SendResult = { sent: [], failed: [] };
    for (let i = 0; i < messages.length; i += 10) {
      let pending = messages.slice(i, i + 10).map((message, n) => ({ id: String(n), message, index: i + n }));
      for (let attempt = 1; attempt <= attempts && pending.length > 0; attempt++) {
        this.batchCalls++;
        noteRequest("sqs:SendMessageBatch");
        let failedIds: Map<string, string>;
        try {
          const res = await this.#sendBatch(
            queueUrl,
            pending.map((p) => entry(p.id, p.message, p.index)),
          );
          failedIds = new Map((res.Failed ?? []).map((f) => [f.Id ?? "", `${f.Code}: ${f.Message ?? ""}`]));
        } catch (error) {
          failedIds = new Map(pending.map((p) => [p.id, (error as Error).message]));
        }
        const stillFailing = pending.filter((p) => failedIds.has(p.id));
        for (const p of pending) if (!failedIds.has(p.id)) result.sent.push(p.message);
        if (attempt === attempts) {
          for (const p of stillFailing)
            result.failed.push({ message: p.message, reason: failedIds.get(p.id) ?? "" });
        } else if (stillFailing.length > 0) {
          await new Promise((r) => setTimeout(r, 200 * attempt));
        }
        pending = stillFailing;
      }
    }
    return result;
  }
}
