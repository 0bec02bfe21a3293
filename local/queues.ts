/**
 * Creates what the local runtime needs when it does not exist: the bucket, and per source a copy
 * queue with its dead-letter queue (the same shape the CDK stack deploys).
 */
import {
  CreateBucketCommand,
  HeadBucketCommand,
  type S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from "@aws-sdk/client-sqs";

export interface SourceQueues {
  source: string;
  url: string;
  arn: string;
  deadLetterUrl: string;
  deadLetterArn: string;
}

/** Queue names follow the source name: `flussonic-backup-<source>` and `...-dlq`. */
export function queueName(source: string): string {
  return `flussonic-backup-${source}`;
}

export async function ensureBucket(s3: S3Client, bucket: string): Promise<void> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch (error) {
    const status = error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
    if (status !== 404) throw error;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  }
}

export async function ensureQueues(
  sqs: SQSClient,
  source: string,
  options: { visibilityTimeoutSeconds: number; maxReceiveCount: number },
): Promise<SourceQueues> {
  const dlq = await sqs.send(
    new CreateQueueCommand({
      QueueName: `${queueName(source)}-dlq`,
      Attributes: { MessageRetentionPeriod: String(14 * 86400) },
    }),
  );
  const deadLetterUrl = dlq.QueueUrl!;
  const deadLetterArn = await queueArn(sqs, deadLetterUrl);
  const q = await sqs.send(
    new CreateQueueCommand({
      QueueName: queueName(source),
      Attributes: {
        VisibilityTimeout: String(options.visibilityTimeoutSeconds),
        MessageRetentionPeriod: String(4 * 86400),
        // The copier dead-letters at maxReceiveCount itself, with the reason; this is the backstop
        // for a copier that died without answering.
        RedrivePolicy: JSON.stringify({
          deadLetterTargetArn: deadLetterArn,
          maxReceiveCount: options.maxReceiveCount + 1,
        }),
      },
    }),
  );
  const url = q.QueueUrl!;
  return { source, url, arn: await queueArn(sqs, url), deadLetterUrl, deadLetterArn };
}

async function queueArn(sqs: SQSClient, url: string): Promise<string> {
  const res = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }));
  return res.Attributes?.QueueArn ?? url;
}

/** Messages waiting, in flight and delayed in a queue. */
export async function queueDepth(
  sqs: SQSClient,
  url: string,
): Promise<{ visible: number; inFlight: number; delayed: number }> {
  const res = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
      ],
    }),
  );
  const a = res.Attributes ?? {};
  return {
    visible: Number(a.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
    delayed: Number(a.ApproximateNumberOfMessagesDelayed ?? 0),
  };
}
