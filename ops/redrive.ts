/**
 * `redrive`: moves dead-lettered windows back to their source's copy queue once the operator fixed
 * the cause (receive from the DLQ, send to the queue, then delete from the DLQ: a crash in between
 * leaves a duplicate, which the idempotent copier absorbs, never a loss).
 *
 * Message bodies are moved unchanged. A window whose lease has ended meanwhile is dropped by the
 * copier as stale, because the planner plans such windows again by itself; so nothing is lost
 * either way, and a redrive within the lease gets the copy done before the next plan.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";

export interface DeadLetter {
  body: string;
  /** The copier's reason (message attribute), when it set one. */
  reason: string | undefined;
  /** The message's lease end (unix seconds) when the body is a copy message. */
  leaseUntil: number | undefined;
}

export interface RedriveResult {
  moved: DeadLetter[];
  /** Messages that could not be sent back (left in the DLQ). */
  failed: { letter: DeadLetter; reason: string }[];
}

export interface RedriveOptions {
  sqs: SQSClient;
  queueUrl: string;
  deadLetterUrl: string;
  /** Only list the dead letters, leave them where they are. */
  dryRun?: boolean;
  /** Stop after this many (default: all). */
  limit?: number;
}

export async function redrive(o: RedriveOptions): Promise<RedriveResult> {
  const result: RedriveResult = { moved: [], failed: [] };
  const seen = new Set<string>();
  const peeked: Message[] = [];
  const limit = o.limit ?? Number.POSITIVE_INFINITY;
  const fifo = o.queueUrl.endsWith(".fifo");
  while (result.moved.length + peeked.length < limit) {
    const res = await o.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: o.deadLetterUrl,
        MaxNumberOfMessages: Math.min(10, limit - result.moved.length - peeked.length),
        WaitTimeSeconds: 0,
        // Long enough to send them back and delete them; a dry run makes them visible again a second later.
        VisibilityTimeout: 60,
        MessageAttributeNames: ["All"],
        MessageSystemAttributeNames: ["MessageGroupId"],
      }),
    );
    const messages = (res.Messages ?? []).filter((m) => m.MessageId && !seen.has(m.MessageId));
    if (messages.length === 0) break;
    for (const m of messages) seen.add(m.MessageId!);
    if (o.dryRun) {
      peeked.push(...messages);
      continue;
    }
    const sent = await o.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: o.queueUrl,
        Entries: messages.map((m, i) => ({
          Id: String(i),
          MessageBody: m.Body ?? "",
          // A FIFO queue (a central or serial source in AWS): back into the window's own group.
          ...(fifo ? { MessageGroupId: m.Attributes?.MessageGroupId ?? "copies" } : {}),
        })),
      }),
    );
    const failed = new Map((sent.Failed ?? []).map((f) => [f.Id ?? "", `${f.Code}: ${f.Message ?? ""}`]));
    const done = messages.filter((_, i) => !failed.has(String(i)));
    messages.forEach((m, i) => {
      const reason = failed.get(String(i));
      if (reason !== undefined) result.failed.push({ letter: letterOf(m), reason });
    });
    if (done.length > 0) {
      await o.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: o.deadLetterUrl,
          Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
        }),
      );
    }
    result.moved.push(...done.map(letterOf));
  }
  if (o.dryRun) {
    for (let i = 0; i < peeked.length; i += 10) {
      await o.sqs.send(
        // 1 s rather than 0: the same for an operator, and fauxqs 2.4 fails on 0 when it persists
        // to disk (it writes a NULL receive count).
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: o.deadLetterUrl,
          Entries: peeked
            .slice(i, i + 10)
            .map((m, n) => ({ Id: String(n), ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: 1 })),
        }),
      );
    }
    result.moved = peeked.map(letterOf);
  }
  return result;
}

function letterOf(m: Message): DeadLetter {
  let leaseUntil: number | undefined;
  try {
    const body = JSON.parse(m.Body ?? "") as { leaseUntil?: unknown };
    if (typeof body.leaseUntil === "number") leaseUntil = body.leaseUntil;
  } catch {
    // Not a copy message: moved as is, the copier dead-letters it again with its reason.
  }
  return { body: m.Body ?? "", reason: m.MessageAttributes?.reason?.StringValue, leaseUntil };
}
