import { SendMessageBatchCommand, SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createQueue, takeMessages } from "../../dev/kit/test-queues.ts";
import { ConfigError, parseConfig } from "../../functions/config/config.ts";
import { addFifoMessageGroup, readAllCredentials } from "../../functions/lambda/environment.ts";
import { createSqsClient } from "../../local/aws-clients.ts";
import { type EmbeddedEmulator, startEmbedded } from "../../local/embedded.ts";

const config = parseConfig(
  JSON.stringify({
    bucket: "dvr-backup-test",
    sources: [
      {
        name: "a",
        url: "https://a.example",
        auth: { type: "basic", username: "backup", passwordSecret: "fb/a" },
      },
      {
        name: "b",
        url: "https://b.example",
        auth: { type: "bearer", tokenEnv: "B_TOKEN", tokenSecret: "fb/b" },
      },
      { name: "c", url: "https://c.example" },
    ],
  }),
  "cfg.json",
);

describe("Lambda credentials come from Secrets Manager", () => {
  it("reads each named secret once and builds the sources' credentials from it", async () => {
    const asked: string[] = [];
    const creds = await readAllCredentials(config, async (name) => {
      asked.push(name);
      return `value-of-${name}`;
    });
    expect(asked.sort()).toEqual(["fb/a", "fb/b"]);
    const a = creds.get("a")!;
    expect(a.type === "basic" && a.username === "backup" && a.password.reveal()).toBe("value-of-fb/a");
    const b = creds.get("b")!;
    expect(b.type === "bearer" && b.token.reveal()).toBe("value-of-fb/b");
    expect(creds.get("c")).toEqual({ type: "none" });
  });

  it("reports every unreadable or unnamed secret at once, naming the field, never a value", async () => {
    const envOnly = parseConfig(
      JSON.stringify({
        bucket: "dvr-backup-test",
        sources: [
          {
            name: "a",
            url: "https://a.example",
            auth: { type: "basic", username: "u", passwordSecret: "fb/a" },
          },
          { name: "b", url: "https://b.example", auth: { type: "token", tokenEnv: "T" }, streams: ["cam1"] },
        ],
      }),
      "cfg.json",
    );
    const error = await readAllCredentials(envOnly, async () => {
      throw Object.assign(new Error("Secrets Manager can't find the specified secret."), {
        name: "ResourceNotFoundException",
      });
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      "BACKUP_CONFIG: sources[0].auth.passwordSecret: cannot read secret fb/a: ResourceNotFoundException: Secrets Manager can't find the specified secret.",
      "BACKUP_CONFIG: sources[1].auth.tokenSecret: is required in AWS (the name or ARN of a Secrets Manager secret)",
    ]);
  });
});

describe("sends to the FIFO queue of a source capped at 1 copy", () => {
  // The embedded emulator (fauxqs) has real FIFO queues: a send without a message group is refused
  // there as in SQS, and a receive tells the group each message went into.
  let emulator: EmbeddedEmulator;
  let sqs: SQSClient;
  const sent: Record<string, unknown>[] = [];
  beforeAll(async () => {
    emulator = await startEmbedded(undefined);
    sqs = createSqsClient(emulator.endpoints);
    addFifoMessageGroup(sqs);
    // Looks at what goes out (after the group is added) and passes it on to the emulator.
    sqs.middlewareStack.add(
      (next) => async (args) => {
        sent.push(structuredClone(args.input as Record<string, unknown>));
        return next(args);
      },
      { step: "build", name: "observe" },
    );
  });
  afterAll(async () => {
    sqs?.destroy();
    await emulator?.stop();
  });

  const queue = (name: string) => createQueue(sqs, name);
  const received = (url: string) => takeMessages(sqs, url);

  it("put every message of a FIFO queue into one message group, single or batch", async () => {
    const fifo = await queue("flussonic-backup-a.fifo");
    await sqs.send(new SendMessageCommand({ QueueUrl: fifo, MessageBody: "{0}" }));
    const batch = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: fifo,
        Entries: [
          { Id: "0", MessageBody: "{1}" },
          { Id: "1", MessageBody: "{2}" },
        ],
      }),
    );
    expect(batch.Failed ?? []).toEqual([]);
    expect(await received(fifo)).toEqual([
      { body: "{0}", group: "copies" },
      { body: "{1}", group: "copies" },
      { body: "{2}", group: "copies" },
    ]);
  });

  it("leave sends to standard queues as they are", async () => {
    const standard = await queue("flussonic-backup-b");
    await sqs.send(new SendMessageCommand({ QueueUrl: standard, MessageBody: "{}" }));
    expect(await received(standard)).toEqual([{ body: "{}", group: undefined }]);
    // SQS now takes a group on standard queues too (fair queues): the send must not carry one.
    expect(
      sent.filter((i) => i.QueueUrl === standard && "MessageBody" in i).map((i) => i.MessageGroupId),
    ).toEqual([undefined]);
  });
});
