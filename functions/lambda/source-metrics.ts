/**
 * The functions' CloudWatch metrics of one source: one EMF document with the dimensions the alarms
 * and the dashboard watch (`service`, added by Powertools, and `source`). Not `singleMetric()`:
 * that one publishes at each `addMetric` and then drops the dimensions added to it, so every metric
 * after the first would be published without `source`, where no alarm looks.
 */
import type { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";

export type SourceMetric = [name: string, unit: (typeof MetricUnit)[keyof typeof MetricUnit], value: number];

export function publishSourceMetrics(
  metrics: Metrics,
  source: string,
  values: readonly SourceMetric[],
): void {
  if (values.length === 0) return;
  metrics.addDimension("source", source);
  for (const [name, unit, value] of values) metrics.addMetric(name, unit, value);
  metrics.publishStoredMetrics();
}
