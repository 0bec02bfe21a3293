/**
 * The local runtime: the very handlers that run in Lambda, driven by an in-process scheduler and
 * one SQS poller per source queue, against the embedded emulator, LocalStack or AWS endpoints.
 */
import type { S3Client } from "@aws-sdk/client-s3";
import type { SQSClient } from "@aws-sdk/client-sqs";
import type { BackupConfig, SourceConfig, SourceCredentials } from "../functions/config/config.ts";
import { type CopierEvent, createCopierHandler } from "../functions/copier/copy-messages.ts";
import { type PlanReport, planBackup } from "../functions/planner/plan-backup.ts";
import { CopyQueue } from "../functions/queue/copy-queue.ts";
import {
  ensureBucket,
  ensureQueues,
  queueDepth,
  type SourceQueues,
} from "../functions/queue/source-queues.ts";
import type { Log } from "../functions/shared/log.ts";
import type { ArchiveSource } from "../functions/source/flussonic.ts";
import { openSource } from "../functions/source/open-source.ts";
import { type PressureChange, SourcePressure } from "../functions/source/source-pressure.ts";
import { SourceSwitches, type SwitchState } from "../functions/source/source-switch.ts";
import { type Throttle, TokenBucket } from "../functions/source/throttle.ts";
import { BackupStore } from "../functions/store/backup-store.ts";
import { defaultSpoolDir } from "../functions/store/spool-upload.ts";
import { createS3Client, createSqsClient, type Endpoints } from "./aws-clients.ts";
import { QueuePoller } from "./poller.ts";

export interface RuntimeOptions {
  config: BackupConfig;
  credentials: Map<string, SourceCredentials>;
  endpoints: Endpoints;
  logger: Log;
  /** Longest one copy may take, like the Lambda timeout (default 900 s). */
  copyTimeoutSeconds?: number;
  /** Attempts before a failing window is dead-lettered (default 5). */
  maxReceiveCount?: number;
  /** First retry delay in seconds (default 10, doubling). */
  retryBaseSeconds?: number;
  /** First back-off pause of a source after an overload without Retry-After (default 1000 ms, doubling). */
  sourcePauseMs?: number;
  /** Long-poll wait (default 2 s; the Lambda mapping waits 20 s). */
  waitTimeSeconds?: number;
  /** Multipart part size (default 8 MiB). */
  partSize?: number;
  /**
   * Always `partSize` parts from memory buffers, whatever the window's expected size (tests of
   * multipart uploads): no spool.
   */
  fixedParts?: boolean;
  /** Directory of the copier's spool (default: under the OS temp directory); config.spoolMiB 0: none. */
  spoolDir?: string;
  /** The spool's thresholds instead of config.spoolMiB's (tests: parts from the spool for small windows). */
  spool?: { singleMaxBytes: number; partBytes?: number };
  /** Unix seconds (tests move time). */
  now?: () => number;
  onEvent?: (event: CopierEvent) => void;
  onBytes?: (source: string, bytes: number) => void;
  onPressure?: (source: string, change: PressureChange) => void;
  /** Age after which a window's multipart upload counts as left by a killed copier. */
  staleUploadSeconds?: number;
  /** Delay of a window deferred while its source is paused (default 900 s). */
  deferSeconds?: number;
  /** The planner lists a source's manifests from this many streams (tests; default 13). */
  manifestListingMinStreams?: number;
  /** Plan as the Lambda planner does: hold windows in the queue while a span lasts (tests). */
  holdForSpans?: boolean;
}

export class LocalRuntime {
  readonly config: BackupConfig;
  readonly s3: S3Client;
  readonly sqs: SQSClient;
  readonly store: BackupStore;
  readonly queues: Map<string, SourceQueues>;
  readonly pollers = new Map<string, QueuePoller>();
  readonly clients: Map<string, ArchiveSource>;
  readonly throttles: Map<string, Throttle>;
  /** Back-off gate per source (shared by the source's copiers in this process). */
  readonly pressure: Map<string, SourcePressure>;
  /** Pause switches and bandwidth schedules. */
  readonly switches: SourceSwitches;
  /** Sources not copying in the current `run --once` (paused or outside their allowed hours). */
  readonly idleSources = new Map<string, string>();
  /** Sources not started because their pause switch could not be read (an S3 failure). */
  readonly unreadableSwitches = new Set<string>();
  readonly #o: RuntimeOptions;
  readonly #queue: CopyQueue;
  readonly #handler: ReturnType<typeof createCopierHandler>;
  readonly now: () => number;

  private constructor(o: RuntimeOptions, s3: S3Client, sqs: SQSClient, queues: Map<string, SourceQueues>) {
    this.#o = o;
    this.config = o.config;
    this.s3 = s3;
    this.sqs = sqs;
    this.queues = queues;
    this.now = o.now ?? (() => Math.floor(Date.now() / 1000));
    this.store = new BackupStore(s3, o.config.bucket, o.config.prefix);
    this.switches = new SourceSwitches(this.store, this.now);
    this.clients = new Map(
      o.config.sources.map((s) => [s.name, openSource(s, o.credentials.get(s.name) ?? { type: "none" })]),
    );
    this.throttles = new Map(
      o.config.sources.map((s) => [s.name, new TokenBucket((s.maxBandwidthMbps * 1_000_000) / 8)]),
    );
    this.pressure = new Map(
      o.config.sources.map((s) => [
        s.name,
        new SourcePressure({
          maxConcurrent: s.maxConcurrentCopies,
          ...(o.sourcePauseMs !== undefined ? { basePauseMs: o.sourcePauseMs } : {}),
          onChange: (change) => {
            o.logger.warn("source back-off", { source: s.name, limit: change.limit, reason: change.reason });
            o.onPressure?.(s.name, change);
          },
        }),
      ]),
    );
    const q = (source: string) => {
      const found = this.queues.get(source);
      if (!found) throw new Error(`no queue for source "${source}"`);
      return found;
    };
    this.#queue = new CopyQueue(sqs, (source) => q(source).url);
    this.#handler = createCopierHandler({
      store: this.store,
      sqs,
      flussonic: (source) => this.#client(source),
      throttle: (source) => this.throttles.get(source)!,
      pressure: (source) => this.pressure.get(source)!,
      switches: (source) => this.switches.state(this.#source(source)),
      applyBandwidth: (source, mbps) => this.throttles.get(source)?.setRate?.((mbps * 1_000_000) / 8),
      ...(o.deferSeconds !== undefined ? { deferSeconds: o.deferSeconds } : {}),
      ...(o.staleUploadSeconds !== undefined ? { staleUploadSeconds: o.staleUploadSeconds } : {}),
      queueUrl: (source) => q(source).url,
      deadLetterUrl: (source) => q(source).deadLetterUrl,
      maxReceiveCount: o.maxReceiveCount ?? 5,
      now: this.now,
      partSize: o.partSize ?? 8 * 1024 * 1024,
      ...(o.fixedParts ? { fixedParts: true } : {}),
      ...(o.fixedParts || (o.config.spoolMiB === 0 && !o.spool)
        ? {}
        : {
            spool: {
              dir: o.spoolDir ?? defaultSpoolDir(),
              ...(o.spool ?? { singleMaxBytes: o.config.spoolMiB * 1024 * 1024 }),
            },
          }),
      copyTimeoutSeconds: this.copyTimeoutSeconds,
      retryBaseSeconds: o.retryBaseSeconds ?? 10,
      logger: o.logger,
      ...(o.onEvent ? { onEvent: o.onEvent } : {}),
      ...(o.onBytes ? { onBytes: o.onBytes } : {}),
      sqsRequests: (source) => this.pollers.get(source)?.takeRequests(),
    });
  }

  get copyTimeoutSeconds(): number {
    return this.#o.copyTimeoutSeconds ?? 900;
  }

  /** Creates the bucket and queues when missing and returns a runtime ready to plan and copy. */
  static async create(o: RuntimeOptions): Promise<LocalRuntime> {
    const s3 = createS3Client(o.endpoints);
    const sqs = createSqsClient(o.endpoints);
    await ensureBucket(s3, o.config.bucket);
    const queues = new Map<string, SourceQueues>();
    for (const source of o.config.sources) {
      queues.set(
        source.name,
        await ensureQueues(sqs, source.name, {
          // Local copies are aborted at their timeout, so a little margin is enough here; in AWS
          // the stack uses 6x the function timeout as the SQS rules ask.
          visibilityTimeoutSeconds: (o.copyTimeoutSeconds ?? 900) + 30,
          maxReceiveCount: o.maxReceiveCount ?? 5,
        }),
      );
    }
    return new LocalRuntime(o, s3, sqs, queues);
  }

  #source(name: string): SourceConfig {
    const s = this.config.sources.find((x) => x.name === name);
    if (!s) throw new Error(`unknown source "${name}"`);
    return s;
  }

  #client(source: string): ArchiveSource {
    const c = this.clients.get(source);
    if (!c) throw new Error(`unknown source "${source}"`);
    return c;
  }

  /** One planner run (the scheduled function's work). */
  plan(): Promise<PlanReport> {
    return planBackup({
      config: this.config,
      store: this.store,
      queue: this.#queue,
      flussonic: (source) => this.#client(source),
      now: this.now,
      copyTimeoutSeconds: this.copyTimeoutSeconds,
      logger: this.#o.logger,
      ...(this.#o.manifestListingMinStreams !== undefined
        ? { manifestListingMinStreams: this.#o.manifestListingMinStreams }
        : {}),
      // One throttle of the whole cap per source: no window waits for another's share of it.
      copiesShareOneThrottle: !this.#o.holdForSpans,
    });
  }

  /**
   * Starts one poller per source that may copy now (not paused by config or by the operator, not
   * outside its allowed hours), with the source's copy cap as concurrency.
   */
  async startCopiers(): Promise<void> {
    this.switches.forget();
    for (const source of this.config.sources) {
      let state: SwitchState;
      try {
        state = await this.switches.state(source);
        this.unreadableSwitches.delete(source.name);
      } catch (error) {
        // S3 failed past its retries: whether the operator paused the source is unknown, so it is
        // not copied now (the safe side); the next start reads the switch again.
        const reason = `its pause switch could not be read (${error instanceof Error ? error.message : String(error)}); it is read again at the next start`;
        this.#o.logger.warn("pause switch unreadable", { source: source.name, error: String(error) });
        this.unreadableSwitches.add(source.name);
        state = { copying: false, reason, maxBandwidthMbps: 0 };
      }
      if (!state.copying) {
        this.idleSources.set(source.name, state.reason ?? "paused");
        continue;
      }
      this.idleSources.delete(source.name);
      if (this.pollers.has(source.name)) continue;
      const q = this.queues.get(source.name)!;
      const poller = new QueuePoller({
        sqs: this.sqs,
        queueUrl: q.url,
        queueArn: q.arn,
        region: this.#o.endpoints.region,
        concurrency: source.maxConcurrentCopies,
        batchSize: 1,
        waitTimeSeconds: this.#o.waitTimeSeconds ?? 2,
        timeoutSeconds: this.copyTimeoutSeconds,
        handler: this.#handler,
        onError: (error) =>
          this.#o.logger.warn("queue poller error", { source: source.name, error: String(error) }),
      });
      poller.start();
      this.pollers.set(source.name, poller);
    }
  }

  /**
   * Stops taking windows and waits for the copies running. With `graceMs`, copies still running
   * after it are aborted (no upload left open) and their windows made visible again in the queue.
   */
  async stopCopiers(graceMs?: number): Promise<void> {
    const stopping = [...this.pollers];
    await Promise.all(stopping.map(([, p]) => p.stop(graceMs)));
    // Only these: a start under way meanwhile may have added others, stopped by the next call.
    for (const [source, p] of stopping) if (this.pollers.get(source) === p) this.pollers.delete(source);
  }

  /** Aborts the copies running now (during a stop: the operator asked again). */
  abortCopies(): void {
    for (const p of this.pollers.values()) p.abortInFlight();
  }

  /** Copies of a source running now in this process. */
  copiesInFlight(source: string): number {
    return this.pollers.get(source)?.busy ?? 0;
  }

  /** Messages left (waiting, in flight or delayed) in the copy queues of sources that copy now. */
  async pendingMessages(): Promise<number> {
    let n = 0;
    for (const source of this.config.sources) {
      if (source.paused || this.idleSources.has(source.name)) continue;
      const d = await queueDepth(this.sqs, this.queues.get(source.name)!.url);
      n += d.visible + d.inFlight + d.delayed;
    }
    return n;
  }

  /** Waits until the copy queues are empty and no copy runs. */
  async drain(signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const busy = [...this.pollers.values()].some((p) => p.busy > 0);
      if (!busy && (await this.pendingMessages()) === 0) {
        // Confirm: a message can be between receive and handler for a moment.
        await delay(200);
        if ([...this.pollers.values()].every((p) => p.busy === 0) && (await this.pendingMessages()) === 0)
          return;
      }
      await delay(250);
    }
  }

  async close(): Promise<void> {
    await this.stopCopiers();
    await Promise.all([...this.clients.values()].map((c) => c.close()));
    this.#queue.destroy();
    this.s3.destroy();
    this.sqs.destroy();
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Milliseconds between planner runs for an EventBridge rate expression. */
export function rateMs(schedule: string): number {
  const m = /^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$/.exec(schedule);
  if (!m) throw new Error(`unsupported schedule "${schedule}"`);
  const unit = m[2]!.startsWith("minute") ? 60_000 : m[2]!.startsWith("hour") ? 3_600_000 : 86_400_000;
  return Number(m[1]) * unit;
}
