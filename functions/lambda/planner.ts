/** Lambda entry of the planner (EventBridge schedule). */
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import { COPIER_TIMEOUT_SECONDS } from "../config/limits.ts";
import { sourceLagSeconds, sourceRace } from "../planner/backup-lag.ts";
import { planBackup } from "../planner/plan-backup.ts";
import { CopyQueue } from "../queue/copy-queue.ts";
import { lambdaEnvironment } from "./environment.ts";
import { publishSourceMetrics, type SourceMetric } from "./source-metrics.ts";

const logger = new Logger({ serviceName: "flussonic-backup-planner" });
const metrics = new Metrics({ namespace: "FlussonicBackup", serviceName: "planner" });

export const handler = async (event: { sources?: string[] } = {}) => {
  const env = await lambdaEnvironment();
  const now = () => Math.floor(Date.now() / 1000);
  const report = await planBackup({
    config: env.config,
    store: env.store,
    queue: new CopyQueue(env.sqs, env.queueUrl),
    flussonic: env.flussonic,
    now,
    copyTimeoutSeconds: COPIER_TIMEOUT_SECONDS,
    logger,
    ...(event.sources ? { onlySources: event.sources } : {}),
  });
  for (const s of report.sources) {
    // Backup lag: how far the stream furthest behind is from live (the lag alarm watches this);
    // a stream never copied counts from its retention start.
    const source = env.config.sources.find((c) => c.name === s.source);
    const lag = source ? sourceLagSeconds(source, s, report.at) : undefined;
    // The race with the source's retention: the shortest margin of the source's streams (the
    // margin alarm watches it), the seconds the planner foresees lost, and those found lost.
    const race = sourceRace(s);
    publishSourceMetrics(metrics, s.source, [
      ["WindowsPlanned", MetricUnit.Count, s.planned.length],
      ["WindowsDeferred", MetricUnit.Count, s.deferred],
      ["PlanningErrors", MetricUnit.Count, s.errors.length],
      ...(lag !== undefined ? [["BackupLagSeconds", MetricUnit.Seconds, lag] as SourceMetric] : []),
      ...(race.marginSeconds !== undefined
        ? [["MarginSeconds", MetricUnit.Seconds, race.marginSeconds] as SourceMetric]
        : []),
      ["SecondsAtRisk", MetricUnit.Seconds, race.secondsAtRisk],
      ["SecondsLostAtSource", MetricUnit.Seconds, race.secondsLost],
    ]);
  }
  return {
    sources: report.sources.map((s) => ({
      source: s.source,
      planned: s.planned.length,
      errors: s.errors.length,
    })),
  };
};
