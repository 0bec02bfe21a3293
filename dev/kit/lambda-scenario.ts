/**
 * The Lambda bundle tests' set-up (test/e2e/lambda-bundles.test.ts), in two steps so that each test
 * builds what it needs and runs alone:
 *
 * - `buildLambdaTest` (once per file: it bundles): two Flussonic simulators with auth (src1 reached
 *   through a hop that can fail chosen windows with HTTP 500), the test config naming them, and the
 *   stack synthesized from it (dev/kit/lambda-stack.ts).
 * - `startScenario` (once per test): a fresh embedded S3/SQS emulator with the template's buckets
 *   and queues, a hop enforcing each function's role on its S3/SQS calls, a Secrets Manager double
 *   holding the sources' secrets; the shared simulators' and hop's logs and faults cleared.
 *
 * The helpers play what AWS would: the schedule's event, the event source mapping's polling
 * (`drain`), and read the outcome (queue depths, stored objects, EMF metrics).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import {
  GetQueueAttributesCommand,
  type Message,
  SendMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { SQSRecord } from "aws-lambda";
import { expect } from "vitest";
import type { CopyMessage } from "../../functions/domain/archive.ts";
import type { TimeRange } from "../../functions/domain/ranges.ts";
import { BackupStore } from "../../functions/store/backup-store.ts";
import { createS3Client, createSqsClient } from "../../local/aws-clients.ts";
import { type EmbeddedEmulator, startEmbedded } from "../../local/embedded.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";
import { FaultProxy } from "./fault-proxy.ts";
import {
  accessKeyIdOf,
  type Deployment,
  deployToEmulator,
  type EmulatorEndpoint,
  functionEnvironment,
  type InvokeOutcome,
  type InvokeSetup,
  invokeFunction,
  type SynthesizedFunction,
  type SynthesizedStack,
  synthesizeStack,
} from "./lambda-stack.ts";
import { allows, roleStatements } from "./role-policy.ts";
import { RolePolicyProxy } from "./role-policy-proxy.ts";
import { SecretsManagerDouble } from "./secrets-manager-double.ts";
import { SqsEventSource } from "./sqs-event-source.ts";

/** A message nobody planned, written by hand. */
export const BAD_BODY = "copy cam1 from 10:00 please";
export const RETENTION_DAYS = 0.01; // 864 s: a few 300-s windows per stream
export const WINDOW_SECONDS = 300;

/** What one test file builds once: the simulators, src1's fault hop and the synthesized stack. */
export interface LambdaTestBuild {
  dir: string;
  sim1: FlussonicSimulator;
  sim2: FlussonicSimulator;
  /** src1's hop: answers the paths in `failing` with HTTP 500. */
  proxy: FaultProxy;
  password: string;
  token: string;
  stack: SynthesizedStack;
  close(): Promise<void>;
}

export async function buildLambdaTest(): Promise<LambdaTestBuild> {
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
  const proxy = await FaultProxy.start(sim1.url, 500);
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
  return {
    dir,
    sim1,
    sim2,
    proxy,
    password,
    token,
    stack,
    async close() {
      await proxy.close();
      await sim1.close();
      await sim2.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One source of the test config, its simulator, its secret and its queues. */
export interface Source {
  name: "src1" | "src2";
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

export interface Scenario {
  build: LambdaTestBuild;
  stack: SynthesizedStack;
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
  deployment: Deployment;
  planner: InvokeSetup;
  prefix: string;
  bucket: string;
  settleSeconds: number;
  /** Every invocation of this scenario, for the secret and metric checks. */
  invocations: { fn: string; env: Record<string, string>; outcome: InvokeOutcome }[];
  close(): Promise<void>;
}

/** The resource a template value points at through `{Ref}` or `{Fn::GetAtt: [id, ...]}`. */
export function referencedId(value: unknown): string | undefined {
  const v = value as { Ref?: string; "Fn::GetAtt"?: [string, string] } | undefined;
  return v?.Ref ?? v?.["Fn::GetAtt"]?.[0];
}

/**
 * A fresh deployment of the built stack: its own emulator (empty bucket, empty queues), role hop
 * and secrets; the shared simulators' request logs and faults and src1's failing paths cleared.
 */
export async function startScenario(build: LambdaTestBuild): Promise<Scenario> {
  const { stack } = build;
  for (const sim of [build.sim1, build.sim2]) {
    sim.requests.length = 0;
    sim.setFaults({});
  }
  build.proxy.failing.clear();
  build.proxy.failed.length = 0;
  const secrets = await SecretsManagerDouble.start({
    "flussonic-backup/src1": build.password,
    "flussonic-backup/src2": build.token,
  });
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
  const fnById = (id: string | undefined): SynthesizedFunction => {
    const fn = stack.functions.find((f) => f.logicalId === id);
    if (!fn) throw new Error(`no function ${id} in the template`);
    return fn;
  };
  const invocationsDir = mkdtempSync(join(build.dir, "invocations-"));
  const setup = (fn: SynthesizedFunction): InvokeSetup => ({
    fn,
    deployment,
    endpoint,
    secretsManagerEndpoint: secrets.url,
    workDir: invocationsDir,
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
  const source = (name: "src1" | "src2", sim: FlussonicSimulator, secret: string): Source => {
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
  return {
    build,
    stack,
    src1: source("src1", build.sim1, build.password),
    src2: source("src2", build.sim2, build.token),
    proxy: build.proxy,
    roles,
    secrets,
    emulator,
    endpoint,
    s3,
    sqs,
    store: new BackupStore(s3, config.bucket, config.prefix),
    deployment,
    planner: setup(plannerFn),
    prefix: config.prefix,
    bucket: config.bucket,
    settleSeconds: config.settleSeconds,
    invocations: [],
    async close() {
      await emulator.stop();
      await roles.close();
      await secrets.close();
    },
  };
}

/** Invokes and keeps the invocation (its environment and logs) for the secret checks. */
export async function invoke(
  s: Scenario,
  setup: InvokeSetup,
  event: unknown,
  env = functionEnvironment(setup),
  remainingMs?: number,
): Promise<InvokeOutcome> {
  const outcome = await invokeFunction(setup, event, env, remainingMs);
  s.invocations.push({ fn: setup.fn.logicalId, env, outcome });
  return outcome;
}

/** The event EventBridge sends the target of the scheduled rule (or the target's fixed input). */
export function scheduledEvent(s: Scenario): unknown {
  const id = Object.entries(s.stack.resources).find(([, r]) => r.Type === "AWS::Events::Rule")![0];
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

export interface PlannerReport {
  sources: { source: string; planned: number; errors: number }[];
}

/** The planner's answer; a failed invocation fails the test with its error and logs. */
export function plannerReport(out: InvokeOutcome): PlannerReport {
  if (!out.ok) throw new Error(`the planner failed: ${out.errorType}: ${out.errorMessage}\n${out.logs}`);
  return out.result as unknown as PlannerReport;
}

export async function queueDepth(
  s: Scenario,
  url: string,
): Promise<{ visible: number; inFlight: number; delayed: number }> {
  const { Attributes: a } = await s.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["All"] }),
  );
  return {
    visible: Number(a?.ApproximateNumberOfMessages),
    inFlight: Number(a?.ApproximateNumberOfMessagesNotVisible),
    delayed: Number(a?.ApproximateNumberOfMessagesDelayed),
  };
}

export async function getObject(s: Scenario, key: string): Promise<Buffer> {
  const res = await s.s3.send(new GetObjectCommand({ Bucket: s.bucket, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

export async function keysUnder(s: Scenario, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of s.store.listObjects(prefix)) out.push(o.key);
  return out.sort();
}

/** Every message a queue holds now (received: they are invisible afterwards). */
export async function receiveAll(s: Scenario, url: string): Promise<Message[]> {
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

export const rangeOf = (m: { from: number; duration: number }): TimeRange => ({
  from: m.from,
  to: m.from + m.duration,
});

/** One invocation of the copier by the event source: the records, their receive counts, the outcome. */
export interface Delivery {
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
export async function drain(
  s: Scenario,
  src: Source,
  beforeInvoke: (batch: Message[]) => void = () => {},
): Promise<Delivery[]> {
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
    const out = await invoke(s, src.copier, event);
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

/** What the first scheduled planner run did: its report, when it ran, the bad messages beside it. */
export interface FirstPlan {
  report: PlannerReport;
  /** Unix seconds around the invocation. */
  window: { start: number; end: number };
  /** The message nobody planned, waiting in each queue before the run. */
  badBodyIds: { src1: string; src2: string };
}

/** A bad message in each queue, then the planner as the schedule invokes it. */
export async function firstPlan(s: Scenario): Promise<FirstPlan> {
  const { MessageId } = await s.sqs.send(
    new SendMessageCommand({ QueueUrl: s.src1.queue.queueUrl, MessageBody: BAD_BODY }),
  );
  const fifo = await s.sqs.send(
    new SendMessageCommand({
      QueueUrl: s.src2.queue.queueUrl,
      MessageBody: BAD_BODY,
      MessageGroupId: "copies",
    }),
  );
  const start = Math.floor(Date.now() / 1000);
  const report = plannerReport(await invoke(s, s.planner, scheduledEvent(s)));
  const end = Math.ceil(Date.now() / 1000);
  return { report, window: { start, end }, badBodyIds: { src1: MessageId!, src2: fifo.MessageId! } };
}

/** The copies of a first plan: every planned window by message id, and the deliveries. */
export interface Copies {
  planned: { src1: Map<string, CopyMessage>; src2: Map<string, CopyMessage> };
  deliveries: { src1: Delivery[]; src2: Delivery[] };
  /** src1's window that its source fails every time (HTTP 500 at the hop), and its path. */
  poisonedId: string;
  poisonedPath: string;
}

/**
 * The event source mappings drain both queues after `firstPlan`; src1's source fails one window of
 * the first batch every time it is asked for it.
 */
export async function copyAll(s: Scenario, plan: FirstPlan): Promise<Copies> {
  const c: Copies = {
    planned: { src1: new Map(), src2: new Map() },
    deliveries: { src1: [], src2: [] },
    poisonedId: "",
    poisonedPath: "",
  };
  c.deliveries.src1 = await drain(s, s.src1, (batch) => {
    for (const m of batch) {
      if (m.MessageId !== plan.badBodyIds.src1) c.planned.src1.set(m.MessageId!, JSON.parse(m.Body!));
    }
    if (c.poisonedId) return;
    const victim = batch.find((m) => c.planned.src1.has(m.MessageId!))!;
    const w = c.planned.src1.get(victim.MessageId!)!;
    c.poisonedId = victim.MessageId!;
    c.poisonedPath = `/${w.stream}/archive-${w.from}-${w.duration}.${w.format}`;
    s.proxy.failing.add(c.poisonedPath);
  });
  c.deliveries.src2 = await drain(s, s.src2, (batch) => {
    for (const m of batch) {
      if (m.MessageId !== plan.badBodyIds.src2) c.planned.src2.set(m.MessageId!, JSON.parse(m.Body!));
    }
  });
  return c;
}

/** One metric datapoint of an Embedded Metric Format log line. */
export interface PublishedMetric {
  namespace: string;
  name: string;
  dimensions: Record<string, string>;
}

/** The metrics in the EMF documents the functions logged (what CloudWatch would extract). */
export function emfMetrics(logs: string): PublishedMetric[] {
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
