/** Lambda entry of the copier (SQS event source, batch size 1, max concurrency = the source's cap). */
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import type { Context, SQSEvent } from "aws-lambda";
import { COPIER_MAX_RECEIVE_COUNT, COPIER_TIMEOUT_SECONDS } from "../config/limits.ts";
import { CapShareThrottle } from "../copier/cap-share-throttle.ts";
import { type CopierEvent, createCopierHandler } from "../copier/copy-messages.ts";
import { SourcePressure } from "../source/source-pressure.ts";
import { SourceSwitches } from "../source/source-switch.ts";
import { defaultSpoolDir } from "../store/spool-upload.ts";
import { lambdaEnvironment } from "./environment.ts";
import { publishSourceMetrics, type SourceMetric } from "./source-metrics.ts";

const logger = new Logger({ serviceName: "flussonic-backup-copier" });
const metrics = new Metrics({ namespace: "FlussonicBackup", serviceName: "copier" });

let copier: ReturnType<typeof createCopierHandler> | undefined;

async function build() {
  const env = await lambdaEnvironment();
  // Each concurrent copier gets its share of the source's bandwidth cap: the cap over
  // maxConcurrentCopies, or the larger share the planner gave a window leased alone.
  const throttles = new Map(
    env.config.sources.map((s) => [s.name, new CapShareThrottle(s.maxBandwidthMbps, s.maxConcurrentCopies)]),
  );
  const sources = new Map(env.config.sources.map((s) => [s.name, s]));
  const now = () => Math.floor(Date.now() / 1000);
  const switches = new SourceSwitches(env.store, now);
  // Back-off per container: with batch size 1 this is the pause after a 429/503 or a network error;
  // the per-message retry delays (Retry-After honoured) slow the whole fleet of the source down.
  const pressure = new Map(env.config.sources.map((s) => [s.name, new SourcePressure({ maxConcurrent: 1 })]));
  return createCopierHandler({
    store: env.store,
    sqs: env.sqs,
    flussonic: env.flussonic,
    throttle: (source, message) => throttles.get(source)!.forMessage(message),
    pressure: (source) => pressure.get(source)!,
    switches: (source) => switches.state(sources.get(source)!),
    applyBandwidth: (source, mbps) => throttles.get(source)?.setCap(mbps),
    queueUrl: env.queueUrl,
    deadLetterUrl: env.deadLetterUrl,
    maxReceiveCount: COPIER_MAX_RECEIVE_COUNT,
    now,
    partSize: 8 * 1024 * 1024,
    // Windows spooled to /tmp: one PutObject per window up to spoolMiB (store/spool-upload.ts).
    ...(env.config.spoolMiB > 0
      ? { spool: { dir: defaultSpoolDir(), singleMaxBytes: env.config.spoolMiB * 1024 * 1024 } }
      : {}),
    // The stack's bucket aborts incomplete uploads after a day (infra/backup-bucket.ts).
    orphansOnRedeliveryOnly: true,
    // The event source mapping receives and deletes unseen by the copier: with a batch of 1
    // (infra/copy-queues.ts), a ReceiveMessage and a DeleteMessageBatch per window, estimated so in
    // each record (its idle polling is per queue, not per window: docs/cost.md).
    sqsRequests: () => 2,
    // Set by Lambda: each copy records its GB-seconds (the `cost` report).
    ...(Number(process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE) > 0
      ? { lambdaMemoryMb: Number(process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE) }
      : {}),
    copyTimeoutSeconds: COPIER_TIMEOUT_SECONDS,
    logger,
    onEvent: (e) =>
      publishSourceMetrics(
        metrics,
        e.type === "dead-lettered" ? e.source : e.message.source,
        copierMetrics(e),
      ),
  });
}

export const handler = async (event: SQSEvent, context: Context) => {
  copier ??= await build();
  logger.addContext(context);
  // Stop 30 s before Lambda would, so that the upload is aborted cleanly and the message retried.
  const signal = AbortSignal.timeout(Math.max(1000, context.getRemainingTimeInMillis() - 30_000));
  // Each outcome's metrics are published as it happens (source-metrics.ts): nothing is left to flush.
  return copier(event, { signal });
};

/** The CloudWatch metrics of one message's outcome. */
function copierMetrics(e: CopierEvent): SourceMetric[] {
  switch (e.type) {
    case "copied":
      return [
        ["WindowsCopied", MetricUnit.Count, 1],
        ["BytesCopied", MetricUnit.Bytes, e.bytes],
      ];
    case "dead-lettered":
      return [["WindowsDeadLettered", MetricUnit.Count, 1]];
    case "retry":
      return [["CopyRetries", MetricUnit.Count, 1]];
    case "gone":
      return [["WindowsGone", MetricUnit.Count, 1]];
    case "deferred":
      return [["WindowsDeferred", MetricUnit.Count, 1]];
    default:
      return [];
  }
}
