/**
 * The lean SendMessageBatch (functions/queue/lean-sqs.ts) against the embedded emulator (fauxqs,
 * which has real FIFO queues: a FIFO send without a message group is refused there as in SQS):
 * the copy queue sends through it when the client allows, standard and FIFO queues get what the
 * SDK path sends them, a failure of the whole call reads as the SDK's does, 5xx and throttling
 * answers are tried again, a batch refused for a clock far from SQS's is signed again by SQS's
 * clock, and clients with middleware it does not know keep the SDK.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { HttpHop } from "../../dev/kit/http-hop.ts";
import { createQueue, takeMessages } from "../../dev/kit/test-queues.ts";
import type { CopyMessage } from "../../functions/domain/archive.ts";
import { addFifoMessageGroup } from "../../functions/lambda/environment.ts";
import { CopyQueue } from "../../functions/queue/copy-queue.ts";
import { LeanSqs } from "../../functions/queue/lean-sqs.ts";
import { createSqsClient, type Endpoints } from "../../local/aws-clients.ts";
import { type EmbeddedEmulator, startEmbedded } from "../../local/embedded.ts";

let emulator: EmbeddedEmulator;
let admin: SQSClient;
/** Every request the hop in front of the emulator saw: its X-Amz-Target and whether the SDK made it. */
let seen: { target: string; sdk: boolean }[] = [];
/** Answers the hop gives instead of forwarding, one per SendMessageBatch call, first first. */
let injected: { status: number; body: object }[] = [];
/**
 * SQS's clock minus ours, ms (0: the same). When set, the hop answers with that clock's Date, and
 * refuses a SendMessageBatch signed more than 15 minutes from it as AWS's JSON-protocol front end
 * does (400 InvalidSignatureException "Signature expired" or "not yet current"); `signed` lists each
 * batch's signing time.
 */
let sqsClock: { offsetMs: number; signed: { at: number; refused: boolean }[] } = { offsetMs: 0, signed: [] };
const amzTime = (ms: number) => new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, "");
let hop: HttpHop;
let endpoints: Endpoints;

beforeAll(async () => {
  emulator = await startEmbedded(undefined);
  admin = createSqsClient(emulator.endpoints);
  hop = await HttpHop.start(emulator.endpoints.sqsEndpoint!, (req: IncomingMessage, res: ServerResponse) => {
    const target = String(req.headers["x-amz-target"] ?? "");
    // The SDK names itself in x-amz-user-agent on every request; the lean path sends none.
    seen.push({ target, sdk: req.headers["x-amz-user-agent"] !== undefined });
    if (sqsClock.offsetMs !== 0 && target === "AmazonSQS.SendMessageBatch") {
      const now = Date.now() + sqsClock.offsetMs;
      const m = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/.exec(String(req.headers["x-amz-date"]));
      const at = m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : Number.NaN;
      const refused = !(Math.abs(at - now) <= 15 * 60_000);
      sqsClock.signed.push({ at, refused });
      // Forwarded answers carry SQS's clock too.
      const writeHead = res.writeHead.bind(res);
      res.writeHead = ((status: number, headers?: Record<string, unknown>) =>
        writeHead(status, { ...headers, date: new Date(now).toUTCString() })) as typeof res.writeHead;
      if (refused) {
        const message =
          at > now
            ? `Signature not yet current: ${amzTime(at)} is still later than ${amzTime(now + 15 * 60_000)} (${amzTime(now)} + 15 min.)`
            : `Signature expired: ${amzTime(at)} is now earlier than ${amzTime(now - 15 * 60_000)} (${amzTime(now)} - 15 min.)`;
        req.resume();
        res.writeHead(400, { "content-type": "application/x-amz-json-1.0" });
        res.end(JSON.stringify({ __type: "com.amazon.coral.service#InvalidSignatureException", message }));
        return true;
      }
    }
    const answer = target === "AmazonSQS.SendMessageBatch" ? injected.shift() : undefined;
    if (!answer) return false;
    req.resume();
    res.writeHead(answer.status, { "content-type": "application/x-amz-json-1.0" });
    res.end(JSON.stringify(answer.body));
    return true;
  });
  endpoints = { ...emulator.endpoints, sqsEndpoint: hop.url };
});

afterEach(() => {
  seen = [];
  injected = [];
  sqsClock = { offsetMs: 0, signed: [] };
});

afterAll(async () => {
  admin?.destroy();
  await hop?.close();
  await emulator?.stop();
});

const message = (i: number): CopyMessage => ({
  v: 1,
  source: "src1",
  stream: "cam1",
  from: 1_800_000_000 + i * 600,
  duration: 600,
  format: "mp4",
  leaseUntil: 1_800_100_000,
});

const queue = (name: string) => createQueue(admin, name);

/** Every message of a queue: its body and message group. */
async function received(url: string): Promise<{ message: CopyMessage; group: string | undefined }[]> {
  return (await takeMessages(admin, url)).map((m) => ({
    message: JSON.parse(m.body) as CopyMessage,
    group: m.group,
  }));
}

const batches = () => seen.filter((s) => s.target === "AmazonSQS.SendMessageBatch");

describe("the lean SendMessageBatch", () => {
  it("queues every message of a standard queue, without a message group, with no SDK request", async () => {
    const url = await queue("lean-standard");
    const sqs = createSqsClient(endpoints);
    const q = new CopyQueue(sqs, () => url);
    try {
      expect(q.lean).toBe(true);
      const messages = Array.from({ length: 25 }, (_, i) => message(i));
      const result = await q.send("src1", messages);
      expect(result).toEqual({ sent: messages, failed: [] });
      expect(q.lean, "it did not decline").toBe(true);
      expect(batches()).toEqual([1, 2, 3].map(() => ({ target: "AmazonSQS.SendMessageBatch", sdk: false })));
      const got = await received(url);
      expect(got.map((g) => g.message.from).sort()).toEqual(messages.map((m) => m.from));
      expect(got.every((g) => g.group === undefined)).toBe(true);
    } finally {
      q.destroy();
      sqs.destroy();
    }
  });

  it("puts the messages of a FIFO queue into the group the client's middleware names, as the SDK path does", async () => {
    const url = await queue("lean-a.fifo");
    const sqs = createSqsClient(endpoints);
    addFifoMessageGroup(sqs, "copies");
    const lean = new CopyQueue(sqs, () => url);
    const viaSdk = new CopyQueue(sqs, () => url, { lean: false });
    try {
      expect(lean.lean).toBe(true);
      expect(viaSdk.lean).toBe(false);
      const messages = Array.from({ length: 12 }, (_, i) => message(i));
      expect(await lean.send("src1", messages.slice(0, 11))).toEqual({
        sent: messages.slice(0, 11),
        failed: [],
      });
      expect(await viaSdk.send("src1", messages.slice(11))).toEqual({ sent: messages.slice(11), failed: [] });
      expect(batches().map((b) => b.sdk)).toEqual([false, false, true]);
      // FIFO: in the order sent, all in one group; content-based deduplication (no id of ours).
      expect(await received(url)).toEqual(messages.map((m) => ({ message: m, group: "copies" })));
    } finally {
      lean.destroy();
      sqs.destroy();
    }
  });

  it("gives each message of a FIFO queue its own group and deduplication id when asked, as the SDK path does", async () => {
    const url = await queue("lean-groups.fifo");
    const sqs = createSqsClient(endpoints);
    addFifoMessageGroup(sqs, "copies");
    const lean = new CopyQueue(sqs, () => url);
    const viaSdk = new CopyQueue(sqs, () => url, { lean: false });
    try {
      const messages = Array.from({ length: 4 }, (_, i) => message(i));
      const groups = ["a#0", "a#1", undefined, "b#0"];
      await lean.send("src1", messages.slice(0, 2), { groups: groups.slice(0, 2) });
      await viaSdk.send("src1", messages.slice(2), { groups: groups.slice(2) });
      expect(batches().map((b) => b.sdk)).toEqual([false, true]);
      // Without a group of its own, a message takes the client's ("copies").
      expect(await received(url)).toEqual(
        messages.map((m, i) => ({ message: m, group: groups[i] ?? "copies" })),
      );
      // The same windows under the same lease again (a batch re-sent after a lost answer): dropped
      // as duplicates, on both paths; with their next lease they are queued again.
      await lean.send("src1", messages.slice(0, 2), { groups: groups.slice(0, 2) });
      await viaSdk.send("src1", messages.slice(2), { groups: groups.slice(2) });
      expect(await received(url)).toEqual([]);
      const next = messages.map((m) => ({ ...m, leaseUntil: m.leaseUntil + 3600 }));
      await lean.send("src1", next, { groups });
      expect((await received(url)).map((g) => g.message)).toEqual(next);
    } finally {
      lean.destroy();
      sqs.destroy();
    }
  });

  it("fails a send to a queue that does not exist with the SDK's words", async () => {
    const url = `${await queue("lean-exists")}-gone`;
    const sqs = createSqsClient(endpoints);
    const lean = new CopyQueue(sqs, () => url);
    const viaSdk = new CopyQueue(sqs, () => url, { lean: false });
    try {
      const a = await lean.send("src1", [message(0)], { attempts: 1 });
      const b = await viaSdk.send("src1", [message(0)], { attempts: 1 });
      expect(a.failed[0]?.reason).toMatch(/\S/);
      expect(a).toEqual(b);
      expect(batches().map((x) => x.sdk)).toEqual([false, true]);
    } finally {
      lean.destroy();
      sqs.destroy();
    }
  });

  it("tries a 5xx or throttled answer again within the client's maxAttempts, then throws what SQS said", async () => {
    const url = await queue("lean-retry");
    const sqs = createSqsClient(endpoints);
    const lean = LeanSqs.forClient(sqs)!;
    try {
      injected = [
        { status: 500, body: { __type: "com.amazonaws.sqs#InternalError", message: "try later" } },
        { status: 400, body: { __type: "com.amazonaws.sqs#RequestThrottled", message: "slow down" } },
      ];
      const ok = await lean.sendMessageBatch(url, [{ Id: "0", MessageBody: "{}" }]);
      expect(ok.Failed).toEqual([]);
      expect(ok.Successful.map((s) => s.Id)).toEqual(["0"]);
      expect(batches()).toHaveLength(3);
      seen = [];
      injected = [1, 2, 3].map(() => ({
        status: 503,
        body: { __type: "com.amazonaws.sqs#ServiceUnavailable" },
      }));
      const error = await lean
        .sendMessageBatch(url, [{ Id: "0", MessageBody: "{}" }])
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ name: "ServiceUnavailable", $metadata: { httpStatusCode: 503 } });
      expect(batches()).toHaveLength(3);
      expect(await received(url)).toHaveLength(1);
    } finally {
      lean.destroy();
      sqs.destroy();
    }
  });

  it("corrects its clock from SQS's answer to a batch signed too far from SQS's time, and signs again once", async () => {
    const url = await queue("lean-skew");
    const sqs = createSqsClient(endpoints);
    const lean = LeanSqs.forClient(sqs)!;
    try {
      // This host's clock an hour ahead of SQS's.
      sqsClock.offsetMs = -3_600_000;
      const ok = await lean.sendMessageBatch(url, [{ Id: "0", MessageBody: "{}" }]);
      expect(ok.Successful.map((s) => s.Id)).toEqual(["0"]);
      expect(sqsClock.signed.map((s) => s.refused)).toEqual([true, false]);
      // The first signed by this host's clock, the second by SQS's (the refusal's Date).
      const [first, again] = sqsClock.signed.map((s) => s.at);
      expect(Math.abs(first! - Date.now())).toBeLessThan(60_000);
      expect(Math.abs(again! - (Date.now() - 3_600_000))).toBeLessThan(60_000);
      // The correction is kept: the next batch is signed by SQS's clock at once.
      await lean.sendMessageBatch(url, [{ Id: "1", MessageBody: "{}" }]);
      expect(sqsClock.signed.map((s) => s.refused)).toEqual([true, false, false]);
      expect(await received(url)).toHaveLength(2);
    } finally {
      lean.destroy();
      sqs.destroy();
    }
  });

  it("is not used for a client with middleware it does not know", () => {
    const observed = createSqsClient(endpoints);
    observed.middlewareStack.add((next) => (args) => next(args), { step: "build", name: "observe" });
    expect(LeanSqs.forClient(observed)).toBeUndefined();
    // A group middleware of that name not added by addFifoMessageGroup: its group is not known.
    const unknownGroup = createSqsClient(endpoints);
    unknownGroup.middlewareStack.add((next) => (args) => next(args), {
      step: "initialize",
      name: "fifoMessageGroup",
    });
    expect(LeanSqs.forClient(unknownGroup)).toBeUndefined();
    const plain = createSqsClient(endpoints);
    expect(LeanSqs.forClient(plain)).toBeDefined();
    expect(LeanSqs.forClient(plain), "one per client").toBe(LeanSqs.forClient(plain));
    for (const c of [observed, unknownGroup, plain]) c.destroy();
  });

  it("declines to the SDK for an SQS endpoint configured outside the client (AWS_ENDPOINT_URL_SQS)", async () => {
    const url = await queue("lean-configured");
    const saved = process.env.AWS_ENDPOINT_URL_SQS;
    process.env.AWS_ENDPOINT_URL_SQS = hop.url;
    const sqs = new SQSClient({ region: endpoints.region, credentials: endpoints.credentials! });
    const q = new CopyQueue(sqs, () => url);
    try {
      expect(q.lean).toBe(true);
      expect(await q.send("src1", [message(0)])).toEqual({ sent: [message(0)], failed: [] });
      expect(q.lean, "declined at the first send").toBe(false);
      expect(batches().map((b) => b.sdk)).toEqual([true]);
      expect((await received(url)).map((g) => g.message)).toEqual([message(0)]);
    } finally {
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_SQS;
      else process.env.AWS_ENDPOINT_URL_SQS = saved;
      q.destroy();
      sqs.destroy();
    }
  });
});
