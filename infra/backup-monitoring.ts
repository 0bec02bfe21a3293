/**
 * What an operator watches: alarms on the dead-letter queues, on the age of the oldest queued
 * window, on the backup lag, on planning errors and on windows lost at the source (gone before they
 * were copied) of every source, plus failing functions; an SNS topic for the alarm
 * actions (with an optional email subscription) and a CloudWatch dashboard.
 */
import { Duration, Validations } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as actions from "aws-cdk-lib/aws-cloudwatch-actions";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import * as sns from "aws-cdk-lib/aws-sns";
import * as subscriptions from "aws-cdk-lib/aws-sns-subscriptions";
import { Construct } from "constructs";
import { type BackupConfig, listedStreams } from "../functions/config/config.ts";
import { marginWarningAt } from "../functions/domain/deadlines.ts";
import type { CopyQueues } from "./copy-queues.ts";

/** Namespace and dimensions the functions publish with (Powertools adds `service`). */
export const METRICS_NAMESPACE = "FlussonicBackup";

export interface BackupMonitoringProps {
  config: BackupConfig;
  planner: lambda.IFunction;
  /** The copiers, one per source. */
  copiers: lambda.IFunction[];
  queues: CopyQueues[];
  /** Seconds between two planner runs (the config's schedule). */
  plannerIntervalSeconds: number;
}

const PERIOD = Duration.minutes(5);

export class BackupMonitoring extends Construct {
  readonly topic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: BackupMonitoringProps) {
    super(scope, id);
    const { config } = props;
    const deployment = config.deployment;

    this.topic = new sns.Topic(this, "Alarms", {
      displayName: "flussonic-backup alarms",
      enforceSSL: true,
    });
    Validations.of(this.topic).acknowledge({
      id: "AwsSolutions-SNS2",
      reason:
        "Alarm notifications carry only alarm names and metric values, nothing secret; CloudWatch cannot publish to a topic encrypted with the AWS managed SNS key, and a customer managed key would cost more than the rest of an idle stack.",
    });
    if (deployment.alarmEmail) {
      this.topic.addSubscription(new subscriptions.EmailSubscription(deployment.alarmEmail));
    }
    const alarm = (scopeId: string, props: cloudwatch.AlarmProps) => this.addAlarm(this, scopeId, props);

    // One planner run per period at least (CloudWatch periods are whole minutes, at most a day).
    const planningPeriod = Duration.seconds(
      Math.min(86400, Math.max(PERIOD.toSeconds(), Math.ceil(props.plannerIntervalSeconds / 60) * 60)),
    );
    const rows: cloudwatch.IWidget[][] = [];
    for (const q of props.queues) {
      const source = q.source.name;
      const dlqDepth = q.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: PERIOD,
        statistic: cloudwatch.Stats.MAXIMUM,
      });
      alarm(`DeadLetters-${source}`, {
        alarmName: `flussonic-backup-${source}-dead-letters`,
        alarmDescription: `Windows of source ${source} could not be copied: read the reason attribute of the messages in ${q.deadLetterQueue.queueName}`,
        metric: dlqDepth,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      const oldest = q.queue.metricApproximateAgeOfOldestMessage({
        period: PERIOD,
        statistic: cloudwatch.Stats.MAXIMUM,
      });
      // The planner queues only what the copiers can start within the lease: a window still waiting
      // after leaseSeconds means the copiers are stuck (source down, mapping disabled, throttling).
      alarm(`OldestWindow-${source}`, {
        alarmName: `flussonic-backup-${source}-oldest-window`,
        alarmDescription: `A window of source ${source} has waited in the copy queue longer than leaseSeconds (${config.leaseSeconds} s)`,
        metric: oldest,
        threshold: config.leaseSeconds,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      const lag = new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName: "BackupLagSeconds",
        dimensionsMap: { service: "planner", source },
        period: PERIOD,
        statistic: cloudwatch.Stats.MAXIMUM,
      });
      if (!q.source.paused) {
        // Missing data breaches: a planner that stopped publishing is a backup that stopped moving.
        alarm(`Lag-${source}`, {
          alarmName: `flussonic-backup-${source}-lag`,
          alarmDescription: `The newest backed-up second of a stream of source ${source} is more than ${deployment.lagAlarmSeconds} s behind live`,
          metric: lag,
          threshold: deployment.lagAlarmSeconds,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          evaluationPeriods: 3,
          datapointsToAlarm: 3,
          treatMissingData: cloudwatch.TreatMissingData.BREACHING,
        });
      }
      // The margin: time left until the source deletes the oldest second the backup lacks. It
      // alarms before anything is lost (the lag alarm says nothing while old history ages out).
      const margin = new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName: "MarginSeconds",
        dimensionsMap: { service: "planner", source },
        period: PERIOD,
        statistic: cloudwatch.Stats.MINIMUM,
      });
      // The threshold the planner warns at, for the shortest retention the source's streams keep.
      const shortestRetention = Math.min(
        q.source.retentionDays,
        ...(listedStreams(q.source) ?? []).map((st) => st.retentionDays),
      );
      const marginThreshold = marginWarningAt(config.marginWarningSeconds, shortestRetention * 86400);
      if (!q.source.paused) {
        alarm(`Margin-${source}`, {
          alarmName: `flussonic-backup-${source}-margin`,
          alarmDescription: `A stream of source ${source} has less than ${marginThreshold} s left (marginWarningSeconds, at most half its retention) before the source deletes the oldest second the backup lacks: \`flussonic-backup status\` names it; raise maxBandwidthMbps or maxConcurrentCopies, or fix what stops the copies`,
          metric: margin,
          threshold: marginThreshold,
          comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        });
      }
      const copierMetric = (metricName: string, statistic: string) =>
        new cloudwatch.Metric({
          namespace: METRICS_NAMESPACE,
          metricName,
          dimensionsMap: { service: "copier", source },
          period: PERIOD,
          statistic,
        });
      // A stream the planner cannot plan (404 at the source: renamed or deleted; a malformed
      // answer; the source unreachable) drops out of the lag metric: this alarm sees it. Two runs
      // in a row, so that one network blip does not page anyone.
      const planningErrors = new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName: "PlanningErrors",
        dimensionsMap: { service: "planner", source },
        period: planningPeriod,
        statistic: cloudwatch.Stats.SUM,
      });
      alarm(`PlanningErrors-${source}`, {
        alarmName: `flussonic-backup-${source}-planning-errors`,
        alarmDescription: `The planner failed on source ${source} or one of its streams (unknown to the source, renamed or deleted there; a malformed answer; the source unreachable) in two runs in a row: \`flussonic-backup status\` names the stream and the reason, so does the planner's log ("planning failed")`,
        metric: planningErrors,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 2,
        datapointsToAlarm: 2,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      // A window the source deleted (retention) before it was copied is video lost for good; the
      // newest windows go first, so old history ages out while the lag looks fresh.
      alarm(`WindowsGone-${source}`, {
        alarmName: `flussonic-backup-${source}-windows-gone`,
        alarmDescription: `Windows of source ${source} were deleted by the source's retention before they were copied (video lost): the copies are too slow for the source's retention; raise maxBandwidthMbps or maxConcurrentCopies, or lower retentionDays`,
        metric: copierMetric("WindowsGone", cloudwatch.Stats.SUM),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      rows.push([
        new cloudwatch.GraphWidget({
          title: `${source}: backup lag (s), planning errors`,
          left: [lag],
          right: [planningErrors],
          leftAnnotations: [{ value: deployment.lagAlarmSeconds, label: "alarm" }],
          width: 6,
        }),
        new cloudwatch.GraphWidget({
          title: `${source}: windows`,
          left: [
            copierMetric("WindowsCopied", cloudwatch.Stats.SUM),
            copierMetric("CopyRetries", cloudwatch.Stats.SUM),
            copierMetric("WindowsDeadLettered", cloudwatch.Stats.SUM),
            copierMetric("WindowsGone", cloudwatch.Stats.SUM),
          ],
          width: 6,
        }),
        new cloudwatch.GraphWidget({
          title: `${source}: bytes copied`,
          left: [copierMetric("BytesCopied", cloudwatch.Stats.SUM)],
          width: 6,
        }),
        new cloudwatch.GraphWidget({
          title: `${source}: queue`,
          left: [
            q.queue.metricApproximateNumberOfMessagesVisible({ period: PERIOD }),
            q.queue.metricApproximateNumberOfMessagesNotVisible({ period: PERIOD }),
            dlqDepth,
          ],
          right: [oldest],
          width: 6,
        }),
      ]);
    }

    // The copiers' errors summed: one alarm, as when one function copied for every source.
    const copierErrors = (options: cloudwatch.MetricOptions) =>
      new cloudwatch.MathExpression({
        expression: props.copiers.map((_, i) => `e${i}`).join(" + "),
        usingMetrics: Object.fromEntries(props.copiers.map((fn, i) => [`e${i}`, fn.metricErrors(options)])),
        label: "copier errors",
        period: options.period ?? PERIOD,
      });
    for (const [name, metric] of [
      ["planner", props.planner.metricErrors({ period: PERIOD, statistic: cloudwatch.Stats.SUM })],
      ["copier", copierErrors({ period: PERIOD, statistic: cloudwatch.Stats.SUM })],
    ] as const) {
      // Errors of the whole function (not one window): a broken config, an unreadable secret, no
      // access. Three periods in a row, so that one failed run or cold start does not page anyone.
      alarm(`Errors-${name}`, {
        alarmName: `flussonic-backup-${name}-errors`,
        alarmDescription: `The ${name} function fails: see its log group`,
        metric,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 3,
        datapointsToAlarm: 3,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    }

    this.dashboard = new cloudwatch.Dashboard(this, "Dashboard", {
      dashboardName: "flussonic-backup",
      widgets: [
        [
          new cloudwatch.AlarmStatusWidget({ title: "alarms", alarms: this.alarms, width: 12, height: 4 }),
          new cloudwatch.GraphWidget({
            title: "functions: errors and duration",
            left: [props.planner.metricErrors(), copierErrors({ period: PERIOD })],
            right: [props.planner.metricDuration(), ...props.copiers.map((c) => c.metricDuration())],
            width: 12,
          }),
        ],
        ...rows,
      ],
    });
  }

  /**
   * An alarm that notifies the topic (on alarm and back to OK), shown in the dashboard's alarm
   * widget unless `listed` is false (an alarm that exists only in some regions, e.g. under a
   * CloudFormation condition, cannot be listed there).
   */
  addAlarm(scope: Construct, id: string, props: cloudwatch.AlarmProps, listed = true): cloudwatch.Alarm {
    const a = new cloudwatch.Alarm(scope, id, props);
    a.addAlarmAction(new actions.SnsAction(this.topic));
    a.addOkAction(new actions.SnsAction(this.topic));
    if (listed) this.alarms.push(a);
    return a;
  }
}
