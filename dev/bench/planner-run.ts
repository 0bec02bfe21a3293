/**
 * One planning run in a process of its own (so its CPU time is the planner's, not the emulator's):
 * the real planner (functions/planner/plan-backup.ts) over a simulated index of many streams, against the
 * S3/SQS endpoints it is given. Prints one JSON line: CPU and wall time, S3 and SQS requests.
 *
 *   node dev/bench/planner-run.ts '<PlannerRunInput as JSON>'
 */

import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { constants, PerformanceObserver } from "node:perf_hooks";
import { parseConfig } from "../../functions/config/config.ts";
import { planBackup } from "../../functions/planner/plan-backup.ts";
import { CopyQueue } from "../../functions/queue/copy-queue.ts";
import type { Log } from "../../functions/shared/log.ts";
import { BackupStore } from "../../functions/store/backup-store.ts";
import { createS3Client, createSqsClient, type Endpoints } from "../../local/aws-clients.ts";
import { type IndexShape, SimulatedIndex } from "./simulated-index.ts";

export interface PlannerRunInput {
  endpoints: Endpoints;
  bucket: string;
  queueUrl: string;
  source: string;
  index: IndexShape;
  maxConcurrentCopies: number;
  maxBandwidthMbps: number;
  /**
   * A long-lived process (the local service, a warm Lambda container): a planning run at this time
   * first, unmeasured, with the same store (and its held manifests), then the measured run.
   */
  warmupAt?: number;
  /** The measured run's time (unix seconds); default the index's `now`. */
  at?: number;
  /**
   * Writes a CPU profile of the measured run alone (not of the start-up or the run before it) to
   * this file (.cpuprofile), taken with the inspector's profiler in this process.
   */
  profileTo?: string;
}

export interface PlannerRunOutput {
  streams: number;
  rangesPerStream: number;
  indexBuildSeconds: number;
  cpuSeconds: number;
  /** Of cpuSeconds, the simulated index answering the planner (the source's side, in this process). */
  indexCpuSeconds: number;
  userSeconds: number;
  systemSeconds: number;
  wallSeconds: number;
  /** S3 requests by kind (BackupStore's counter). */
  s3Requests: Record<string, number>;
  sqsBatchCalls: number;
  indexCalls: Record<string, number>;
  /**
   * Garbage collections during the measured run (node:perf_hooks "gc" entries): how many of each
   * kind and their pause time on the main thread, ms; and the heap at its end, MiB.
   */
  gc: { minor: number; major: number; incremental: number; other: number; pauseMs: number; heapMiB: number };
  /**
   * CPU seconds of a fixed workload (calibrate()) in this process just before and just after the
   * measured run: how fast the machine ran this code at the time, so that runs at other times (other
   * jobs on the cores) can be compared.
   */
  calibrationSeconds: [number, number];
  planned: number;
  deferred: number;
  errors: number;
  firstError: string | undefined;
}

const quiet: Log = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

export async function runPlanner(input: PlannerRunInput): Promise<PlannerRunOutput> {
  const builtAt = performance.now();
  const index = new SimulatedIndex(input.index);
  const indexBuildSeconds = (performance.now() - builtAt) / 1000;
  const rangeCount = index.streams.reduce((n, s) => n + index.rangesOf(s.name).length, 0);
  const config = parseConfig(
    JSON.stringify({
      bucket: input.bucket,
      sources: [
        {
          name: input.source,
          url: "http://index.invalid",
          retentionDays: input.index.days,
          maxConcurrentCopies: input.maxConcurrentCopies,
          maxBandwidthMbps: input.maxBandwidthMbps,
        },
      ],
    }),
    "bench-planner.json",
  );
  const store = new BackupStore(createS3Client(input.endpoints), config.bucket, config.prefix);
  const queue = new CopyQueue(createSqsClient(input.endpoints), () => input.queueUrl);
  const plan = (at: number) =>
    planBackup({
      config,
      store,
      queue,
      flussonic: () => index.asClient(),
      now: () => at,
      copyTimeoutSeconds: 900,
      logger: quiet,
    });
  if (input.warmupAt !== undefined) {
    await plan(input.warmupAt);
    store.requests.clear();
    queue.batchCalls = 0;
    index.answerSeconds = 0;
  }
  const calibrationBefore = calibrate();
  const gc = { minor: 0, major: 0, incremental: 0, other: 0, pauseMs: 0, heapMiB: 0 };
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) gc.minor++;
      else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) gc.major++;
      else if (kind === constants.NODE_PERFORMANCE_GC_INCREMENTAL) gc.incremental++;
      else gc.other++;
      gc.pauseMs += e.duration;
    }
  });
  gcObserver.observe({ entryTypes: ["gc"] });
  const profiler = input.profileTo ? await startProfiler() : undefined;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const report = await plan(input.at ?? input.index.now);
  const wallSeconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  if (profiler && input.profileTo) writeFileSync(input.profileTo, JSON.stringify(await profiler.stop()));
  // Entries of the run's last collections are delivered asynchronously: one turn to take them.
  await new Promise((r) => setImmediate(r));
  gcObserver.disconnect();
  gc.pauseMs = Math.round(gc.pauseMs);
  gc.heapMiB = Math.round(process.memoryUsage().heapUsed / 1048576);
  const calibrationAfter = calibrate();
  store.s3.destroy();
  queue.destroy();
  queue.sqs.destroy();
  const errors = report.sources.flatMap((s) => s.errors);
  return {
    streams: index.streams.length,
    rangesPerStream: rangeCount / Math.max(1, index.streams.length),
    indexBuildSeconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    indexCpuSeconds: index.answerSeconds,
    userSeconds: cpu.user / 1e6,
    systemSeconds: cpu.system / 1e6,
    wallSeconds,
    s3Requests: Object.fromEntries(store.requests),
    sqsBatchCalls: queue.batchCalls,
    indexCalls: { ...index.calls },
    gc,
    calibrationSeconds: [calibrationBefore, calibrationAfter],
    planned: report.sources.reduce((n, s) => n + s.planned.length, 0),
    deferred: report.sources.reduce((n, s) => n + s.deferred, 0),
    errors: errors.length,
    firstError: errors[0]?.message,
  };
}

/**
 * CPU seconds of a fixed piece of the planner's kind of work: manifests of 150 ranges built, written
 * as JSON, hashed (MD5 and SHA-256, as a PUT is) and parsed back, 2,000 times; about 0.3 s on a quiet
 * machine. The same instructions every time, so its CPU time moves only with the machine's speed.
 */
function calibrate(): number {
  const before = process.cpuUsage();
  let sum = 0;
  for (let i = 0; i < 2000; i++) {
    const covered = Array.from({ length: 150 }, (_, k) => ({
      from: 1_760_000_000 + k * 600 + i,
      to: 1_760_000_300 + k * 600,
    }));
    const body = JSON.stringify({ version: 1, source: "calibration", stream: `s${i}`, covered, leases: [] });
    sum += createHash("md5").update(body).digest()[0]! + createHash("sha256").update(body).digest()[0]!;
    sum += (JSON.parse(body) as { covered: unknown[] }).covered.length;
  }
  const used = process.cpuUsage(before);
  if (sum < 0) throw new Error("unreachable");
  return (used.user + used.system) / 1e6;
}

/** The inspector's CPU profiler on this process, started; `stop` returns the profile. */
async function startProfiler(): Promise<{ stop(): Promise<unknown> }> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
  return {
    async stop() {
      const { profile } = await session.post("Profiler.stop");
      session.disconnect();
      return profile;
    },
  };
}

if (import.meta.main) {
  const input = JSON.parse(process.argv[2] ?? "{}") as PlannerRunInput;
  const out = await runPlanner(input);
  process.stdout.write(`${JSON.stringify(out)}\n`);
}
