/**
 * One source's copy queue with its dead-letter queue, and the event source mapping that feeds the
 * copier from it with the source's cap: the "per-source SQS copy queue (+ DLQ)" of the design.
 */
import { Duration } from "aws-cdk-lib";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import type { SourceConfig } from "../functions/config/config.ts";
import { COPIER_MAX_RECEIVE_COUNT } from "../functions/config/limits.ts";

/**
 * Receives before SQS itself moves a message to the DLQ: one more than the copier's own limit, at
 * which it dead-letters a failing window with the reason (functions/config/limits.ts).
 */
export const REDRIVE_MAX_RECEIVE_COUNT = COPIER_MAX_RECEIVE_COUNT + 1;

/** SQS event source mappings accept a maxConcurrency of 2 to 1000. */
const MIN_MAPPING_CONCURRENCY = 2;

/** Queue names follow the source name as in the local runtime: `flussonic-backup-<source>`. */
export function copyQueueName(source: string): string {
  return `flussonic-backup-${source}`;
}

export interface CopyQueuesProps {
  source: SourceConfig;
  /** The copier function's timeout: the queue's visibility timeout is six times this. */
  copierTimeout: Duration;
}

export class CopyQueues extends Construct {
  readonly source: SourceConfig;
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  /**
   * True when the source's cap is 1 copy at a time. An event source mapping cannot be capped below
   * 2 concurrent invocations, so such a source gets a FIFO queue whose messages all share one
   * message group (functions/lambda/environment.ts adds the group to every send): SQS hands out the
   * next message of a group only after the previous one is deleted or its visibility timeout ends,
   * so at most one copy runs, whatever the mapping's concurrency. A retry back-off on a failing
   * window holds up the source's other windows for that time, which is what a cap of 1 asks for.
   */
  readonly serial: boolean;
  /**
   * True for a serial source and for every `kind: "central"` source: the planner sends a central
   * source's windows in message groups `<server>#<k>`, k < eachServer.maxConcurrentCopies
   * (functions/queue/copy-groups.ts), so that no server has more copies in flight than its cap
   * across all copier invocations. The planner gives each window a deduplication id (window and
   * lease); content-based deduplication covers the copier's own sends (dead letters).
   */
  readonly fifo: boolean;

  constructor(scope: Construct, id: string, props: CopyQueuesProps) {
    super(scope, id);
    const { source } = props;
    this.source = source;
    this.serial = source.maxConcurrentCopies === 1;
    this.fifo = this.serial || source.kind === "central";
    const suffix = this.fifo ? ".fifo" : "";
    const fifo = this.fifo ? { fifo: true, contentBasedDeduplication: true } : {};

    this.deadLetterQueue = new sqs.Queue(this, "DeadLetterQueue", {
      queueName: `${copyQueueName(source.name)}-dlq${suffix}`,
      ...fifo,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // The longest SQS keeps a message: time to read the reason and redrive.
      retentionPeriod: Duration.days(14),
    });
    this.queue = new sqs.Queue(this, "Queue", {
      queueName: `${copyQueueName(source.name)}${suffix}`,
      ...fifo,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // AWS asks for at least 6x the consumer's timeout, so that a message is not delivered again
      // while a copier still works on it (including Lambda's own retries of a throttled batch).
      visibilityTimeout: Duration.seconds(props.copierTimeout.toSeconds() * 6),
      // A message older than its lease (default 1 h) is stale and the planner plans it again.
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: REDRIVE_MAX_RECEIVE_COUNT },
    });
  }

  /** Feeds the copier from this queue: one window per invocation, at most the source's cap at once. */
  connect(copier: lambda.IFunction): void {
    copier.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: 1,
        reportBatchItemFailures: true,
        // A serial source is capped by its single message group; 2 is the floor AWS accepts. A
        // central source: the fleet's cap here, each server's by its message groups.
        maxConcurrency: Math.max(MIN_MAPPING_CONCURRENCY, this.source.maxConcurrentCopies),
        enabled: !this.source.paused,
      }),
    );
    this.deadLetterQueue.grantSendMessages(copier);
    // A window of a paused source is put back on its own queue with a delay (functions/copier/copy-messages.ts).
    this.queue.grantSendMessages(copier);
  }
}
