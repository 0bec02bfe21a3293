/**
 * The copier handler: SQS batch in, one archive window copied per message, partial batch failures
 * out. The same handler runs in Lambda (functions/lambda/copier.ts) and in the local runtime.
 *
 * Outcome of each message:
 * - copied or already stored: acknowledged;
 * - the window is gone at the source (404, retention): acknowledged and logged, never retried;
 * - retryable failure: made visible again after a back-off (Retry-After when the source said so)
 *   and reported as a batch item failure;
 * - not retryable (configuration, bad message), or retryable but out of attempts: sent to the
 *   dead-letter queue with a readable reason, then acknowledged.
 */
import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import { ChangeMessageVisibilityCommand, SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { z } from "zod";
import { BackupError, RetryableError, WindowGoneError } from "../domain/errors.ts";
import { streamNameProblem } from "../domain/names.ts";
import type { Log } from "../shared/log.ts";
import type { ArchiveSource } from "../source/flussonic.ts";
import { type CopyResult, isOverload, type SourcePressure } from "../source/source-pressure.ts";
import type { SwitchState } from "../source/source-switch.ts";
import type { Throttle } from "../source/throttle.ts";
import { type BackupStore, StoreError } from "../store/backup-store.ts";
import { type CopyMessage, type CopyOutcome, type CopyWindowDeps, copyWindow } from "./copy-window.ts";

export const copyMessageShape = z.strictObject({
  v: z.literal(1),
  source: z.string().min(1),
  stream: z.string().refine((s) => !streamNameProblem(s), "invalid stream name"),
  from: z.int().nonnegative(),
  duration: z.int().positive(),
  format: z.enum(["mp4", "ts"]),
  leaseUntil: z.number(),
  copies: z.int().positive().optional(),
  copiesUntil: z.number().optional(),
});

/** What happened to one message, for progress, summaries and metrics. */
export type CopierEvent =
  | { type: "copied" | "already-stored"; message: CopyMessage; bytes: number; seconds: number }
  | { type: "stale" | "gone" | "deferred"; message: CopyMessage; reason: string }
  | { type: "retry"; message: CopyMessage; reason: string; delaySeconds: number; attempt: number }
  | {
      type: "dead-lettered";
      message: CopyMessage | undefined;
      /** The message's source, or the queue's for an unreadable message. */
      source: string;
      body: string;
      reason: string;
    };

export interface CopierDeps {
  store: BackupStore;
  sqs: SQSClient;
  flussonic: (source: string) => ArchiveSource;
  /** The throttle of a copy of `message` (its share of the source's cap: see cap-share-throttle.ts). */
  throttle: (source: string, message: CopyMessage) => Throttle;
  /** Pause switches and bandwidth schedule (optional: without them a source always copies). */
  switches?: (source: string) => Promise<SwitchState>;
  /** Applies the cap in force (Mbit/s for the whole source) to the source's throttle. */
  applyBandwidth?: (source: string, maxBandwidthMbps: number) => void;
  /** Uploads of a window older than this are orphans of a killed copier (default: timeout + 60 s). */
  staleUploadSeconds?: number;
  /**
   * Look for orphaned uploads on redeliveries only (a LIST request per window saved), where the
   * bucket's lifecycle rule aborts the others (AWS): see CopyWindowDeps.redeliveryOnlyAttempt.
   */
  orphansOnRedeliveryOnly?: boolean;
  /** The Lambda function's memory (MB): copies record their GB-seconds. */
  lambdaMemoryMb?: number;
  /** Seconds a deferred window waits before it is looked at again (default 900, the SQS maximum). */
  deferSeconds?: number;
  /** Back-off gate per source (optional: without it only per-message retry delays apply). */
  pressure?: (source: string) => SourcePressure;
  queueUrl: (source: string) => string;
  deadLetterUrl: (source: string) => string;
  /** At this receive the copier dead-letters a still-failing message itself (with its reason). */
  maxReceiveCount: number;
  /** Unix seconds. */
  now: () => number;
  partSize: number;
  /** Always `partSize` parts (see CopyWindowDeps.fixedParts). */
  fixedParts?: boolean;
  /** Windows spooled to local disk (see CopyWindowDeps.spool); undefined: in memory. */
  spool?: CopyWindowDeps["spool"];
  copyTimeoutSeconds: number;
  /** First retry delay; doubles with each attempt (default 10 s). */
  retryBaseSeconds?: number;
  logger: Log;
  onEvent?: (event: CopierEvent) => void;
  onBytes?: (source: string, bytes: number) => void;
  /**
   * The SQS requests receiving and deleting a source's messages to count into the record a copy
   * writes: in the local runtime those its poller made since the previous record (so the records
   * add up to what it made); in Lambda, where the event source mapping makes them, an estimate.
   */
  sqsRequests?: (source: string) => number | undefined;
}

/**
 * The reason a runtime aborts a copy with when it stops (`run` on SIGTERM after its grace period):
 * the copy is interrupted, not failed: no retry delay, no attempt towards the dead-letter queue, no
 * back-off of the source. The runtime makes the message visible again itself.
 */
export class CopierStoppingError extends Error {
  readonly code = "FB_COPIER_STOPPING";
  override name = "CopierStoppingError";
}

/** Seconds before the first retry of a window that failed on S3 (not on its source). */
export const STORE_FIRST_RETRY_SECONDS = 2;

/** Seconds before a failed window is tried again: the server's Retry-After, else exponential. */
export function retryDelaySeconds(
  attempt: number,
  retryAfterSeconds: number | undefined,
  baseSeconds = 10,
): number {
  if (retryAfterSeconds !== undefined) return Math.min(43_200, Math.max(1, retryAfterSeconds));
  const base = Math.min(900, baseSeconds * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

export function createCopierHandler(deps: CopierDeps) {
  const log = deps.logger;
  const emit = (e: CopierEvent) => deps.onEvent?.(e);

  const deadLetter = async (
    record: SQSRecord,
    message: CopyMessage | undefined,
    source: string,
    reason: string,
  ) => {
    const deadLetterUrl = deps.deadLetterUrl(source);
    // A FIFO dead-letter queue (a central or serial source): the window keeps its message group,
    // so that `redrive` puts it back into its server's group (functions/queue/copy-groups.ts).
    const group = deadLetterUrl.endsWith(".fifo") ? record.attributes.MessageGroupId : undefined;
    await deps.sqs.send(
      new SendMessageCommand({
        QueueUrl: deadLetterUrl,
        ...(group ? { MessageGroupId: group } : {}),
        MessageBody: record.body,
        MessageAttributes: {
          reason: { DataType: "String", StringValue: reason.slice(0, 1000) },
          failedAt: { DataType: "Number", StringValue: String(deps.now()) },
          receiveCount: { DataType: "Number", StringValue: record.attributes.ApproximateReceiveCount ?? "1" },
        },
      }),
    );
    log.error("window dead-lettered", { source, stream: message?.stream, from: message?.from, reason });
    emit({ type: "dead-lettered", message, source, body: record.body, reason });
  };

  const recordHandler = async (record: SQSRecord, signal?: AbortSignal): Promise<void> => {
    const source = sourceOf(record);
    const parsed = copyMessageShape.safeParse(safeJson(record.body));
    if (!parsed.success) {
      await deadLetter(
        record,
        undefined,
        source,
        `not a copy message: ${parsed.error.issues[0]?.message ?? "invalid"}`,
      );
      return;
    }
    const m: CopyMessage = parsed.data;
    const started = performance.now();
    const switchState = await deps.switches?.(m.source);
    if (switchState && !switchState.copying) {
      // Paused, or outside the allowed hours: put the window back with a delay as a new message
      // (so waiting does not count towards the receive limit), and acknowledge this delivery.
      // FIFO queues (a cap of 1 in AWS) take no per-message delay and deduplicate equal bodies:
      // there the window is dropped and the planner plans it again once its lease has ended.
      const reason = switchState.reason ?? "paused";
      const queueUrl = deps.queueUrl(m.source);
      if (!queueUrl.endsWith(".fifo")) {
        await deps.sqs.send(
          new SendMessageCommand({
            QueueUrl: queueUrl,
            MessageBody: record.body,
            DelaySeconds: deps.deferSeconds ?? 900,
          }),
        );
      }
      log.info("window deferred", { source: m.source, stream: m.stream, from: m.from, reason });
      emit({ type: "deferred", message: m, reason });
      return;
    }
    if (switchState) deps.applyBandwidth?.(m.source, switchState.maxBandwidthMbps);
    let outcome: CopyOutcome;
    const gate = deps.pressure?.(m.source);
    let result: CopyResult = "other";
    let retryAfter: number | undefined;
    try {
      await gate?.acquire(signal);
      try {
        outcome = await copyWindow(
          {
            store: deps.store,
            flussonic: deps.flussonic(m.source),
            throttle: deps.throttle(m.source, m),
            now: deps.now,
            partSize: deps.partSize,
            ...(deps.fixedParts ? { fixedParts: true } : {}),
            ...(deps.spool ? { spool: deps.spool } : {}),
            copyTimeoutSeconds: deps.copyTimeoutSeconds,
            ...(deps.staleUploadSeconds !== undefined ? { staleUploadSeconds: deps.staleUploadSeconds } : {}),
            ...(deps.lambdaMemoryMb ? { lambdaMemoryMb: deps.lambdaMemoryMb } : {}),
            ...(deps.orphansOnRedeliveryOnly
              ? { redeliveryOnlyAttempt: Number(record.attributes.ApproximateReceiveCount ?? "1") }
              : {}),
            onBytes: (n) => deps.onBytes?.(m.source, n),
            ...(deps.sqsRequests ? { sqsRequests: () => deps.sqsRequests?.(m.source) } : {}),
            onResponse: (ms) => gate?.responded(ms),
          },
          m,
          signal,
        );
        result = "ok";
      } catch (error) {
        if (isOverload(error) && !(signal?.reason instanceof CopierStoppingError)) {
          result = "overload";
          retryAfter = error instanceof RetryableError ? error.retryAfterSeconds : undefined;
        }
        throw error;
      } finally {
        gate?.release(result, retryAfter);
      }
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      if (error instanceof WindowGoneError) {
        log.warn("window gone at the source (retention deleted it): dropped", {
          source: m.source,
          stream: m.stream,
          from: m.from,
          reason,
        });
        emit({ type: "gone", message: m, reason });
        return;
      }
      if (signal?.aborted && signal.reason instanceof CopierStoppingError) {
        log.info("copy interrupted by a stop: the window goes back to the queue", {
          source: m.source,
          stream: m.stream,
          from: m.from,
        });
        throw error;
      }
      const attempt = Number(record.attributes.ApproximateReceiveCount ?? "1");
      const retryable = !(error instanceof BackupError) || error.retryable;
      if (!retryable || attempt >= deps.maxReceiveCount) {
        await deadLetter(record, m, m.source, retryable ? `${reason} (after ${attempt} attempts)` : reason);
        return;
      }
      // S3 failing a request after the SDK's own retries is mostly a passing blip (a SlowDown burst,
      // a reset): the first retry of the window comes soon; later ones back off as for the source.
      const delaySeconds =
        error instanceof StoreError && attempt === 1
          ? Math.min(STORE_FIRST_RETRY_SECONDS, deps.retryBaseSeconds ?? 10)
          : retryDelaySeconds(
              attempt,
              error instanceof RetryableError ? error.retryAfterSeconds : undefined,
              deps.retryBaseSeconds,
            );
      await deps.sqs
        .send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: deps.queueUrl(m.source),
            ReceiptHandle: record.receiptHandle,
            VisibilityTimeout: delaySeconds,
          }),
        )
        .catch((e: unknown) => log.warn("could not set retry delay", { error: (e as Error).message }));
      log.warn("copy failed, will retry", {
        source: m.source,
        stream: m.stream,
        from: m.from,
        attempt,
        delaySeconds,
        reason,
      });
      emit({ type: "retry", message: m, reason, delaySeconds, attempt });
      throw error;
    }
    const seconds = (performance.now() - started) / 1000;
    if (outcome.status === "stale") {
      const reason = "lease ended before this copy could finish; the planner re-plans it";
      // A warning: every window stale means nothing is copied (leaseSeconds too short for the copy
      // timeout, or windows waiting in the queue longer than the lease allows).
      log.warn("stale window left to a re-plan: its lease ends before a copy could finish", {
        source: m.source,
        stream: m.stream,
        from: m.from,
        leaseUntil: m.leaseUntil,
      });
      emit({ type: "stale", message: m, reason });
      return;
    }
    log.info(outcome.status === "copied" ? "window copied" : "window already stored", {
      source: m.source,
      stream: m.stream,
      from: m.from,
      duration: m.duration,
      key: outcome.record.key,
      bytes: outcome.record.size,
      seconds: Math.round(seconds * 1000) / 1000,
    });
    emit({ type: outcome.status, message: m, bytes: outcome.record.size, seconds });
  };

  return async (event: SQSEvent, options: { signal?: AbortSignal } = {}): Promise<SQSBatchResponse> => {
    const processor = new BatchProcessor(EventType.SQS);
    return processPartialResponse(event, (r: SQSRecord) => recordHandler(r, options.signal), processor, {
      throwOnFullBatchFailure: false,
    });
  };
}

/**
 * The source of a record: from the body when readable, else from the queue name
 * (`flussonic-backup-<source>`, with `.fifo` for a source capped at one copy in AWS).
 */
function sourceOf(record: SQSRecord): string {
  const body = safeJson(record.body) as { source?: unknown } | undefined;
  if (typeof body?.source === "string") return body.source;
  return (
    record.eventSourceARN
      .split(":")
      .at(-1)
      ?.replace(/^flussonic-backup-/, "")
      .replace(/\.fifo$/, "") ?? "unknown"
  );
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
