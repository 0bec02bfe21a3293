/**
 * The code that runs in AWS Lambda, run: the stack is synthesized for a test config, each
 * function's bundle is taken from the cloud assembly and invoked in a fresh Node process the way
 * the Lambda runtime does, configured only by the template's environment (references resolved
 * against the embedded S3/SQS emulator), with the Flussonic simulator (auth on) as the source and
 * a Secrets Manager double holding its password. The schedule and the SQS event source mapping
 * are played by the test from the template's rule and mapping (see test/support/).
 *
 * The tests form one scenario and run in order: plan, copy with a failing window and a bad
 * message, redeliver until the dead-letter path, fold the records, then the secret's checks.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
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
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BackupStore } from "../../functions/adapters/backup-store.ts";
import type { CopyMessage } from "../../functions/domain/archive.ts";
import { recordsPrefix, windowKey } from "../../functions/domain/keys.ts";
import {
  clipRanges,
  intersectRanges,
  normalizeRanges,
  subtractRanges,
  type TimeRange,
} from "../../functions/domain/ranges.ts";
import { COPIER_MAX_RECEIVE_COUNT } from "../../functions/lambda/copier-limits.ts";
import { createS3Client, createSqsClient } from "../../local/aws-clients.ts";
import { type EmbeddedEmulator, startEmbedded } from "../../local/embedded.ts";
import { FlussonicSimulator } from "../../tools/simulator/simulator.ts";
import { FaultProxy } from "../support/fault-proxy.ts";
import {
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
} from "../support/lambda-stack.ts";
import { SecretsManagerDouble } from "../support/secrets-manager-double.ts";
import { SqsEventSource } from "../support/sqs-event-source.ts";

const SECRET_NAME = "flussonic-backup/src1";
const RETENTION_DAYS = 0.01; // 864 s: a few 300-s windows per stream
const WINDOW_SECONDS = 300;

interface Scenario {
  dir: string;
  sim: FlussonicSimulator;
  proxy: FaultProxy;
  secrets: SecretsManagerDouble;
  password: string;
  emulator: EmbeddedEmulator;
  endpoint: EmulatorEndpoint;
  s3: S3Client;
  sqs: SQSClient;
  store: BackupStore;
  stack: SynthesizedStack;
  deployment: Deployment;
  planner: InvokeSetup;
  copier: InvokeSetup;
  copyQueue: SqsEventSource;
  deadLetterUrl: string;
  /** The queue's redrive maxReceiveCount from the template. */
  redriveMaxReceiveCount: number;
  prefix: string;
  bucket: string;
  settleSeconds: number;
  /** Every invocation, for the secret checks. */
  invocations: { fn: string; env: Record<string, string>; outcome: InvokeOutcome }[];
}

let s: Scenario;

/** Invokes and keeps the invocation (its environment and logs) for the secret checks. */
async function invoke(setup: InvokeSetup, event: unknown, env = functionEnvironment(setup)) {
  const outcome = await invokeFunction(setup, event, env);
  s.invocations.push({ fn: setup.fn.logicalId, env, outcome });
  return outcome;
}

/** The function a resource of the template points at through `{Ref}` or `{Fn::GetAtt: [id, Arn]}`. */
function referencedId(value: unknown): string | undefined {
  const v = value as { Ref?: string; "Fn::GetAtt"?: [string, string] } | undefined;
  return v?.Ref ?? v?.["Fn::GetAtt"]?.[0];
}

/** The event EventBridge sends a target of a scheduled rule (or the target's fixed input). */
function scheduledEvent(stack: SynthesizedStack, ruleId: string, region: string): unknown {
  const target = (stack.resources[ruleId]!.Properties!.Targets as { Input?: string }[])[0]!;
  if (target.Input) return JSON.parse(target.Input);
  return {
    version: "0",
    id: randomUUID(),
    "detail-type": "Scheduled Event",
    source: "aws.events",
    account: "000000000000",
    time: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
    region,
    resources: [`arn:aws:events:${region}:000000000000:rule/${stack.stackName}-${ruleId}`],
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

async function receiveAll(source: SqsEventSource): Promise<Message[]> {
  const all: Message[] = [];
  for (;;) {
    const batch = await source.receive(10);
    if (batch.length === 0) return all;
    all.push(...batch);
  }
}

const rangeOf = (m: { from: number; duration: number }): TimeRange => ({
  from: m.from,
  to: m.from + m.duration,
});

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "fb-lambda-"));
  const password = randomBytes(16).toString("hex");
  const sim = await FlussonicSimulator.start({
    streams: 2,
    days: 1,
    auth: { basic: { username: "backup", password } },
  });
  const proxy = await FaultProxy.start(sim.url, 500);
  const secrets = await SecretsManagerDouble.start({ [SECRET_NAME]: password });
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
          auth: { type: "basic", username: "backup", passwordSecret: SECRET_NAME },
          streams: "all",
          retentionDays: RETENTION_DAYS,
          maxConcurrentCopies: 2,
        },
      ],
    }),
  );
  const stack = await synthesizeStack(configFile, join(dir, "cdk.out"));

  const emulator = await startEmbedded(undefined);
  const endpoint: EmulatorEndpoint = {
    region: emulator.endpoints.region,
    s3Endpoint: emulator.endpoints.s3Endpoint!,
    sqsEndpoint: emulator.endpoints.sqsEndpoint!,
  };
  const s3 = createS3Client(emulator.endpoints);
  const sqs = createSqsClient(emulator.endpoints);
  const deployment = await deployToEmulator(stack, { s3, sqs }, endpoint);

  // The planner is what the schedule triggers; the copier is what the source's queue feeds.
  const [ruleId] = Object.entries(stack.resources).find(([, r]) => r.Type === "AWS::Events::Rule")!;
  const rule = stack.resources[ruleId]!.Properties!;
  const plannerId = referencedId((rule.Targets as { Arn: unknown }[])[0]!.Arn);
  const mapping = Object.values(stack.resources).find((r) => r.Type === "AWS::Lambda::EventSourceMapping")!
    .Properties!;
  const copierId = referencedId(mapping.FunctionName);
  const queueId = referencedId(mapping.EventSourceArn)!;
  const queue = deployment.queues.get(queueId)!;
  const redrive = queue.properties.RedrivePolicy as { deadLetterTargetArn: unknown; maxReceiveCount: number };
  const deadLetterId = referencedId(redrive.deadLetterTargetArn)!;
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
  const config = JSON.parse(deployment.resolve(fnById(copierId).environment.BACKUP_CONFIG!)) as {
    bucket: string;
    prefix: string;
    settleSeconds: number;
  };
  s = {
    dir,
    sim,
    proxy,
    secrets,
    password,
    emulator,
    endpoint,
    s3,
    sqs,
    store: new BackupStore(s3, config.bucket, config.prefix),
    stack,
    deployment,
    planner: setup(fnById(plannerId)),
    copier: setup(fnById(copierId)),
    copyQueue: new SqsEventSource(sqs, queue, endpoint.region, {
      batchSize: Number(mapping.BatchSize ?? 10),
      reportBatchItemFailures: ((mapping.FunctionResponseTypes as string[] | undefined) ?? []).includes(
        "ReportBatchItemFailures",
      ),
    }),
    deadLetterUrl: deployment.queues.get(deadLetterId)!.url,
    redriveMaxReceiveCount: redrive.maxReceiveCount,
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
  await s.secrets.close();
  await s.sim.close();
  rmSync(s.dir, { recursive: true, force: true });
});

describe("the Lambda functions from the cloud assembly", () => {
  it("are the esbuild bundles of the planner and the copier, on nodejs24.x, configured by the template alone", () => {
    expect(s.stack.functions).toHaveLength(2);
    for (const setup of [s.planner, s.copier]) {
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
    expect(s.copier.fn.description).toMatch(/copier/);
    // The event source mapping must report partial failures, or a failed window would take its
    // whole batch back to the queue.
    expect(s.copyQueue.settings.reportBatchItemFailures).toBe(true);
    expect(s.redriveMaxReceiveCount).toBeGreaterThan(COPIER_MAX_RECEIVE_COUNT);
  });
});

/** Windows the planner queued in the first run (copy messages by message id). */
const planned = new Map<string, CopyMessage>();
const planWindow = { start: 0, end: 0 };
let plannedCount = 0;
/** Message ids of the two messages meant to fail. */
let poisonedId = "";
let badBodyId = "";
let poisonedPath = "";

describe("a backup through the Lambda functions", () => {
  it("the planner, invoked by the EventBridge schedule, queues the missing windows of every DVR stream", async () => {
    // A message nobody planned (written by hand, not JSON) waits in the queue already.
    const { MessageId } = await s.sqs.send(
      new SendMessageCommand({
        QueueUrl: s.copyQueue.queueUrl,
        MessageBody: "copy cam1 from 10:00 please",
      }),
    );
    badBodyId = MessageId!;

    const [ruleId] = Object.entries(s.stack.resources).find(([, r]) => r.Type === "AWS::Events::Rule")!;
    planWindow.start = Math.floor(Date.now() / 1000);
    const out = await invoke(s.planner, scheduledEvent(s.stack, ruleId, s.endpoint.region));
    planWindow.end = Math.ceil(Date.now() / 1000);
    const report = plannerReport(out);
    expect(report.sources).toEqual([{ source: "src1", planned: expect.any(Number), errors: 0 }]);

    // Queued: one message per planned window (read by the copier below; a peek would count as a
    // receive), next to the bad message.
    plannedCount = report.sources[0]!.planned;
    expect(plannedCount).toBeGreaterThanOrEqual(4);
    expect(await queueDepth(s.copyQueue.queueUrl)).toEqual({
      visible: plannedCount + 1,
      inFlight: 0,
      delayed: 0,
    });
  });

  /** Every delivery made by the event source, in order. */
  const deliveries: { ids: string[]; receiveCounts: Record<string, string>; failures: string[] }[] = [];

  it("the copier, fed SQS batches by the event source, copies every window and reports only the failing one", async () => {
    const retained = new Map<string, Message>();
    for (let poll = 0; poll < 40; poll++) {
      const batch = await s.copyQueue.receive(10);
      if (batch.length === 0) {
        if (retained.size === 0) break;
        // Time passes: the failed windows' retry delays end.
        for (const m of retained.values()) await s.copyQueue.elapseVisibility(m);
        retained.clear();
        continue;
      }
      for (const m of batch) {
        if (m.MessageId !== badBodyId) planned.set(m.MessageId!, JSON.parse(m.Body!) as CopyMessage);
      }
      if (!poisonedId) {
        // The source fails one window of the first batch every time it is asked for it.
        const victim = batch.find((m) => planned.has(m.MessageId!))!;
        const w = planned.get(victim.MessageId!)!;
        poisonedId = victim.MessageId!;
        poisonedPath = `/${w.stream}/archive-${w.from}-${w.duration}.${w.format}`;
        s.proxy.failing.add(poisonedPath);
      }
      const out = await invoke(s.copier, s.copyQueue.event(batch));
      expect(out.ok, out.ok ? "" : `${out.errorType}: ${out.errorMessage}\n${out.logs}`).toBe(true);
      const settled = await s.copyQueue.settle(batch, out);
      expect(settled.batchFailure).toBeUndefined();
      for (const id of settled.retained) retained.set(id, batch.find((m) => m.MessageId === id)!);
      deliveries.push({
        ids: batch.map((m) => m.MessageId!),
        receiveCounts: Object.fromEntries(
          batch.map((m) => [m.MessageId!, m.Attributes?.ApproximateReceiveCount ?? "?"]),
        ),
        failures: settled.retained,
      });
    }

    // The windows the planner queued cover what the source recorded within retention, up to the
    // settled edge.
    expect(planned.size).toBe(plannedCount);
    const streams = [...new Set([...planned.values()].map((m) => m.stream))].sort();
    expect(streams).toEqual(["cam1", "cam2"]);
    for (const stream of streams) {
      const windowsOf = [...planned.values()].filter((m) => m.stream === stream).map(rangeOf);
      const mustCover = clipRanges(
        s.sim.rangesOf(stream),
        planWindow.end - RETENTION_DAYS * 86_400 + 1,
        Math.floor((planWindow.start - s.settleSeconds) / WINDOW_SECONDS) * WINDOW_SECONDS,
      );
      expect(subtractRanges(mustCover, normalizeRanges(windowsOf)), `${stream} not planned`).toEqual([]);
    }
    // The first delivery: several records, one failing window reported, the rest acknowledged.
    expect(deliveries[0]!.ids.length).toBeGreaterThanOrEqual(3);
    expect(deliveries[0]!.failures).toEqual([poisonedId]);
    // Every other window and the bad message: delivered once, acknowledged (deleted).
    for (const id of [...planned.keys(), badBodyId].filter((id) => id !== poisonedId)) {
      const got = deliveries.filter((d) => d.ids.includes(id));
      expect(got, `deliveries of ${id}`).toHaveLength(1);
      expect(got[0]!.receiveCounts[id]).toBe("1");
      expect(got[0]!.failures).not.toContain(id);
    }
    // Each window's bytes, as the simulator serves them; nothing else under the source.
    const copied = [...planned.entries()].filter(([id]) => id !== poisonedId).map(([, m]) => m);
    const expectedKeys = copied.map((m) => windowKey(s.prefix, m, m.format)).sort();
    expect(await keysUnder(`${s.prefix}src1/`)).toEqual(expectedKeys);
    for (const m of copied) {
      const got = await getObject(windowKey(s.prefix, m, m.format));
      const expected = s.sim.body(m.stream, m.from, m.duration, m.format);
      expect(got.length, `size of ${m.stream}@${m.from}`).toBe(expected.length);
      expect(expected.length).toBeGreaterThan(0);
      expect(got.equals(expected), `bytes of ${m.stream}@${m.from}`).toBe(true);
    }
  });

  it("redelivers the failing window until the copier dead-letters it at receive 5, before the queue's own redrive", async () => {
    const poisoned = deliveries.filter((d) => d.ids.includes(poisonedId));
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
    expect(await queueDepth(s.copyQueue.queueUrl)).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
    const dlq = new SqsEventSource(s.sqs, { url: s.deadLetterUrl, arn: "" }, s.endpoint.region, {
      batchSize: 10,
      reportBatchItemFailures: false,
    });
    const dead = await receiveAll(dlq);
    const byBody = new Map(dead.map((m) => [m.Body!, m.MessageAttributes ?? {}]));
    expect(dead).toHaveLength(2);
    const window = planned.get(poisonedId)!;
    const windowReason = byBody.get(JSON.stringify(window))?.reason?.StringValue ?? "";
    expect(windowReason).toMatch(/HTTP 500/);
    expect(windowReason).toMatch(`(after ${COPIER_MAX_RECEIVE_COUNT} attempts)`);
    expect(byBody.get(JSON.stringify(window))?.receiveCount?.StringValue).toBe(
      String(COPIER_MAX_RECEIVE_COUNT),
    );
    expect(byBody.get("copy cam1 from 10:00 please")?.reason?.StringValue).toMatch(/^not a copy message/);
    // Nothing of the failed window was stored.
    expect(await getObject(windowKey(s.prefix, window, window.format)).catch(() => "missing")).toBe(
      "missing",
    );
  });

  it("records every copy (key, size, SHA-256); the next planner run folds the records into the manifests", async () => {
    const copied = [...planned.entries()].filter(([id]) => id !== poisonedId).map(([, m]) => m);
    for (const m of copied) {
      const record = await s.store.getRecord(m);
      const bytes = s.sim.body(m.stream, m.from, m.duration, m.format);
      expect(record).toMatchObject({
        source: "src1",
        stream: m.stream,
        from: m.from,
        duration: m.duration,
        format: m.format,
        key: windowKey(s.prefix, m, m.format),
        size: bytes.length,
        sha256: createHash("sha256").update(bytes).digest("hex"),
      });
    }
    const [ruleId] = Object.entries(s.stack.resources).find(([, r]) => r.Type === "AWS::Events::Rule")!;
    const out = await invoke(s.planner, scheduledEvent(s.stack, ruleId, s.endpoint.region));
    const retentionStart = Math.ceil(Date.now() / 1000) - RETENTION_DAYS * 86_400;
    expect(plannerReport(out).sources[0]!.errors).toBe(0);
    expect(await keysUnder(recordsPrefix(s.prefix, "src1"))).toEqual([]);
    const window = planned.get(poisonedId)!;
    for (const stream of ["cam1", "cam2"]) {
      const { manifest } = await s.store.readManifest("src1", stream);
      const mine = copied.filter((m) => m.stream === stream);
      expect(manifest.windows).toBe(mine.length);
      // Covered: every stored window, as far as it is still within retention.
      for (const m of mine) {
        expect(subtractRanges(clipRanges([rangeOf(m)], retentionStart, Infinity), manifest.covered)).toEqual(
          [],
        );
      }
      if (window.stream === stream) expect(intersectRanges([rangeOf(window)], manifest.covered)).toEqual([]);
    }
    // Nothing stored or still leased (the dead-lettered window) is planned again.
    const again = await receiveAll(s.copyQueue);
    for (const m of again) {
      const w = JSON.parse(m.Body!) as CopyMessage;
      const before = [...planned.values()].filter((p) => p.stream === w.stream).map(rangeOf);
      expect(intersectRanges([rangeOf(w)], normalizeRanges(before))).toEqual([]);
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
        dimensions: { service: expect.stringMatching(/^(planner|copier)$/), source: "src1" },
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

describe("the source's secret in Lambda", () => {
  it("is read from Secrets Manager at each cold start, never from the environment or into the logs", () => {
    expect(s.invocations.length).toBeGreaterThanOrEqual(2 + COPIER_MAX_RECEIVE_COUNT);
    // One GetSecretValue per cold start (each invocation ran in a fresh process), signed with the
    // function's credentials for Secrets Manager in the function's region.
    expect(s.secrets.requests).toHaveLength(s.invocations.length);
    for (const r of s.secrets.requests) {
      expect(r).toEqual({
        operation: "GetSecretValue",
        secretId: SECRET_NAME,
        signedBy: expect.stringMatching(
          new RegExp(`^${DUMMY_CREDENTIALS.accessKeyId}/\\d{8}/${s.endpoint.region}/secretsmanager$`),
        ),
      });
    }
    for (const { env, outcome } of s.invocations) {
      expect(Object.entries(env).filter(([, v]) => v.includes(s.password))).toEqual([]);
      expect(outcome.logs.includes(s.password)).toBe(false);
    }
    // The source refused nothing: every request carried the secret's password.
    expect(s.sim.requests.filter((r) => r.status === 401)).toEqual([]);
    expect(s.sim.requests.length).toBeGreaterThan(0);
  });

  it("a wrong secret is refused by the source, and a missing one fails the cold start naming the field", async () => {
    const [ruleId] = Object.entries(s.stack.resources).find(([, r]) => r.Type === "AWS::Events::Rule")!;
    const before = await queueDepth(s.copyQueue.queueUrl);
    s.secrets.secrets.set(SECRET_NAME, `${s.password}-rotated`);
    const refused = await invoke(s.planner, scheduledEvent(s.stack, ruleId, s.endpoint.region));
    const report = plannerReport(refused);
    expect(report).toEqual({ sources: [{ source: "src1", planned: 0, errors: expect.any(Number) }] });
    expect(report.sources[0]!.errors).toBeGreaterThan(0);
    expect(s.sim.requests.filter((r) => r.status === 401).length).toBeGreaterThan(0);
    expect(refused.logs).toMatch(/HTTP 401/);

    s.secrets.secrets.delete(SECRET_NAME);
    const missing = await invoke(s.planner, scheduledEvent(s.stack, ruleId, s.endpoint.region));
    expect(missing).toMatchObject({
      ok: false,
      errorType: "ConfigError",
      errorMessage: `BACKUP_CONFIG: sources[0].auth.passwordSecret: cannot read secret ${SECRET_NAME}: GetParameterError: Secrets Manager can't find the specified secret.`,
    });
    expect(await queueDepth(s.copyQueue.queueUrl)).toEqual(before);
    s.secrets.secrets.set(SECRET_NAME, s.password);
  });
});
