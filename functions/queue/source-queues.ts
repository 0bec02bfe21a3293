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
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  QueueNameExists,
  SetQueueAttributesCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";

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
  const deadLetterUrl = await createOrUpdateQueue(sqs, `${queueName(source)}-dlq`, {
    MessageRetentionPeriod: String(14 * 86400),
  });
  const deadLetterArn = await queueArn(sqs, deadLetterUrl);
  const url = await createOrUpdateQueue(sqs, queueName(source), {
    VisibilityTimeout: String(options.visibilityTimeoutSeconds),
    MessageRetentionPeriod: String(4 * 86400),
    // The copier dead-letters at maxReceiveCount itself, with the reason; this is the backstop
    // for a copier that died without answering.
    RedrivePolicy: JSON.stringify({
      deadLetterTargetArn: deadLetterArn,
      maxReceiveCount: options.maxReceiveCount + 1,
    }),
  });
  return { source, url, arn: await queueArn(sqs, url), deadLetterUrl, deadLetterArn };
}

/**
 * Creates a queue, or, when it exists with other settings (a run with another --copy-timeout, an
 * older version), brings its attributes to these: messages already queued are kept.
 */
async function createOrUpdateQueue(
  sqs: SQSClient,
  name: string,
  attributes: Record<string, string>,
): Promise<string> {
  try {
    const created = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
    return created.QueueUrl!;
  } catch (error) {
    const code = (error as { name?: string; Code?: string }).Code ?? (error as Error).name;
    if (!(error instanceof QueueNameExists) && !String(code).includes("QueueNameExists")) throw error;
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: name }));
    await sqs.send(new SetQueueAttributesCommand({ QueueUrl, Attributes: attributes }));
    return QueueUrl!;
  }
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
