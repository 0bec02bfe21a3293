/**
 * The code that runs in AWS Lambda, run: the stack is synthesized for a test config, each
 * function's bundle is taken from the cloud assembly and invoked in a fresh Node process the way
 * the Lambda runtime does, configured only by the template's environment (references resolved
 * against the embedded S3/SQS emulator), with Flussonic simulators (auth on) as the sources and a
 * Secrets Manager double holding their secrets. The schedule and the SQS event source mappings
 * are played by the test from the template's rule and mappings (see dev/kit/lambda-stack.ts
 * and sqs-event-source.ts).
 *
 * Two sources: src1 (standard queue, basic auth, reached through a hop that fails one window with
 * HTTP 500) and src2 (a cap of one copy: FIFO queue, bearer token). The tests form one scenario
 * and run in order: plan, copy with a failing window and a bad message, redeliver until the
 * dead-letter path, fold the records, then the runtime, metric and secret checks over every
 * invocation made. */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout } from "node:timers/promises";
import { GetObjectCommand, ListMultipartUploadsCommand, type S3Client } from "@aws-sdk/client-s3";
import {
  GetQueueAttributesCommand,
  type Message,
  SendMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { SQSRecord } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultProxy } from "../../dev/kit/fault-proxy.ts";
import {
  accessKeyIdOf,
  type Deployment,
  DUMMY_CREDENTIALS,
  deployToEmulator,
  type EmulatorEndpoint,
  functionEnvironment,
  type InvokeOutcome,
  type InvokeSetup,
  invokeFunction,
  type SynthesizedFunction,
  type SynthesizedStack,
  synthesizeStack,
} from "../../dev/kit/lambda-stack.ts";
import { allows, roleStatements } from "../../dev/kit/role-policy.ts";
import { RolePolicyProxy } from "../../dev/kit/role-policy-proxy.ts";
import { SecretsManagerDouble } from "../../dev/kit/secrets-manager-double.ts";
import { SqsEventSource } from "../../dev/kit/sqs-event-source.ts";
import { COPIER_MAX_RECEIVE_COUNT } from "../../functions/config/limits.ts";
import type { CopyMessage } from "../../functions/domain/archive.ts";
import { recordsPrefix, windowKey } from "../../functions/domain/keys.ts";
import {
  clipRanges,
  intersectRanges,
  normalizeRanges,
  subtractRanges,
  type TimeRange,
} from "../../functions/domain/ranges.ts";
import { BackupStore } from "../../functions/store/backup-store.ts";
import { createS3Client, createSqsClient } from "../../local/aws-clients.ts";
import { type EmbeddedEmulator, startEmbedded } from "../../local/embedded.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";

const BAD_BODY = "copy cam1 from 10:00 please";
const RETENTION_DAYS = 0.01; // 864 s: a few 300-s windows per stream
const WINDOW_SECONDS = 300;

/** One source of the test config, its simulator, its secret and its queues. */
interface Source {
  name: string;
  sim: FlussonicSimulator;
  secretName: string;
  /** The secret string: src1's password (basic auth), src2's token (bearer). */
  secret: string;
  /** The source's copy queue, with the template's event source mapping to the copier. */
  queue: SqsEventSource;
  deadLetterUrl: string;
  /** The queue's redrive maxReceiveCount from the template. */
  redriveMaxReceiveCount: number;
  /** The source's copier: the function its queue's event source mapping invokes. */
  copier: InvokeSetup;
}

interface Scenario {
  dir: string;
  src1: Source;
  src2: Source;
  proxy: FaultProxy;
  /** Enforces each function's role on its S3 and SQS calls. */
  roles: RolePolicyProxy;
  secrets: SecretsManagerDouble;
  emulator: EmbeddedEmulator;
  endpoint: EmulatorEndpoint;
  s3: S3Client;
  sqs: SQSClient;
  store: BackupStore;
  stack: SynthesizedStack;
  deployment: Deployment;
  planner: InvokeSetup;
  prefix: string;
  bucket: string;
  settleSeconds: number;
  /** Every invocation, for the secret and metric checks. */
  invocations: { fn: string; env: Record<string, string>; outcome: InvokeOutcome }[];
}

let s: Scenario;

/** Invokes and keeps the invocation (its environment and logs) for the secret checks. */
async function invoke(
  setup: InvokeSetup,
  event: unknown,
  env = functionEnvironment(setup),
  remainingMs?: number,
) {
  const outcome = await invokeFunction(setup, event, env, remainingMs);
  s.invocations.push({ fn: setup.fn.logicalId, env, outcome });
  return outcome;
}

/** The resource a template value points at through `{Ref}` or `{Fn::GetAtt: [id, ...]}`. */
function referencedId(value: unknown): string | undefined {
  const v = value as { Ref?: string; "Fn::GetAtt"?: [string, string] } | undefined;
  return v?.Ref ?? v?.["Fn::GetAtt"]?.[0];
}

function ruleId(): string {
  return Object.entries(s.stack.resources).find(([, r]) => r.Type === "AWS::Events::Rule")![0];
}

/** The event EventBridge sends the target of the scheduled rule (or the target's fixed input). */
function scheduledEvent(): unknown {
  const id = ruleId();
  const target = (s.stack.resources[id]!.Properties!.Targets as { Input?: string }[])[0]!;
  if (target.Input) return JSON.parse(target.Input);
  const region = s.endpoint.region;
  return {
    version: "0",
    id: randomUUID(),
    "detail-type": "Scheduled Event",
    source: "aws.events",
    account: "000000000000",
    time: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
    region,
    resources: [`arn:aws:events:${region}:000000000000:rule/${s.stack.stackName}-${id}`],
    detail: {},
  };
}

interface PlannerReport {
  sources: { source: string; planned: number; errors: number }[];
}

/** The planner's answer; a failed invocation fails the test with its error and logs. */
function plannerReport(out: InvokeOutcome): PlannerReport {
  if (!out.ok) throw new Error(`the planner failed: ${out.errorType}: ${out.errorMessage}\n${out.logs}`);
  return out.result as unknown as PlannerReport;
}

async function queueDepth(url: string): Promise<{ visible: number; inFlight: number; delayed: number }> {
  const { Attributes: a } = await s.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["All"] }),
  );
  return {
    visible: Number(a?.ApproximateNumberOfMessages),
    inFlight: Number(a?.ApproximateNumberOfMessagesNotVisible),
    delayed: Number(a?.ApproximateNumberOfMessagesDelayed),
  };
}

async function getObject(key: string): Promise<Buffer> {
  const res = await s.s3.send(new GetObjectCommand({ Bucket: s.bucket, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

async function keysUnder(prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of s.store.listObjects(prefix)) out.push(o.key);
  return out.sort();
}

async function receiveAll(url: string): Promise<Message[]> {
  const reader = new SqsEventSource(s.sqs, { url, arn: "" }, s.endpoint.region, {
    batchSize: 10,
    reportBatchItemFailures: false,
  });
  const all: Message[] = [];
  for (;;) {
    const batch = await reader.receive(10);
    if (batch.length === 0) return all;
    all.push(...batch);
  }
}

const rangeOf = (m: { from: number; duration: number }): TimeRange => ({
  from: m.from,
  to: m.from + m.duration,
});

/** One invocation of the copier by the event source: the records, their receive counts, the outcome. */
interface Delivery {
  ids: string[];
  receiveCounts: Record<string, string>;
  /** Message ids reported as batch item failures (left in the queue). */
  failures: string[];
  records: SQSRecord[];
}

/**
 * The event source mapping at work until the queue is empty: polls a batch (up to 10 records),
 * invokes the copier, settles the batch from its answer; when nothing is visible but failed
 * messages wait for their retry delay, time passes (they are made visible).
 */
async function drain(src: Source, beforeInvoke: (batch: Message[]) => void = () => {}): Promise<Delivery[]> {
  const deliveries: Delivery[] = [];
  const retained = new Map<string, Message>();
  for (let poll = 0; poll < 40; poll++) {
    const batch = await src.queue.receive(10);
    if (batch.length === 0) {
      if (retained.size === 0) return deliveries;
      for (const m of retained.values()) await src.queue.elapseVisibility(m);
      retained.clear();
      continue;
    }
    beforeInvoke(batch);
    const event = src.queue.event(batch);
    const out = await invoke(src.copier, event);
    expect(out.ok, out.ok ? "" : `${out.errorType}: ${out.errorMessage}\n${out.logs}`).toBe(true);
    const settled = await src.queue.settle(batch, out);
    expect(settled.batchFailure).toBeUndefined();
    for (const id of settled.retained) retained.set(id, batch.find((m) => m.MessageId === id)!);
    deliveries.push({
      ids: batch.map((m) => m.MessageId!),
      receiveCounts: Object.fromEntries(
        batch.map((m) => [m.MessageId!, m.Attributes?.ApproximateReceiveCount ?? "?"]),
      ),
      failures: settled.retained,
      records: event.Records,
    });
  }
  throw new Error(`${src.name}: the queue did not drain in 40 polls`);
}

/** Asserts the stored windows of a source: exactly `copied`, each byte for byte the simulator's. */
async function expectStored(src: Source, copied: CopyMessage[]): Promise<void> {
  const expectedKeys = copied.map((m) => windowKey(s.prefix, m, m.format)).sort();
  expect(await keysUnder(`${s.prefix}${src.name}/`)).toEqual(expectedKeys);
  for (const m of copied) {
    const got = await getObject(windowKey(s.prefix, m, m.format));
    const expected = src.sim.body(m.stream, m.from, m.duration, m.format);
    expect(expected.length).toBeGreaterThan(0);
    expect(got.length, `size of ${src.name}/${m.stream}@${m.from}`).toBe(expected.length);
    expect(got.equals(expected), `bytes of ${src.name}/${m.stream}@${m.from}`).toBe(true);
  }
}

/** The planned windows of a source cover what it recorded within retention, up to the settled edge. */
function expectPlannedCover(src: Source, windows: CopyMessage[], streams: string[]): void {
  expect([...new Set(windows.map((m) => m.stream))].sort()).toEqual(streams);
  for (const stream of streams) {
    const mustCover = clipRanges(
      src.sim.rangesOf(stream),
      planWindow.end - RETENTION_DAYS * 86_400 + 1,
      Math.floor((planWindow.start - s.settleSeconds) / WINDOW_SECONDS) * WINDOW_SECONDS,
    );
    const planned = normalizeRanges(windows.filter((m) => m.stream === stream).map(rangeOf));
    expect(subtractRanges(mustCover, planned), `${src.name}/${stream} not planned`).toEqual([]);
  }
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "fb-lambda-"));
  const password = randomBytes(16).toString("hex");
  const token = randomBytes(16).toString("hex");
  // Recording for a day and still recording, so every stream has windows within retention;
  // cam1 of src1 with a 100-s gap inside it.
  const now = Math.floor(Date.now() / 1000);
  const sim1 = await FlussonicSimulator.start({
    streams: [
      {
        name: "cam1",
        bitrateBps: 48_000,
        ranges: [
          { from: now - 86_400, to: now - 500 },
          { from: now - 400, to: Number.POSITIVE_INFINITY },
        ],
      },
      { name: "cam2", bitrateBps: 64_000, ranges: [{ from: now - 86_400, to: Number.POSITIVE_INFINITY }] },
    ],
    days: 1,
    auth: { basic: { username: "backup", password } },
  });
  const sim2 = await FlussonicSimulator.start({
    streams: [{ name: "cam1", ranges: [{ from: now - 86_400, to: Number.POSITIVE_INFINITY }] }],
    days: 1,
    auth: { bearer: token },
  });
  // src1 is reached through a hop that can fail chosen windows.
  const proxy = await FaultProxy.start(sim1.url, 500);
  const secrets = await SecretsManagerDouble.start({
    "flussonic-backup/src1": password,
    "flussonic-backup/src2": token,
  });
  const configFile = join(dir, "lambda-test.json");
  writeFileSync(
    configFile,
    JSON.stringify({
      bucket: "fb-lambda-test",
      prefix: "flussonic/",
      schedule: "rate(5 minutes)",
      maxWindowSeconds: WINDOW_SECONDS,
      sources: [
        {
          name: "src1",
          url: proxy.url,
          auth: { type: "basic", username: "backup", passwordSecret: "flussonic-backup/src1" },
          streams: "all",
          retentionDays: RETENTION_DAYS,
          maxConcurrentCopies: 2,
        },
        {
          // A cap of 1 copy at a time: a FIFO queue with one message group in AWS.
          name: "src2",
          url: sim2.url,
          auth: { type: "bearer", tokenSecret: "flussonic-backup/src2" },
          streams: ["cam1"],
          retentionDays: RETENTION_DAYS,
          maxConcurrentCopies: 1,
        },
      ],
    }),
  );
  const stack = await synthesizeStack(configFile, join(dir, "cdk.out"));

  const emulator = await startEmbedded(undefined);
  // The functions reach S3 and SQS through a hop that enforces their roles (the emulator checks no
  // permission); the test's own clients go to the emulator directly.
  // The account is the emulator's, known once a queue exists (its ARN).
  const pseudo = { region: emulator.endpoints.region, account: "" };
  const roles = await RolePolicyProxy.start(emulator.endpoints.s3Endpoint!, pseudo);
  const endpoint: EmulatorEndpoint = {
    region: emulator.endpoints.region,
    s3Endpoint: roles.url,
    sqsEndpoint: roles.url,
  };
  const s3 = createS3Client(emulator.endpoints);
  const sqs = createSqsClient(emulator.endpoints);
  const deployment = await deployToEmulator(stack, { s3, sqs }, endpoint);
  pseudo.account = [...deployment.queues.values()][0]!.arn.split(":")[4]!;
  for (const [id, name] of deployment.buckets) {
    if (stack.resources[id]!.Properties?.ObjectLockEnabled === true) roles.objectLockBuckets.add(name);
  }
  for (const fn of stack.functions) {
    roles.callers.set(accessKeyIdOf(fn), {
      name: fn.logicalId,
      statements: roleStatements(stack, fn, deployment, pseudo),
    });
  }
  secrets.authorize = (key, action, arn) => {
    const caller = roles.callers.get(key ?? "");
    if (!caller) return true;
    roles.checked.push(`${caller.name} ${action} ${arn}`);
    if (allows(caller.statements, { action, resource: arn })) return true;
    roles.refused.push(`${caller.name} ${action} on ${arn}`);
    return false;
  };

  // The planner is what the schedule triggers; the copier is what the sources' queues feed.
  const [rule] = Object.values(stack.resources).filter((r) => r.Type === "AWS::Events::Rule");
  const plannerId = referencedId((rule!.Properties!.Targets as { Arn: unknown }[])[0]!.Arn);
  const mappings = Object.values(stack.resources)
    .filter((r) => r.Type === "AWS::Lambda::EventSourceMapping")
    .map((r) => r.Properties!);
  // One copier per source, each fed by its source's queue alone.
  const copierIds = new Set(mappings.map((m) => referencedId(m.FunctionName)));
  expect(copierIds.size).toBe(mappings.length);
  const fnById = (id: string | undefined): SynthesizedFunction => {
    const fn = stack.functions.find((f) => f.logicalId === id);
    if (!fn) throw new Error(`no function ${id} in the template`);
    return fn;
  };
  const setup = (fn: SynthesizedFunction): InvokeSetup => ({
    fn,
    deployment,
    endpoint,
    secretsManagerEndpoint: secrets.url,
    workDir: join(dir, "invocations"),
  });
  const plannerFn = fnById(plannerId);
  const config = JSON.parse(deployment.resolve(plannerFn.environment.BACKUP_CONFIG!)) as {
    bucket: string;
    prefix: string;
    settleSeconds: number;
  };
  // Which queue is whose: the planner's QUEUE_URLS, as it sends to them.
  const queueUrls = JSON.parse(deployment.resolve(plannerFn.environment.QUEUE_URLS!)) as Record<
    string,
    { url: string; deadLetterUrl: string }
  >;
  const source = (name: string, sim: FlussonicSimulator, secret: string): Source => {
    const mapping = mappings.find(
      (m) => deployment.queues.get(referencedId(m.EventSourceArn)!)?.url === queueUrls[name]!.url,
    )!;
    const queue = deployment.queues.get(referencedId(mapping.EventSourceArn)!)!;
    const redrive = queue.properties.RedrivePolicy as { maxReceiveCount: number };
    return {
      name,
      sim,
      secretName: `flussonic-backup/${name}`,
      secret,
      queue: new SqsEventSource(sqs, queue, endpoint.region, {
        batchSize: Number(mapping.BatchSize ?? 10),
        reportBatchItemFailures: ((mapping.FunctionResponseTypes as string[] | undefined) ?? []).includes(
          "ReportBatchItemFailures",
        ),
      }),
      deadLetterUrl: queueUrls[name]!.deadLetterUrl,
      redriveMaxReceiveCount: redrive.maxReceiveCount,
      copier: setup(fnById(referencedId(mapping.FunctionName))),
    };
  };
  s = {
    dir,
    src1: source("src1", sim1, password),
    src2: source("src2", sim2, token),
    proxy,
    roles,
    secrets,
    emulator,
    endpoint,
    s3,
    sqs,
    store: new BackupStore(s3, config.bucket, config.prefix),
    stack,
    deployment,
    planner: setup(plannerFn),
    prefix: config.prefix,
    bucket: config.bucket,
    settleSeconds: config.settleSeconds,
    invocations: [],
  };
}, 240_000);

afterAll(async () => {
  if (!s) return;
  await s.emulator.stop();
  await s.proxy.close();
  await s.roles.close();
  await s.secrets.close();
  await s.src1.sim.close();
  await s.src2.sim.close();
  rmSync(s.dir, { recursive: true, force: true });
});

describe("the Lambda functions from the cloud assembly", () => {
  it("are the esbuild bundles of the planner and each source's copier, on nodejs24.x, configured by the template alone", () => {
    expect(s.stack.functions).toHaveLength(3);
    for (const setup of [s.planner, s.src1.copier, s.src2.copier]) {
      expect(setup.fn.runtime).toBe("nodejs24.x");
      expect(setup.fn.handler).toBe("index.handler");
      expect(setup.fn.codeDir.startsWith(s.stack.outDir)).toBe(true);
      expect(Object.keys(setup.fn.environment).sort()).toEqual([
        "BACKUP_CONFIG",
        "NODE_OPTIONS",
        "QUEUE_URLS",
      ]);
    }
    expect(s.planner.fn.description).toMatch(/planner/);
    // Each copier knows its own source alone (its config, its queues): it cannot copy another's.
    for (const src of [s.src1, s.src2]) {
      expect(src.copier.fn.description).toMatch(new RegExp(`copier of source ${src.name}:`));
      const env = src.copier.fn.environment;
      const config = JSON.parse(s.deployment.resolve(env.BACKUP_CONFIG!)) as { sources: { name: string }[] };
      expect(config.sources.map((x) => x.name)).toEqual([src.name]);
      expect(Object.keys(JSON.parse(s.deployment.resolve(env.QUEUE_URLS!)))).toEqual([src.name]);
    }
    // The mappings must report partial failures, or a failed window would take its whole batch
    // back to the queue; the queues redrive after the copier's own dead-lettering.
    for (const src of [s.src1, s.src2]) {
      expect(src.queue.settings.reportBatchItemFailures).toBe(true);
      expect(src.redriveMaxReceiveCount).toBeGreaterThan(COPIER_MAX_RECEIVE_COUNT);
    }
    expect(s.src1.queue.queueUrl).toMatch(/\/flussonic-backup-src1$/);
    expect(s.src2.queue.queueUrl).toMatch(/\/flussonic-backup-src2\.fifo$/);
  });
});

/** Windows the planner queued in the first run, by message id, per source. */
const planned = { src1: new Map<string, CopyMessage>(), src2: new Map<string, CopyMessage>() };
const planWindow = { start: 0, end: 0 };
let firstReport: PlannerReport = { sources: [] };
/** The window the source always fails, the message nobody planned. */
let poisonedId = "";
let poisonedPath = "";
let badBodyId = "";
let badBodyId2 = "";
const deliveries: { src1: Delivery[]; src2: Delivery[] } = { src1: [], src2: [] };

describe("a backup through the Lambda functions", () => {
  it("the planner, invoked by the EventBridge schedule, queues the missing windows of every source", async () => {
    // A message nobody planned (written by hand, not JSON) waits in each queue already.
    const { MessageId } = await s.sqs.send(
      new SendMessageCommand({ QueueUrl: s.src1.queue.queueUrl, MessageBody: BAD_BODY }),
    );
    badBodyId = MessageId!;
    const fifo = await s.sqs.send(
      new SendMessageCommand({
        QueueUrl: s.src2.queue.queueUrl,
        MessageBody: BAD_BODY,
        MessageGroupId: "copies",
      }),
    );
    badBodyId2 = fifo.MessageId!;

    planWindow.start = Math.floor(Date.now() / 1000);
    firstReport = plannerReport(await invoke(s.planner, scheduledEvent()));
    planWindow.end = Math.ceil(Date.now() / 1000);
    expect(firstReport.sources).toEqual([
      { source: "src1", planned: expect.any(Number), errors: 0 },
      { source: "src2", planned: expect.any(Number), errors: 0 },
    ]);
    // Queued: one message per planned window (read by the copier below: a peek would count as a
    // receive), next to the bad message.
    const [p1, p2] = firstReport.sources.map((r) => r.planned) as [number, number];
    expect(p1).toBeGreaterThanOrEqual(4);
    expect(p2).toBeGreaterThanOrEqual(2);
    expect(await queueDepth(s.src1.queue.queueUrl)).toEqual({ visible: p1 + 1, inFlight: 0, delayed: 0 });
    expect(await queueDepth(s.src2.queue.queueUrl)).toEqual({ visible: p2 + 1, inFlight: 0, delayed: 0 });
  });

  it("the copier, fed SQS batches by the event source, copies every window and reports only the failing one", async () => {
    deliveries.src1 = await drain(s.src1, (batch) => {
      for (const m of batch) {
        if (m.MessageId !== badBodyId) planned.src1.set(m.MessageId!, JSON.parse(m.Body!) as CopyMessage);
      }
      if (poisonedId) return;
      // The source fails one window of the first batch every time it is asked for it.
      const victim = batch.find((m) => planned.src1.has(m.MessageId!))!;
      const w = planned.src1.get(victim.MessageId!)!;
      poisonedId = victim.MessageId!;
      poisonedPath = `/${w.stream}/archive-${w.from}-${w.duration}.${w.format}`;
      s.proxy.failing.add(poisonedPath);
    });
    expect(planned.src1.size).toBe(firstReport.sources[0]!.planned);
    expectPlannedCover(s.src1, [...planned.src1.values()], ["cam1", "cam2"]);

    // The first delivery: several records, the failing window reported, the rest acknowledged.
    const first = deliveries.src1[0]!;
    expect(first.ids.length).toBeGreaterThanOrEqual(3);
    expect(first.failures).toEqual([poisonedId]);
    // Every other window and the bad message: delivered once, acknowledged (deleted).
    for (const id of [...planned.src1.keys(), badBodyId].filter((id) => id !== poisonedId)) {
      const got = deliveries.src1.filter((d) => d.ids.includes(id));
      expect(got, `deliveries of ${id}`).toHaveLength(1);
      expect(got[0]!.receiveCounts[id]).toBe("1");
      expect(got[0]!.failures).not.toContain(id);
    }
    await expectStored(
      s.src1,
      [...planned.src1.entries()].filter(([id]) => id !== poisonedId).map(([, m]) => m),
    );
  });

  it("copies the FIFO queue of a source capped at one copy (the single message group), dead-lettering its bad message", async () => {
    deliveries.src2 = await drain(s.src2, (batch) => {
      for (const m of batch) {
        if (m.MessageId !== badBodyId2) planned.src2.set(m.MessageId!, JSON.parse(m.Body!) as CopyMessage);
      }
    });
    expect(planned.src2.size).toBe(firstReport.sources[1]!.planned);
    expectPlannedCover(s.src2, [...planned.src2.values()], ["cam1"]);
    // The planner's sends got the message group the FIFO queue needs (functions/lambda/environment.ts).
    for (const d of deliveries.src2) {
      expect(d.failures).toEqual([]);
      for (const r of d.records) expect(r.attributes.MessageGroupId).toBe("copies");
    }
    await expectStored(s.src2, [...planned.src2.values()]);
    expect(await queueDepth(s.src2.queue.queueUrl)).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
    // The bad message went to the FIFO DLQ at once, with the reason, named after its source.
    const dead = await receiveAll(s.src2.deadLetterUrl);
    expect(dead.map((m) => [m.Body, m.MessageAttributes?.reason?.StringValue])).toEqual([
      [BAD_BODY, expect.stringMatching(/^not a copy message/)],
    ]);
    expect(deliveries.src2.flatMap((d) => d.ids).filter((id) => id === badBodyId2)).toHaveLength(1);
    expect(
      deliveries.src2.flatMap((d) => d.records).find((r) => r.messageId === badBodyId2)!.eventSourceARN,
    ).toMatch(/:flussonic-backup-src2\.fifo$/);
  });

  it("redelivers the failing window until the copier dead-letters it at receive 5, before the queue's own redrive", async () => {
    const poisoned = deliveries.src1.filter((d) => d.ids.includes(poisonedId));
    expect(poisoned.map((d) => d.receiveCounts[poisonedId])).toEqual(
      Array.from({ length: COPIER_MAX_RECEIVE_COUNT }, (_, i) => String(i + 1)),
    );
    // Retained (not deleted) after each failed attempt; acknowledged once dead-lettered.
    expect(poisoned.map((d) => d.failures.includes(poisonedId))).toEqual([
      ...Array(COPIER_MAX_RECEIVE_COUNT - 1).fill(true),
      false,
    ]);
    // The source was asked for that window on each delivery and answered 500.
    expect(s.proxy.failed).toEqual(Array(COPIER_MAX_RECEIVE_COUNT).fill(poisonedPath));
    // The copy queue is empty; the dead-letter queue holds the window and the bad message, each
    // with the copier's reason (the queue's redrive, at receive 6, adds none).
    expect(await queueDepth(s.src1.queue.queueUrl)).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
    const dead = await receiveAll(s.src1.deadLetterUrl);
    const byBody = new Map(dead.map((m) => [m.Body!, m.MessageAttributes ?? {}]));
    expect(dead).toHaveLength(2);
    const window = planned.src1.get(poisonedId)!;
    const windowReason = byBody.get(JSON.stringify(window))?.reason?.StringValue ?? "";
    expect(windowReason).toMatch(/HTTP 500/);
    expect(windowReason).toMatch(`(after ${COPIER_MAX_RECEIVE_COUNT} attempts)`);
    expect(byBody.get(JSON.stringify(window))?.receiveCount?.StringValue).toBe(
      String(COPIER_MAX_RECEIVE_COUNT),
    );
    expect(byBody.get(BAD_BODY)?.reason?.StringValue).toMatch(/^not a copy message/);
    // Nothing of the failed window was stored.
    expect(await getObject(windowKey(s.prefix, window, window.format)).catch(() => "missing")).toBe(
      "missing",
    );
  });

  it("records every copy (key, size, SHA-256); the next planner run folds the records into the manifests", async () => {
    const copied = (src: Source) =>
      [...planned[src.name as "src1" | "src2"].entries()]
        .filter(([id]) => id !== poisonedId)
        .map(([, m]) => m);
    for (const src of [s.src1, s.src2]) {
      for (const m of copied(src)) {
        const bytes = src.sim.body(m.stream, m.from, m.duration, m.format);
        expect(await s.store.getRecord(m)).toMatchObject({
          source: src.name,
          stream: m.stream,
          from: m.from,
          duration: m.duration,
          format: m.format,
          key: windowKey(s.prefix, m, m.format),
          size: bytes.length,
          sha256: createHash("sha256").update(bytes).digest("hex"),
        });
      }
    }
    const report = plannerReport(await invoke(s.planner, scheduledEvent()));
    const retentionStart = Math.ceil(Date.now() / 1000) - RETENTION_DAYS * 86_400;
    expect(report.sources.map((r) => r.errors)).toEqual([0, 0]);
    const window = planned.src1.get(poisonedId)!;
    for (const [src, streams] of [
      [s.src1, ["cam1", "cam2"]],
      [s.src2, ["cam1"]],
    ] as const) {
      expect(await keysUnder(recordsPrefix(s.prefix, src.name))).toEqual([]);
      for (const stream of streams) {
        const { manifest } = await s.store.readManifest(src.name, stream);
        const mine = copied(src).filter((m) => m.stream === stream);
        expect(manifest.windows).toBe(mine.length);
        // Covered: every stored window, as far as it is still within retention.
        for (const m of mine) {
          const kept = clipRanges([rangeOf(m)], retentionStart, Infinity);
          expect(subtractRanges(kept, manifest.covered)).toEqual([]);
        }
        if (src === s.src1 && window.stream === stream) {
          expect(intersectRanges([rangeOf(window)], manifest.covered)).toEqual([]);
        }
      }
      // Nothing stored or still leased (the dead-lettered window) is planned again.
      for (const m of await receiveAll(src.queue.queueUrl)) {
        const w = JSON.parse(m.Body!) as CopyMessage;
        const before = [...planned[src.name as "src1" | "src2"].values()].filter(
          (p) => p.stream === w.stream,
        );
        expect(intersectRanges([rangeOf(w)], normalizeRanges(before.map(rangeOf)))).toEqual([]);
      }
    }
  });
  it("a paused source's window is deferred back onto its own queue, not retried into the dead-letter queue", async () => {
    const now = Math.floor(Date.now() / 1000);
    await s.store.writeControl("src1", { paused: true, reason: "maintenance at the site", at: now });
    const window: CopyMessage = {
      v: 1,
      source: "src1",
      stream: "cam2",
      from: Math.floor((now - 2 * 3600) / WINDOW_SECONDS) * WINDOW_SECONDS,
      duration: WINDOW_SECONDS,
      format: "mp4",
      leaseUntil: now + 3600,
    };
    await s.sqs.send(
      new SendMessageCommand({ QueueUrl: s.src1.queue.queueUrl, MessageBody: JSON.stringify(window) }),
    );
    let batch: Message[] = [];
    await expect
      .poll(async () => {
        batch = await s.src1.queue.receive(10);
        return batch.map((m) => m.Body);
      })
      .toEqual([JSON.stringify(window)]);
    const before = {
      queue: await queueDepth(s.src1.queue.queueUrl),
      dlq: await queueDepth(s.src1.deadLetterUrl),
    };
    const refusedBefore = s.roles.refused.length;
    const out = await invoke(s.src1.copier, s.src1.queue.event(batch));
    await s.store.writeControl("src1", undefined);
    expect(s.roles.refused.slice(refusedBefore)).toEqual([]);
    expect(out).toMatchObject({ ok: true, result: { batchItemFailures: [] } });
    expect((await s.src1.queue.settle(batch, out)).retained).toEqual([]);
    expect(out.logs).toMatch(/window deferred/);
    // The window waits on its queue as a new, delayed message; nothing went to the DLQ.
    expect(await queueDepth(s.src1.queue.queueUrl)).toEqual({
      ...before.queue,
      inFlight: before.queue.inFlight - 1,
      delayed: before.queue.delayed + 1,
    });
    expect(await queueDepth(s.src1.deadLetterUrl)).toEqual(before.dlq);
    expect(await getObject(windowKey(s.prefix, window, window.format)).catch(() => "missing")).toBe(
      "missing",
    );
  }, 60_000);

  it("stops a copy 30 s before the function's timeout: its multipart upload aborted, nothing stored, the window retried", async () => {
    // A one-hour window of src2 (28.8 MB at 64 kbit/s) whose download stalls after 9 MiB (a first
    // 8-MiB part is uploaded by then); the invocation starts with 40 s left, as if it had run for
    // 860 s, so the copier's own stop comes about 10 s in (time for a cold start, 9 MiB and the
    // first part on a loaded machine), long before the body's idle timeout.
    const now = Math.floor(Date.now() / 1000);
    const window: CopyMessage = {
      v: 1,
      source: "src2",
      stream: "cam1",
      from: Math.floor((now - 3 * 3600) / 3600) * 3600,
      duration: 3600,
      format: "mp4",
      leaseUntil: now + 3600,
    };
    // A group of its own and a fresh deduplication id: a message of the "copies" group still in
    // flight from an earlier test would hold this one back (FIFO order within a group).
    await s.sqs.send(
      new SendMessageCommand({
        QueueUrl: s.src2.queue.queueUrl,
        MessageBody: JSON.stringify(window),
        MessageGroupId: "timeout-test",
        MessageDeduplicationId: `timeout-test-${now}`,
      }),
    );
    const key = windowKey(s.prefix, window, window.format);
    let batch: Awaited<ReturnType<typeof s.src2.queue.receive>> = [];
    await expect
      .poll(async () => {
        batch = await s.src2.queue.receive(10);
        return batch.map((m) => m.Body);
      })
      .toEqual([JSON.stringify(window)]);
    s.src2.sim.setFaults({ stallAfterBytes: 9 * 1024 * 1024, bodyFaultNext: 1 });
    const uploadsOfWindow = async () =>
      (await s.s3.send(new ListMultipartUploadsCommand({ Bucket: s.bucket, Prefix: key }))).Uploads ?? [];
    // Watch the bucket while the copier runs: the multipart upload it starts.
    let started = 0;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        started = Math.max(started, (await uploadsOfWindow()).length);
        await setTimeout(100);
      }
    })();
    const out = await invoke(
      s.src2.copier,
      s.src2.queue.event(batch),
      functionEnvironment(s.src2.copier),
      40_000,
    );
    watching = false;
    await watch;
    s.src2.sim.setFaults({});
    expect(out.ms).toBeLessThan(30_000);
    expect(out).toMatchObject({
      ok: true,
      result: { batchItemFailures: [{ itemIdentifier: batch[0]!.MessageId }] },
    });
    expect((await s.src2.queue.settle(batch, out)).retained).toEqual([batch[0]!.MessageId]);
    expect(out.logs).toMatch(/copy failed, will retry/);
    expect(out.logs).toMatch(/download failed: The operation was aborted due to timeout/);
    expect(started).toBe(1);
    expect(await uploadsOfWindow()).toEqual([]);
    expect(await getObject(key).catch(() => "missing")).toBe("missing");
  });
});

describe("the functions' roles", () => {
  it("allowed every S3, SQS and Secrets Manager call the functions made, each checked against the template's policy", () => {
    expect(s.roles.refused).toEqual([]);
    const checked = s.roles.checked.join("\n");
    for (const call of [
      "s3:PutObject",
      "s3:GetObject",
      "s3:ListBucket",
      "sqs:SendMessage",
      "s3:DeleteObject",
    ]) {
      expect(checked, call).toContain(call);
    }
  });
});

describe("every invocation", () => {
  it("ran in its own process on the Node.js major version the template's runtime names", () => {
    expect(s.invocations.length).toBeGreaterThan(0);
    for (const { fn, outcome } of s.invocations) {
      const runtime = s.stack.functions.find((f) => f.logicalId === fn)!.runtime;
      expect(`nodejs${outcome.node.slice(1).split(".")[0]}.x`, fn).toBe(runtime);
    }
  });
});

/** One metric datapoint of an Embedded Metric Format log line. */
interface PublishedMetric {
  namespace: string;
  name: string;
  dimensions: Record<string, string>;
}

/** The metrics in the EMF documents the functions logged (what CloudWatch would extract). */
function emfMetrics(logs: string): PublishedMetric[] {
  const out: PublishedMetric[] = [];
  for (const line of logs.split("\n").filter((l) => l.startsWith('{"_aws"'))) {
    const doc = JSON.parse(line) as Record<string, unknown> & {
      _aws: {
        CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[];
      };
    };
    for (const directive of doc._aws.CloudWatchMetrics) {
      for (const set of directive.Dimensions) {
        for (const metric of directive.Metrics) {
          out.push({
            namespace: directive.Namespace,
            name: metric.Name,
            dimensions: Object.fromEntries(set.map((d) => [d, String(doc[d])])),
          });
        }
      }
    }
  }
  return out;
}

describe("the functions' CloudWatch metrics", () => {
  it("are published per source, with the dimensions the template's alarms watch", () => {
    const published = emfMetrics(s.invocations.map((i) => i.outcome.logs).join("\n"));
    const names = new Set(published.map((p) => p.name));
    for (const name of [
      "WindowsPlanned",
      "PlanningErrors",
      "BackupLagSeconds",
      "WindowsCopied",
      "BytesCopied",
    ]) {
      expect(names, name).toContain(name);
    }
    for (const p of published) {
      expect(p, p.name).toEqual({
        namespace: "FlussonicBackup",
        name: p.name,
        dimensions: {
          service: expect.stringMatching(/^(planner|copier)$/),
          source: expect.stringMatching(/^src[12]$/),
        },
      });
    }
    // Each alarm on these metrics watches a metric and dimensions the functions publish.
    const watched = Object.values(s.stack.resources)
      .filter((r) => r.Type === "AWS::CloudWatch::Alarm" && r.Properties?.Namespace === "FlussonicBackup")
      .map((r) => ({
        name: String(r.Properties!.MetricName),
        dimensions: Object.fromEntries(
          (r.Properties!.Dimensions as { Name: string; Value: string }[]).map((d) => [
            d.Name,
            s.deployment.resolve(d.Value),
          ]),
        ),
      }));
    expect(watched.map((w) => w.name)).toEqual(
      expect.arrayContaining(["BackupLagSeconds", "PlanningErrors"]),
    );
    for (const w of watched.filter((w) => names.has(w.name))) {
      expect(published, `alarm on ${w.name}`).toContainEqual({ namespace: "FlussonicBackup", ...w });
    }
  });

  it("leave no empty flush behind (no Powertools warning in every invocation's log)", () => {
    const warned = s.invocations.filter((i) => i.outcome.logs.includes("No application metrics to publish"));
    expect(warned.map((i) => i.fn)).toEqual([]);
  });
});

describe("the sources' secrets in Lambda", () => {
  it("are read from Secrets Manager at each cold start, never from the environment or into the logs", () => {
    expect(s.invocations.length).toBeGreaterThanOrEqual(3 + COPIER_MAX_RECEIVE_COUNT);
    // One GetSecretValue per source and cold start (each invocation ran in a fresh process): the
    // planner reads every source's secret, a copier its own source's alone; signed with the
    // function's credentials for Secrets Manager in the function's region.
    const readers = (src: Source) =>
      s.invocations.filter((i) => i.fn === s.planner.fn.logicalId || i.fn === src.copier.fn.logicalId);
    for (const src of [s.src1, s.src2]) {
      expect(s.secrets.requests.filter((r) => r.secretId === src.secretName)).toHaveLength(
        readers(src).length,
      );
    }
    expect(s.secrets.requests).toHaveLength(readers(s.src1).length + readers(s.src2).length);
    for (const r of s.secrets.requests) {
      expect(r).toEqual({
        operation: "GetSecretValue",
        secretId: expect.stringMatching(/^flussonic-backup\/src[12]$/),
        signedBy: expect.stringMatching(
          new RegExp(
            `^${DUMMY_CREDENTIALS.accessKeyId}[A-Z0-9]+/\\d{8}/${s.endpoint.region}/secretsmanager$`,
          ),
        ),
      });
    }
    for (const { env, outcome } of s.invocations) {
      for (const secret of [s.src1.secret, s.src2.secret]) {
        expect(Object.entries(env).filter(([, v]) => v.includes(secret))).toEqual([]);
        expect(outcome.logs.includes(secret)).toBe(false);
      }
    }
    // The sources refused nothing: every request carried the secret.
    for (const src of [s.src1, s.src2]) {
      expect(src.sim.requests.length).toBeGreaterThan(0);
      expect(src.sim.requests.filter((r) => r.status === 401)).toEqual([]);
    }
  });

  it("a wrong secret is refused by its source only; a missing one fails the cold start, naming the field", async () => {
    const before = await queueDepth(s.src1.queue.queueUrl);
    s.secrets.secrets.set(s.src1.secretName, `${s.src1.secret}-rotated`);
    const refused = await invoke(s.planner, scheduledEvent());
    const report = plannerReport(refused);
    expect(report.sources[0]).toEqual({ source: "src1", planned: 0, errors: expect.any(Number) });
    expect(report.sources[0]!.errors).toBeGreaterThan(0);
    expect(report.sources[1]).toMatchObject({ source: "src2", errors: 0 });
    expect(s.src1.sim.requests.filter((r) => r.status === 401).length).toBeGreaterThan(0);
    expect(refused.logs).toMatch(/HTTP 401/);

    s.secrets.secrets.delete(s.src1.secretName);
    const missing = await invoke(s.planner, scheduledEvent());
    expect(missing).toMatchObject({
      ok: false,
      errorType: "ConfigError",
      errorMessage: `BACKUP_CONFIG: sources[0].auth.passwordSecret: cannot read secret ${s.src1.secretName}: GetParameterError: Secrets Manager can't find the specified secret.`,
    });
    expect(await queueDepth(s.src1.queue.queueUrl)).toEqual(before);
    s.secrets.secrets.set(s.src1.secretName, s.src1.secret);
  });
});
