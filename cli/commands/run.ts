/**
 * `flussonic-backup run`: the local runtime, once or as a service on the config's schedule.
 *
 * Where the backup goes: the embedded emulator (`--embedded [dir]`), or the S3 endpoint of the AWS
 * variables (AWS_ENDPOINT_URL_S3, or AWS) with the copy queues either in SQS (AWS_ENDPOINT_URL_SQS,
 * or AWS) or, for S3-compatible stores without a queue service, embedded and kept in a state
 * directory (`--queues embedded --state-dir dir`).
 */
import {
  type BackupConfig,
  checkLeaseCoversCopy,
  loadConfigFile,
  resolveAllCredentials,
  type SourceCredentials,
} from "../../functions/config/config.ts";
import { queueDepth } from "../../functions/queue/source-queues.ts";
import { type Endpoints, endpointsFromEnv } from "../../local/aws-clients.ts";
import type { EmbeddedEmulator } from "../../local/embedded.ts";
import { lineLog } from "../../local/line-log.ts";
import type { BackupMetrics, serveMetrics } from "../../local/metrics.ts";
import { formatSummary, OnceTally, runOnce } from "../../local/once.ts";
import { LocalRuntime, rateMs } from "../../local/runtime.ts";
import { checkS3Features, S3FeatureError } from "../../local/s3-features.ts";
import type { StartupSignals } from "../../local/service.ts";
import { boundHeapGrowth, boundYoungGeneration } from "../../local/young-generation.ts";
import { Progress } from "../../ops/progress.ts";
import { errorContext, explainSourceError, probeBucket } from "./error-messages.ts";
import { checkQueueChoice, type QueueChoice, withEmbeddedQueues } from "./queue-options.ts";
import { UsageError } from "./usage-error.ts";

export interface RunOptions extends QueueChoice {
  configFile: string;
  once: boolean;
  embedded: string | undefined;
  verbose: boolean;
  copyTimeoutSeconds: number;
  /** Service: seconds running copies get to finish after SIGTERM/SIGINT (default 30). */
  graceSeconds?: number | undefined;
  /** Service: serve /metrics and /healthz on this port (0: any free port). */
  metricsPort?: number | undefined;
  metricsHost?: string | undefined;
  /** Do not ask the S3 endpoint for SHA-256 part checksums. */
  s3Checksums?: boolean | undefined;
  /** Write manifests without If-Match / If-None-Match. */
  conditionalWrites?: boolean | undefined;
}

export async function runCommand(o: RunOptions): Promise<number> {
  errorContext.configFile = o.configFile;
  const config = loadConfigFile(o.configFile);
  errorContext.config = config;
  checkLeaseCoversCopy(config, o.configFile, o.copyTimeoutSeconds);
  const credentials = resolveAllCredentials(config, o.configFile, process.env);
  const queues = checkQueueChoice(o, { embedded: o.embedded !== undefined });
  // The service catches SIGTERM/SIGINT from here on: one that comes while it starts (the emulator,
  // the runtime) stops it once started, exit 0, instead of Node's default end by the signal.
  const startupSignals = o.once
    ? undefined
    : new (await import("../../local/service.ts")).StartupSignals(process.stdout);
  try {
    return await runCommandWith(o, config, credentials, queues, startupSignals);
  } finally {
    startupSignals?.release();
  }
}

async function runCommandWith(
  o: RunOptions,
  config: BackupConfig,
  credentials: Map<string, SourceCredentials>,
  queues: ReturnType<typeof checkQueueChoice>,
  startupSignals: StartupSignals | undefined,
): Promise<number> {
  let embedded: EmbeddedEmulator | undefined;
  let endpoints: Endpoints = endpointsFromEnv(process.env);
  if (o.embedded !== undefined) {
    const { startEmbedded } = await import("../../local/embedded.ts");
    embedded = await startEmbedded(o.embedded);
    endpoints = embedded.endpoints;
  } else if (queues === "embedded") {
    // The backup goes to the S3 endpoint of the AWS variables; only the queues are local.
    ({ endpoints, emulator: embedded } = await withEmbeddedQueues(endpoints, o.stateDir));
  }
  if (o.s3Checksums === false || o.conditionalWrites === false) {
    endpoints = {
      ...endpoints,
      s3Without: { checksums: o.s3Checksums === false, conditionalWrites: o.conditionalWrites === false },
    };
  }
  errorContext.endpoints = endpoints;
  errorContext.embedded = o.embedded;
  try {
    return await runWith({
      config,
      credentials,
      endpoints,
      once: o.once,
      verbose: o.verbose,
      copyTimeoutSeconds: o.copyTimeoutSeconds,
      graceSeconds: o.graceSeconds ?? 30,
      metricsPort: o.metricsPort,
      metricsHost: o.metricsHost ?? "127.0.0.1",
      // The features of an S3 endpoint other than AWS are asked once at the start.
      checkS3Features: o.embedded === undefined && endpoints.s3Endpoint !== undefined,
      startupSignals,
    });
  } catch (error) {
    if (error instanceof S3FeatureError) {
      process.stderr.write(`${error.message}\n`);
      return 2;
    }
    throw error;
  } finally {
    await embedded?.stop();
  }
}

export interface RunWithOptions {
  config: BackupConfig;
  credentials: Map<string, SourceCredentials>;
  endpoints: Endpoints;
  once: boolean;
  verbose: boolean;
  copyTimeoutSeconds: number;
  out?: NodeJS.WriteStream;
  /** Service: seconds running copies get to finish after a stop signal (default 30). */
  graceSeconds?: number | undefined;
  metricsPort?: number | undefined;
  metricsHost?: string | undefined;
  /** Probe the S3 endpoint for checksums and conditional writes before starting. */
  checkS3Features?: boolean | undefined;
  /** Service: SIGTERM/SIGINT caught since the start of `run`, handed to the service loop. */
  startupSignals?: StartupSignals | undefined;
}

/** Runs the pipeline with a resolved config; returns the exit status. */
export async function runWith(o: RunWithOptions): Promise<number> {
  // A fleet's copies would grow V8's new space to its maximum and keep it (young-generation.ts).
  boundYoungGeneration();
  // And its old generation near what is live (young-generation.ts: most of a fleet run's peak).
  boundHeapGrowth();
  const out = o.out ?? process.stdout;
  // `--once` ends with a summary that lists every planning error, explained: not twice.
  const logger = lineLog(
    o.verbose ? "info" : "warn",
    undefined,
    o.once ? new Set(["planning failed"]) : undefined,
  );
  const tally = new OnceTally();
  const progress = new Progress(o.config);
  const everyMs = rateMs(o.config.schedule);
  let rt: LocalRuntime | undefined;
  // What only some runs need is loaded by those runs (prom-client, the service loop): `run --once`
  // keeps its memory for the copy.
  const metricsModule = o.metricsPort !== undefined ? await import("../../local/metrics.ts") : undefined;
  const metrics: BackupMetrics | undefined =
    metricsModule !== undefined
      ? new metricsModule.BackupMetrics({
          config: o.config,
          scheduleMs: everyMs,
          queues: {
            depth: async (source) => {
              const q = rt!.queues.get(source)!;
              const [copy, dead] = await Promise.all([
                queueDepth(rt!.sqs, q.url),
                queueDepth(rt!.sqs, q.deadLetterUrl),
              ]);
              return { copy, deadLetter: dead.visible + dead.inFlight + dead.delayed };
            },
            copiesInFlight: (source) => rt?.copiesInFlight(source) ?? 0,
          },
        })
      : undefined;
  rt = await LocalRuntime.create({
    config: o.config,
    credentials: o.credentials,
    endpoints: o.endpoints,
    logger,
    copyTimeoutSeconds: o.copyTimeoutSeconds,
    // Once: short polls, so that the end of the run does not wait for a long poll to run out.
    ...(o.once ? { waitTimeSeconds: 0 } : {}),
    onEvent: (e) => {
      // Only `--once` sums its run up; the service keeps no tally (it would grow for months).
      if (o.once) tally.add(e);
      progress.event(e);
      metrics?.event(e);
    },
    onBytes: (source, n) => {
      progress.bytes(source, n);
      metrics?.bytes(source, n);
    },
    onPressure: (source, change) => metrics?.pressure(source, change),
  }).catch(async (error: unknown) => {
    // For the message: a bucket that is missing (so could not be created) or there but refused.
    await probeBucket(error, o.endpoints, o.config.bucket, "create or open the bucket and the copy queues");
    throw error;
  });
  let server: Awaited<ReturnType<typeof serveMetrics>> | undefined;
  try {
    if (o.checkS3Features) {
      const notes = await checkS3Features({
        s3: rt.s3,
        bucket: o.config.bucket,
        prefix: o.config.prefix,
        endpoint: o.endpoints.s3Endpoint ?? "AWS",
        without: o.endpoints.s3Without ?? {},
      });
      for (const n of notes) out.write(`note: ${n}\n`);
    }
    if (metrics && metricsModule && o.metricsPort !== undefined) {
      const host = o.metricsHost ?? "127.0.0.1";
      server = await metricsModule.serveMetrics(metrics, o.metricsPort, host).catch((error: unknown) => {
        throw new UsageError(
          `--metrics-port ${o.metricsPort}: cannot listen on ${host}:${o.metricsPort} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); choose another port`,
        );
      });
      out.write(`Metrics on ${server.url}/metrics, health on ${server.url}/healthz\n`);
    }
    progress.start();
    if (o.once) {
      const summary = await runOnce(rt, tally, {
        onPlan: (r) => {
          progress.planned(r);
          metrics?.planned(r);
        },
      });
      progress.stop();
      for (const e of summary.planErrors) {
        const source = o.config.sources.find((s) => s.name === e.source);
        if (source) e.message = explainSourceError(e.message, source, { ...errorContext, config: o.config });
      }
      out.write(`${formatSummary(summary, rt.now())}\n`);
      return summary.ok ? 0 : 1;
    }
    const { runService } = await import("../../local/service.ts");
    return await runService(rt, {
      everyMs,
      graceSeconds: o.graceSeconds ?? 30,
      out,
      onPlan: (r) => progress.planned(r),
      ...(metrics ? { metrics } : {}),
      ...(o.startupSignals ? { startupSignals: o.startupSignals } : {}),
    });
  } finally {
    progress.stop();
    await server?.close();
    await rt.close();
  }
}
