/**
 * Each server's cap across copier invocations (docs/central.md, "Each server's cap"): the stack is
 * synthesized for a config with a Flussonic Central source (two servers, eachServer cap 2, fleet
 * cap 6) and a `kind: "server"` source, deployed to the embedded emulator (fauxqs, which has real
 * FIFO queues: one message of a group in flight at a time), the planner invoked as the schedule
 * does, then the copier invoked by six pollers at once, as the SQS event source mapping does up to
 * its maximum concurrency, each invocation a fresh Node process (dev/kit/lambda-runner.ts).
 *
 * No server has more than 2 copies in flight (messages received and not yet settled: the test
 * sees 6 and 3 when the central source's queue is standard, as before) nor, by its own count, more
 * than 2 archive exports at once; every planned window is exported once and stored; the server
 * source's standard queue carries no message group.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { ReceiveMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { referencedId } from "../../dev/kit/lambda-scenario.ts";
import {
  type Deployment,
  deployToEmulator,
  type EmulatorEndpoint,
  type InvokeSetup,
  invokeFunction,
  type SynthesizedStack,
  synthesizeStack,
} from "../../dev/kit/lambda-stack.ts";
import { SqsEventSource } from "../../dev/kit/sqs-event-source.ts";
import type { CopyMessage } from "../../functions/domain/archive.ts";
import { createS3Client, createSqsClient } from "../../local/aws-clients.ts";
import { type EmbeddedEmulator, startEmbedded } from "../../local/embedded.ts";
import { CentralSimulator } from "../../simulator/central.ts";
import { FlussonicSimulator, type SimRequest } from "../../simulator/simulator.ts";

const EACH_SERVER = 2;
const FLEET = 6;
const POLLERS = FLEET;

let dir: string;
let central: CentralSimulator;
let servers: { hostname: string; sim: FlussonicSimulator }[];
let plain: FlussonicSimulator;
let stack: SynthesizedStack;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "fb-central-fifo-"));
  const now = Math.floor(Date.now() / 1000);
  // Recorded for a day, still recording: every stream has windows within the 518 s retention.
  const sim = (streams: number) =>
    FlussonicSimulator.start({
      streams: Array.from({ length: streams }, (_, i) => ({
        name: `cam${i + 1}`,
        ranges: [{ from: now - 86_400, to: Number.POSITIVE_INFINITY }],
      })),
      days: 1,
      bitrateBps: 32_000,
    });
  servers = [
    { hostname: "a.example", sim: await sim(3) },
    { hostname: "b.example", sim: await sim(1) },
  ];
  central = await CentralSimulator.start();
  for (const s of servers) central.addServer(s);
  plain = await sim(2);
  const configFile = join(dir, "fleet.json");
  writeFileSync(
    configFile,
    JSON.stringify({
      bucket: "fb-central-fifo",
      prefix: "flussonic/",
      schedule: "rate(5 minutes)",
      maxWindowSeconds: 300,
      sources: [
        {
          name: "fleet",
          kind: "central",
          url: central.url,
          retentionDays: 0.006,
          maxConcurrentCopies: FLEET,
          maxBandwidthMbps: 1000,
          eachServer: { maxConcurrentCopies: EACH_SERVER, maxBandwidthMbps: 8 },
        },
        { name: "plain", url: plain.url, retentionDays: 0.01, maxConcurrentCopies: 2 },
      ],
    }),
  );
  stack = await synthesizeStack(configFile, join(dir, "cdk.out"));
}, 240_000);

afterAll(async () => {
  for (const s of servers ?? []) await s.sim.close();
  await plain?.close();
  await central?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Deployed {
  emulator: EmbeddedEmulator;
  sqs: SQSClient;
  s3: S3Client;
  deployment: Deployment;
  planner: InvokeSetup;
  queues: Map<string, { events: SqsEventSource; copier: InvokeSetup }>;
}

async function deploy(): Promise<Deployed> {
  const emulator = await startEmbedded(undefined);
  const endpoint: EmulatorEndpoint = {
    region: emulator.endpoints.region,
    s3Endpoint: emulator.endpoints.s3Endpoint!,
    sqsEndpoint: emulator.endpoints.sqsEndpoint!,
  };
  const sqs = createSqsClient(emulator.endpoints);
  const s3 = createS3Client(emulator.endpoints);
  const deployment = await deployToEmulator(stack, { s3, sqs }, endpoint);
  const setup = (logicalId: string): InvokeSetup => ({
    fn: stack.functions.find((f) => f.logicalId === logicalId)!,
    deployment,
    endpoint,
    // No source has a secret: the Secrets Manager stand-in is never asked.
    secretsManagerEndpoint: "http://127.0.0.1:9",
    workDir: join(dir, "invocations"),
  });
  const [rule] = Object.values(stack.resources).filter((r) => r.Type === "AWS::Events::Rule");
  const planner = setup(referencedId((rule!.Properties!.Targets as { Arn: unknown }[])[0]!.Arn)!);
  const queueUrls = JSON.parse(deployment.resolve(planner.fn.environment.QUEUE_URLS!)) as Record<
    string,
    { url: string }
  >;
  const queues = new Map<string, { events: SqsEventSource; copier: InvokeSetup }>();
  for (const m of Object.values(stack.resources).filter(
    (r) => r.Type === "AWS::Lambda::EventSourceMapping",
  )) {
    const p = m.Properties!;
    const queue = deployment.queues.get(referencedId(p.EventSourceArn)!)!;
    const source = Object.entries(queueUrls).find(([, q]) => q.url === queue.url)![0];
    queues.set(source, {
      events: new SqsEventSource(sqs, queue, endpoint.region, {
        batchSize: Number(p.BatchSize),
        reportBatchItemFailures: true,
      }),
      copier: setup(referencedId(p.FunctionName)!),
    });
  }
  return { emulator, sqs, s3, deployment, planner, queues };
}

/** The most archive exports a server had running at once (from its request log). */
function peakExports(requests: readonly SimRequest[]): number {
  const edges = requests
    .filter((r) => r.kind === "archive")
    .flatMap((r) => [
      [r.startedAt, 1],
      [r.endedAt, -1],
    ])
    .sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  let now = 0;
  let peak = 0;
  for (const [, d] of edges) {
    now += d!;
    peak = Math.max(peak, now);
  }
  return peak;
}

describe("a central source in AWS: each server's cap across copier invocations", () => {
  it("never has more than eachServer.maxConcurrentCopies exports of one server, with six copiers at once", async () => {
    const d = await deploy();
    try {
      const fleet = d.queues.get("fleet")!;
      expect(fleet.events.queueUrl.endsWith(".fifo")).toBe(true);
      const planned = await invokeFunction(d.planner, {
        "detail-type": "Scheduled Event",
        source: "aws.events",
        time: new Date().toISOString(),
        detail: {},
      });
      expect(
        planned.ok,
        planned.ok ? "" : `${planned.errorType}: ${planned.errorMessage}\n${planned.logs}`,
      ).toBe(true);
      const report = (planned as unknown as { result: { sources: { source: string; planned: number }[] } })
        .result;
      const fleetPlanned = report.sources.find((s) => s.source === "fleet")!.planned;
      // Enough windows of each server for six pollers to run more than two of its copies at once.
      expect(fleetPlanned, JSON.stringify(report)).toBeGreaterThanOrEqual(12);
      for (const s of servers) s.sim.requests.length = 0;

      // The event source mapping at its maximum concurrency: six pollers, one message each.
      const copied: { m: CopyMessage; group: string }[] = [];
      // Copies of each server in flight (a message received and not yet settled), and the most.
      const inFlight = new Map<string, number>();
      const peakInFlight = new Map<string, number>();
      const poller = async () => {
        for (let idle = 0; copied.length < fleetPlanned; ) {
          // A group whose message is in flight gives nothing: an empty receive while others copy.
          const [m] = await fleet.events.receive(1);
          if (!m) {
            if (++idle > 1200) throw new Error(`the fleet's queue did not drain: ${copied.length} copied`);
            await sleep(100);
            continue;
          }
          const message = JSON.parse(m.Body!) as CopyMessage;
          const server = message.stream.split("/")[0]!;
          const now = (inFlight.get(server) ?? 0) + 1;
          inFlight.set(server, now);
          peakInFlight.set(server, Math.max(peakInFlight.get(server) ?? 0, now));
          try {
            const out = await invokeFunction(fleet.copier, fleet.events.event([m]));
            expect(out.ok, out.ok ? "" : `${out.errorType}: ${out.errorMessage}\n${out.logs}`).toBe(true);
            const settled = await fleet.events.settle([m], out);
            expect(settled.retained, JSON.stringify(out)).toEqual([]);
          } finally {
            inFlight.set(server, inFlight.get(server)! - 1);
          }
          copied.push({ m: message, group: String(m.Attributes?.MessageGroupId) });
        }
      };
      await Promise.all(Array.from({ length: POLLERS }, poller));
      expect((await fleet.events.receive(10)).length, "nothing left in the queue").toBe(0);

      // Each server at or under its cap: the copies the queue let run at once (an invocation holds
      // one copy, so this bounds the exports), and the exports the servers counted themselves.
      // A window's export ends at the server once its bytes are in the kernel's socket buffers,
      // before the copier has read them, so the servers' own count is the weaker of the two.
      expect(Object.fromEntries(peakInFlight)).toEqual({
        "a.example": EACH_SERVER,
        "b.example": EACH_SERVER,
      });
      for (const s of servers) {
        expect(peakExports(s.sim.requests), s.hostname).toBeLessThanOrEqual(EACH_SERVER);
        expect(s.sim.meter.peakActive, s.hostname).toBeLessThanOrEqual(EACH_SERVER);
      }
      // Every window copied once: one export each, as many as planned.
      expect(copied).toHaveLength(fleetPlanned);
      const exports = servers.flatMap((s) =>
        s.sim.requests.filter((r) => r.kind === "archive").map((r) => `${s.hostname}${r.path}`),
      );
      expect(new Set(exports).size).toBe(exports.length);
      expect(exports).toHaveLength(fleetPlanned);
      const listed = await d.s3.send(
        new ListObjectsV2Command({ Bucket: "fb-central-fifo", Prefix: "flussonic/fleet/", MaxKeys: 1000 }),
      );
      const stored = (listed.Contents ?? []).filter(
        (o) => /\.mp4$/.test(o.Key!) && !o.Key!.includes("/.backup/"),
      );
      expect(stored).toHaveLength(fleetPlanned);
      // Groups as designed: `<server>#<k>`, k < eachServer.maxConcurrentCopies, the server's own.
      for (const { m, group } of copied) {
        const [server] = m.stream.split("/");
        expect(group).toMatch(new RegExp(`^${server!.replaceAll(".", "\\.")}#[01]$`));
      }

      // The server source: its standard queue, its windows without a message group.
      const other = d.queues.get("plain")!;
      expect(other.events.queueUrl.endsWith(".fifo")).toBe(false);
      const res = await d.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: other.events.queueUrl,
          MaxNumberOfMessages: 10,
          MessageSystemAttributeNames: ["All"],
        }),
      );
      expect(res.Messages?.length).toBeGreaterThan(0);
      for (const m of res.Messages ?? []) expect(m.Attributes?.MessageGroupId).toBeUndefined();
    } finally {
      d.sqs.destroy();
      d.s3.destroy();
      await d.emulator.stop();
    }
  }, 300_000);
});
