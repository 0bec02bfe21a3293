import { SendMessageBatchCommand, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../../functions/config.ts";
import { addFifoMessageGroup, readAllCredentials } from "../../functions/lambda/environment.ts";

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
  /** An SQS client that records what it would send and never touches the network. */
  function recordingClient() {
    const sent: Record<string, unknown>[] = [];
    // md5: false: the fake answers carry no checksums of the message bodies.
    const sqs = new SQSClient({
      region: "eu-west-1",
      credentials: { accessKeyId: "x", secretAccessKey: "y" },
      md5: false,
    });
    addFifoMessageGroup(sqs);
    sqs.middlewareStack.add(
      () => async (args) => {
        sent.push(structuredClone(args.input as Record<string, unknown>));
        return { output: { $metadata: {}, Successful: [], Failed: [] } as never, response: {} };
      },
      { step: "serialize", name: "record", priority: "high" },
    );
    return { sqs, sent };
  }

  it("put every message of a FIFO queue into one message group, single or batch", async () => {
    const { sqs, sent } = recordingClient();
    const fifo = "https://sqs.eu-west-1.amazonaws.com/123456789012/flussonic-backup-a.fifo";
    await sqs.send(new SendMessageCommand({ QueueUrl: fifo, MessageBody: "{}" }));
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: fifo,
        Entries: [
          { Id: "0", MessageBody: "{1}" },
          { Id: "1", MessageBody: "{2}" },
        ],
      }),
    );
    expect(sent[0]).toMatchObject({ MessageGroupId: "copies" });
    expect((sent[1]!.Entries as { MessageGroupId?: string }[]).map((e) => e.MessageGroupId)).toEqual([
      "copies",
      "copies",
    ]);
  });

  it("leave sends to standard queues as they are", async () => {
    const { sqs, sent } = recordingClient();
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: "https://sqs.eu-west-1.amazonaws.com/123456789012/flussonic-backup-b",
        MessageBody: "{}",
      }),
    );
    expect(sent[0]!.MessageGroupId).toBeUndefined();
  });
});
