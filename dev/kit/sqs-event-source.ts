/**
 * What Lambda's SQS event source mapping does between a queue and a function, played against the
 * emulator's queue: receive a batch, hand it to the function as an SQS event of the exact Lambda
 * shape, then settle the batch from the function's answer:
 *
 * - the invocation failed (the function threw, timed out, crashed): nothing is deleted, every
 *   message becomes visible again when its visibility timeout ends;
 * - with `ReportBatchItemFailures` on the mapping, a response whose `batchItemFailures` names
 *   message ids: those stay in the queue, the others are deleted. No response, `null`, `{}` or an
 *   empty list: all are deleted. An item identifier that is empty, not a string or not a message
 *   id of the batch: the whole batch counts as failed (nothing deleted). (AWS Lambda developer
 *   guide, "Reporting batch item failures for Lambda functions with an Amazon SQS trigger".)
 * - without `ReportBatchItemFailures`, any successful invocation deletes the whole batch.
 */
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { SQSEvent, SQSMessageAttributes, SQSRecord, SQSRecordAttributes } from "aws-lambda";

export interface MappingSettings {
  /** From the template's AWS::Lambda::EventSourceMapping. */
  batchSize: number;
  reportBatchItemFailures: boolean;
}

export interface Settlement {
  deleted: string[];
  /** Message ids left in the queue (visible again after their visibility timeout). */
  retained: string[];
  /** Why the whole batch was retained, when it was. */
  batchFailure?: string;
}

export class SqsEventSource {
  readonly #sqs: SQSClient;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly region: string;
  readonly settings: MappingSettings;

  constructor(
    sqs: SQSClient,
    queue: { url: string; arn: string },
    region: string,
    settings: MappingSettings,
  ) {
    this.#sqs = sqs;
    this.queueUrl = queue.url;
    this.queueArn = queue.arn;
    this.region = region;
    this.settings = settings;
  }

  /** One poll: up to `max` visible messages (default the mapping's batch size; SQS returns at most 10). */
  async receive(max = this.settings.batchSize): Promise<Message[]> {
    const res = await this.#sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.queueUrl,
        MaxNumberOfMessages: Math.min(10, max),
        MessageSystemAttributeNames: ["All"],
        MessageAttributeNames: ["All"],
        WaitTimeSeconds: 0,
      }),
    );
    return res.Messages ?? [];
  }

  /** The event Lambda passes to the function for these messages. */
  event(messages: readonly Message[]): SQSEvent {
    return { Records: messages.map((m) => this.record(m)) };
  }

  record(m: Message): SQSRecord {
    const messageAttributes: SQSMessageAttributes = {};
    for (const [name, a] of Object.entries(m.MessageAttributes ?? {})) {
      messageAttributes[name] = {
        ...(a.StringValue !== undefined ? { stringValue: a.StringValue } : {}),
        ...(a.BinaryValue !== undefined
          ? { binaryValue: Buffer.from(a.BinaryValue).toString("base64") }
          : {}),
        stringListValues: [],
        binaryListValues: [],
        dataType: a.DataType as string,
      };
    }
    return {
      messageId: m.MessageId!,
      receiptHandle: m.ReceiptHandle!,
      body: m.Body ?? "",
      attributes: { ...m.Attributes } as unknown as SQSRecordAttributes,
      messageAttributes,
      md5OfBody: m.MD5OfBody!,
      ...(m.MD5OfMessageAttributes ? { md5OfMessageAttributes: m.MD5OfMessageAttributes } : {}),
      eventSource: "aws:sqs",
      eventSourceARN: this.queueArn,
      awsRegion: this.region,
    };
  }

  /** Deletes what the function's answer says is done (see the file comment). */
  async settle(
    messages: readonly Message[],
    outcome: { ok: true; result: unknown } | { ok: false },
  ): Promise<Settlement> {
    const ids = messages.map((m) => m.MessageId!);
    const retainAll = (batchFailure: string): Settlement => ({ deleted: [], retained: ids, batchFailure });
    if (!outcome.ok) return retainAll("the invocation failed");
    let failed = new Set<string>();
    if (this.settings.reportBatchItemFailures) {
      const r = outcome.result as { batchItemFailures?: unknown } | null | undefined;
      const list = r?.batchItemFailures;
      if (list !== undefined && list !== null) {
        if (!Array.isArray(list)) return retainAll("batchItemFailures is not a list");
        for (const item of list) {
          const id = (item as { itemIdentifier?: unknown } | null)?.itemIdentifier;
          if (typeof id !== "string" || id === "" || !ids.includes(id)) {
            return retainAll(`invalid itemIdentifier ${JSON.stringify(id)}`);
          }
        }
        failed = new Set(list.map((item) => (item as { itemIdentifier: string }).itemIdentifier));
      }
    }
    const done = messages.filter((m) => !failed.has(m.MessageId!));
    if (done.length > 0) {
      const res = await this.#sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.queueUrl,
          Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
        }),
      );
      if (res.Failed?.length) throw new Error(`delete failed: ${JSON.stringify(res.Failed)}`);
    }
    return { deleted: done.map((m) => m.MessageId!), retained: [...failed] };
  }

  /**
   * Time passing for a retained message: it becomes visible now instead of when its visibility
   * timeout (the copier's retry delay) ends.
   */
  async elapseVisibility(message: Message): Promise<void> {
    await this.#sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: this.queueUrl,
        ReceiptHandle: message.ReceiptHandle!,
        VisibilityTimeout: 0,
      }),
    );
  }
}
