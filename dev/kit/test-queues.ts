/**
 * Queues for tests against the emulator's SQS: one made as the stack makes it, and every message it
 * holds read back with its message group.
 */
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";

/** A new queue of that name (FIFO queues: content-based deduplication, as the stack makes them). */
export async function createQueue(sqs: SQSClient, name: string): Promise<string> {
  const fifo = name.endsWith(".fifo");
  const { QueueUrl } = await sqs.send(
    new CreateQueueCommand({
      QueueName: name,
      ...(fifo ? { Attributes: { FifoQueue: "true", ContentBasedDeduplication: "true" } } : {}),
    }),
  );
  return QueueUrl!;
}

/** Every message a queue holds now, with its body and message group, deleted as it is read. */
export async function takeMessages(
  sqs: SQSClient,
  url: string,
): Promise<{ body: string; group: string | undefined }[]> {
  const out: { body: string; group: string | undefined }[] = [];
  for (;;) {
    const res = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        MessageSystemAttributeNames: ["MessageGroupId"],
      }),
    );
    if (!res.Messages?.length) return out;
    for (const m of res.Messages) {
      out.push({ body: m.Body!, group: m.Attributes?.MessageGroupId });
      await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle! }));
    }
  }
}
