/**
 * The code that runs in AWS Lambda, run: the stack is synthesized for a test config, each
 * function's bundle is taken from the cloud assembly and invoked in a fresh Node process the way
 * the Lambda runtime does, configured only by the template's environment (references resolved
 * against the embedded S3/SQS emulator), with Flussonic simulators (auth on) as the sources and a
 * Secrets Manager double holding their secrets. The schedule and the SQS event source mappings
 * are played by the test from the template's rule and mappings (see dev/kit/lambda-stack.ts,
 * lambda-scenario.ts and sqs-event-source.ts).
 *
 * Two sources: src1 (standard queue, basic auth, reached through a hop that fails one window with
 * HTTP 500) and src2 (a cap of one copy: FIFO queue, bearer token). The stack is bundled once for
 * the file; each test deploys it to a fresh emulator and does what it checks (plan; copy with a
 * failing window and a bad message; fold the records), so each runs alone and in any order. The
 * tests that only read what one backup did share it: a describe block's beforeAll makes it (a plan
 * and a copy of both queues; or that and the next scheduled run) once per file, for whichever of
 * its tests run, and nothing after it changes it.
 */
import { createHash } from "node:crypto";
import { setTimeout } from "node:timers/promises";
import { ListMultipartUploadsCommand } from "@aws-sdk/client-s3";
import { type Message, SendMessageCommand } from "@aws-sdk/client-sqs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  BAD_BODY,
  buildLambdaTest,
  type Copies,
  copyAll,
  emfMetrics,
  type FirstPlan,
  firstPlan,
  getObject,
  invoke,
  keysUnder,
  type LambdaTestBuild,
  plannerReport,
  queueDepth,
  RETENTION_DAYS,
  rangeOf,
  receiveAll,
  referencedId,
  type Scenario,
  type Source,
  scheduledEvent,
  startScenario,
  WINDOW_SECONDS,
} from "../../dev/kit/lambda-scenario.ts";
import { DUMMY_CREDENTIALS, functionEnvironment } from "../../dev/kit/lambda-stack.ts";
import { COPIER_MAX_RECEIVE_COUNT } from "../../functions/config/limits.ts";
import type { CopyMessage } from "../../functions/domain/archive.ts";
import { recordsPrefix, windowKey } from "../../functions/domain/keys.ts";
import type { CopyRecord } from "../../functions/domain/manifest.ts";
import {
  clipRanges,
  intersectRanges,
  normalizeRanges,
  subtractRanges,
} from "../../functions/domain/ranges.ts";

/** A test's share: plan, copy and fold take a few dozen invocations of a fresh Node process each. */
const BACKUP_TIMEOUT = 240_000;

let build: LambdaTestBuild | undefined;
let s: Scenario;
let started: Scenario | undefined;

beforeAll(async () => {
  build = await buildLambdaTest();
}, 240_000);

afterAll(async () => {
  for (const shared of [copiedOnce, backedUpOnce]) await (await shared?.catch(() => undefined))?.s.close();
  await build?.close();
});

afterEach(async () => {
  await started?.close();
  started = undefined;
});

/** This test's own deployment of the stack (closed after the test). */
async function scenario(): Promise<Scenario> {
  started = await startScenario(build!);
  s = started;
  return s;
}

/** A deployment of its own, planned and both queues copied dry (src1 failing one window). */
interface Copied {
  s: Scenario;
  plan: FirstPlan;
  c: Copies;
  /** The paths src1's hop failed (the hop is the file's: a later scenario clears its log). */
  proxyFailed: string[];
}

/** That, then the next scheduled planner run, which folds the records into the manifests. */
interface BackedUp extends Copied {
  /** Each copied window's record before the next run folded it, by window key. */
  records: Map<string, CopyRecord | undefined>;
  next: ReturnType<typeof plannerReport>;
  /** Unix seconds right after the next run. */
  nextAt: number;
  /** The requests the sources served in this backup (the simulators are the file's). */
  requests: Record<Source["name"], Source["sim"]["requests"]>;
}

async function makeCopied(): Promise<Copied> {
  const own = await startScenario(build!);
  const plan = await firstPlan(own);
  const c = await copyAll(own, plan);
  return { s: own, plan, c, proxyFailed: [...own.proxy.failed] };
}

async function makeBackedUp(): Promise<BackedUp> {
  const { s: own, plan, c, proxyFailed } = await makeCopied();
  const records = new Map<string, CopyRecord | undefined>();
  for (const src of [own.src1, own.src2]) {
    for (const m of copiedOf(c, src))
      records.set(windowKey(own.prefix, m, m.format), await own.store.getRecord(m));
  }
  const next = plannerReport(await invoke(own, own.planner, scheduledEvent(own)));
  const nextAt = Math.ceil(Date.now() / 1000);
  const requests = { src1: [...own.src1.sim.requests], src2: [...own.src2.sim.requests] };
  return { s: own, plan, c, proxyFailed, records, next, nextAt, requests };
}

let copiedOnce: Promise<Copied> | undefined;
let backedUpOnce: Promise<BackedUp> | undefined;
/** The shared backups, made once per file by the first beforeAll that asks (closed after the file). */
const copied = () => (copiedOnce ??= makeCopied());
const backedUp = () => (backedUpOnce ??= makeBackedUp());
/** The shared backup this test reads (its scenario becomes `s` for the helpers). */
async function use<T extends Copied>(shared: Promise<T>): Promise<T> {
  const got = await shared;
  s = got.s;
  return got;
}

/** Asserts the stored windows of a source: exactly `copied`, each byte for byte the simulator's. */
async function expectStored(src: Source, copied: CopyMessage[]): Promise<void> {
  const expectedKeys = copied.map((m) => windowKey(s.prefix, m, m.format)).sort();
  expect(await keysUnder(s, `${s.prefix}${src.name}/`)).toEqual(expectedKeys);
  for (const m of copied) {
    const got = await getObject(s, windowKey(s.prefix, m, m.format));
    const expected = src.sim.body(m.stream, m.from, m.duration, m.format);
    expect(expected.length).toBeGreaterThan(0);
    expect(got.length, `size of ${src.name}/${m.stream}@${m.from}`).toBe(expected.length);
    expect(got.equals(expected), `bytes of ${src.name}/${m.stream}@${m.from}`).toBe(true);
  }
}

/** The planned windows of a source cover what it recorded within retention, up to the settled edge. */
function expectPlannedCover(plan: FirstPlan, src: Source, windows: CopyMessage[], streams: string[]): void {
  expect([...new Set(windows.map((m) => m.stream))].sort()).toEqual(streams);
  for (const stream of streams) {
    const mustCover = clipRanges(
      src.sim.rangesOf(stream),
      plan.window.end - RETENTION_DAYS * 86_400 + 1,
      Math.floor((plan.window.start - s.settleSeconds) / WINDOW_SECONDS) * WINDOW_SECONDS,
    );
    const planned = normalizeRanges(windows.filter((m) => m.stream === stream).map(rangeOf));
    expect(subtractRanges(mustCover, planned), `${src.name}/${stream} not planned`).toEqual([]);
  }
}

/** The windows of a source that were stored: every planned one but the one its source fails. */
const copiedOf = (c: Copies, src: Source) =>
  [...c.planned[src.name].entries()].filter(([id]) => id !== c.poisonedId).map(([, m]) => m);

describe("the Lambda functions from the cloud assembly", () => {
  it("are the esbuild bundles of the planner and each source's copier, on nodejs24.x, configured by the template alone", async () => {
    await scenario();
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
    // One copier per source, each fed by its source's queue alone.
    const mappings = Object.values(s.stack.resources).filter(
      (r) => r.Type === "AWS::Lambda::EventSourceMapping",
    );
    expect(new Set(mappings.map((m) => referencedId(m.Properties!.FunctionName))).size).toBe(mappings.length);
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

describe("a backup through the Lambda functions", () => {
  it("the planner, invoked by the EventBridge schedule, queues the missing windows of every source", async () => {
    await scenario();
    // A message nobody planned (written by hand, not JSON) waits in each queue already.
    const plan = await firstPlan(s);
    expect(plan.report.sources).toEqual([
      { source: "src1", planned: expect.any(Number), errors: 0 },
      { source: "src2", planned: expect.any(Number), errors: 0 },
    ]);
    // Queued: one message per planned window (read by the copier in the other tests: a peek would
    // count as a receive), next to the bad message.
    const [p1, p2] = plan.report.sources.map((r) => r.planned) as [number, number];
    expect(p1).toBeGreaterThanOrEqual(4);
    expect(p2).toBeGreaterThanOrEqual(2);
    expect(await queueDepth(s, s.src1.queue.queueUrl)).toEqual({ visible: p1 + 1, inFlight: 0, delayed: 0 });
    expect(await queueDepth(s, s.src2.queue.queueUrl)).toEqual({ visible: p2 + 1, inFlight: 0, delayed: 0 });
  });

  describe("one plan and copy of both queues, read by each test", () => {
    beforeAll(async () => {
      await copied();
    }, BACKUP_TIMEOUT);

    it(
      "the copier, fed SQS batches by the event source, copies every window and reports only the failing one",
      async () => {
        const { plan, c } = await use(copied());
        expect(c.planned.src1.size).toBe(plan.report.sources[0]!.planned);
        expectPlannedCover(plan, s.src1, [...c.planned.src1.values()], ["cam1", "cam2"]);

        // The first delivery: several records, the failing window reported, the rest acknowledged.
        const first = c.deliveries.src1[0]!;
        expect(first.ids.length).toBeGreaterThanOrEqual(3);
        expect(first.failures).toEqual([c.poisonedId]);
        // Every other window and the bad message: delivered once, acknowledged (deleted).
        for (const id of [...c.planned.src1.keys(), plan.badBodyIds.src1].filter(
          (id) => id !== c.poisonedId,
        )) {
          const got = c.deliveries.src1.filter((d) => d.ids.includes(id));
          expect(got, `deliveries of ${id}`).toHaveLength(1);
          expect(got[0]!.receiveCounts[id]).toBe("1");
          expect(got[0]!.failures).not.toContain(id);
        }
        await expectStored(s.src1, copiedOf(c, s.src1));
      },
      BACKUP_TIMEOUT,
    );

    it(
      "copies the FIFO queue of a source capped at one copy (the single message group), dead-lettering its bad message",
      async () => {
        const { plan, c } = await use(copied());
        const badBodyId2 = plan.badBodyIds.src2;
        expect(c.planned.src2.size).toBe(plan.report.sources[1]!.planned);
        expectPlannedCover(plan, s.src2, [...c.planned.src2.values()], ["cam1"]);
        // The planner's sends got the message group the FIFO queue needs (functions/lambda/environment.ts).
        for (const d of c.deliveries.src2) {
          expect(d.failures).toEqual([]);
          for (const r of d.records) expect(r.attributes.MessageGroupId).toBe("copies");
        }
        await expectStored(s.src2, [...c.planned.src2.values()]);
        expect(await queueDepth(s, s.src2.queue.queueUrl)).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
        // The bad message went to the FIFO DLQ at once, with the reason, named after its source.
        const dead = await receiveAll(s, s.src2.deadLetterUrl);
        expect(dead.map((m) => [m.Body, m.MessageAttributes?.reason?.StringValue])).toEqual([
          [BAD_BODY, expect.stringMatching(/^not a copy message/)],
        ]);
        expect(c.deliveries.src2.flatMap((d) => d.ids).filter((id) => id === badBodyId2)).toHaveLength(1);
        expect(
          c.deliveries.src2.flatMap((d) => d.records).find((r) => r.messageId === badBodyId2)!.eventSourceARN,
        ).toMatch(/:flussonic-backup-src2\.fifo$/);
      },
      BACKUP_TIMEOUT,
    );

    it(
      "redelivers the failing window until the copier dead-letters it at receive 5, before the queue's own redrive",
      async () => {
        const { c, proxyFailed } = await use(copied());
        const poisoned = c.deliveries.src1.filter((d) => d.ids.includes(c.poisonedId));
        expect(poisoned.map((d) => d.receiveCounts[c.poisonedId])).toEqual(
          Array.from({ length: COPIER_MAX_RECEIVE_COUNT }, (_, i) => String(i + 1)),
        );
        // Retained (not deleted) after each failed attempt; acknowledged once dead-lettered.
        expect(poisoned.map((d) => d.failures.includes(c.poisonedId))).toEqual([
          ...Array(COPIER_MAX_RECEIVE_COUNT - 1).fill(true),
          false,
        ]);
        // The source was asked for that window on each delivery and answered 500.
        expect(proxyFailed).toEqual(Array(COPIER_MAX_RECEIVE_COUNT).fill(c.poisonedPath));
        // The copy queue is empty; the dead-letter queue holds the window and the bad message, each
        // with the copier's reason (the queue's redrive, at receive 6, adds none).
        expect(await queueDepth(s, s.src1.queue.queueUrl)).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
        const dead = await receiveAll(s, s.src1.deadLetterUrl);
        const byBody = new Map(dead.map((m) => [m.Body!, m.MessageAttributes ?? {}]));
        expect(dead).toHaveLength(2);
        const window = c.planned.src1.get(c.poisonedId)!;
        const windowReason = byBody.get(JSON.stringify(window))?.reason?.StringValue ?? "";
        expect(windowReason).toMatch(/HTTP 500/);
        expect(windowReason).toMatch(`(after ${COPIER_MAX_RECEIVE_COUNT} attempts)`);
        expect(byBody.get(JSON.stringify(window))?.receiveCount?.StringValue).toBe(
          String(COPIER_MAX_RECEIVE_COUNT),
        );
        expect(byBody.get(BAD_BODY)?.reason?.StringValue).toMatch(/^not a copy message/);
        // Nothing of the failed window was stored.
        expect(await getObject(s, windowKey(s.prefix, window, window.format)).catch(() => "missing")).toBe(
          "missing",
        );
      },
      BACKUP_TIMEOUT,
    );
  });

  describe("a plan, a copy and the next scheduled run, read by the test", () => {
    beforeAll(async () => {
      await backedUp();
    }, BACKUP_TIMEOUT);

    it(
      "records every copy (key, size, SHA-256); the next planner run folds the records into the manifests",
      async () => {
        const { c, records, next: report, nextAt } = await use(backedUp());
        for (const src of [s.src1, s.src2]) {
          for (const m of copiedOf(c, src)) {
            const bytes = src.sim.body(m.stream, m.from, m.duration, m.format);
            expect(records.get(windowKey(s.prefix, m, m.format))).toMatchObject({
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
        const retentionStart = nextAt - RETENTION_DAYS * 86_400;
        expect(report.sources.map((r) => r.errors)).toEqual([0, 0]);
        const window = c.planned.src1.get(c.poisonedId)!;
        for (const [src, streams] of [
          [s.src1, ["cam1", "cam2"]],
          [s.src2, ["cam1"]],
        ] as const) {
          expect(await keysUnder(s, recordsPrefix(s.prefix, src.name))).toEqual([]);
          for (const stream of streams) {
            const { manifest } = await s.store.readManifest(src.name, stream);
            const mine = copiedOf(c, src).filter((m) => m.stream === stream);
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
          for (const m of await receiveAll(s, src.queue.queueUrl)) {
            const w = JSON.parse(m.Body!) as CopyMessage;
            const before = [...c.planned[src.name].values()].filter((p) => p.stream === w.stream);
            expect(intersectRanges([rangeOf(w)], normalizeRanges(before.map(rangeOf)))).toEqual([]);
          }
        }
      },
      BACKUP_TIMEOUT,
    );
  });

  it("a paused source's window is deferred back onto its own queue, not retried into the dead-letter queue", async () => {
    await scenario();
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
      queue: await queueDepth(s, s.src1.queue.queueUrl),
      dlq: await queueDepth(s, s.src1.deadLetterUrl),
    };
    const out = await invoke(s, s.src1.copier, s.src1.queue.event(batch));
    await s.store.writeControl("src1", undefined);
    expect(s.roles.refused).toEqual([]);
    expect(out).toMatchObject({ ok: true, result: { batchItemFailures: [] } });
    expect((await s.src1.queue.settle(batch, out)).retained).toEqual([]);
    expect(out.logs).toMatch(/window deferred/);
    // The window waits on its queue as a new, delayed message; nothing went to the DLQ.
    expect(await queueDepth(s, s.src1.queue.queueUrl)).toEqual({
      ...before.queue,
      inFlight: before.queue.inFlight - 1,
      delayed: before.queue.delayed + 1,
    });
    expect(await queueDepth(s, s.src1.deadLetterUrl)).toEqual(before.dlq);
    expect(await getObject(s, windowKey(s.prefix, window, window.format)).catch(() => "missing")).toBe(
      "missing",
    );
  }, 60_000);

  it("stops a copy 30 s before the function's timeout: nothing stored, no upload left, the window retried", async () => {
    await scenario();
    // A one-hour window of src2 (28.8 MB at 64 kbit/s) whose download stalls after 13 MiB. Larger
    // than the copier's 24 MiB of memory buffers, it is spooled to /tmp (spoolMiB, 256 by default)
    // to go up in one PutObject once downloaded: no multipart upload is started (before the spool:
    // a first part was uploaded by then, and the stop aborted its upload). The invocation
    // starts with 40 s left, as if it had run for 860 s, so the copier's own stop comes about 10 s
    // in (time for a cold start, 13 MiB and the first part on a loaded machine), long before the
    // body's idle timeout.
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
    await s.sqs.send(
      new SendMessageCommand({
        QueueUrl: s.src2.queue.queueUrl,
        MessageBody: JSON.stringify(window),
        MessageGroupId: "timeout-test",
        MessageDeduplicationId: `timeout-test-${now}`,
      }),
    );
    const key = windowKey(s.prefix, window, window.format);
    let batch: Message[] = [];
    await expect
      .poll(async () => {
        batch = await s.src2.queue.receive(10);
        return batch.map((m) => m.Body);
      })
      .toEqual([JSON.stringify(window)]);
    s.src2.sim.setFaults({ stallAfterBytes: 13 * 1024 * 1024, bodyFaultNext: 1 });
    const uploadsOfWindow = async () =>
      (await s.s3.send(new ListMultipartUploadsCommand({ Bucket: s.bucket, Prefix: key }))).Uploads ?? [];
    // Watch the bucket while the copier runs: the multipart upload it starts.
    let uploads = 0;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        uploads = Math.max(uploads, (await uploadsOfWindow()).length);
        await setTimeout(100);
      }
    })();
    const out = await invoke(
      s,
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
    expect(uploads, "a spooled window starts no multipart upload").toBe(0);
    expect(await uploadsOfWindow()).toEqual([]);
    expect(await getObject(s, key).catch(() => "missing")).toBe("missing");
    expect(s.roles.refused).toEqual([]);
  }, 60_000);
});

describe("the functions' roles", () => {
  beforeAll(async () => {
    await backedUp();
  }, BACKUP_TIMEOUT);

  it(
    "allowed every S3, SQS and Secrets Manager call the functions made, each checked against the template's policy",
    async () => {
      await use(backedUp());
      expect(s.roles.refused).toEqual([]);
      const checked = s.roles.checked.join("\n");
      for (const call of [
        "s3:PutObject",
        "s3:GetObject",
        "s3:ListBucket",
        "sqs:SendMessage",
        "s3:DeleteObject",
        "secretsmanager:GetSecretValue",
      ]) {
        expect(checked, call).toContain(call);
      }
    },
    BACKUP_TIMEOUT,
  );
});

describe("every invocation", () => {
  beforeAll(async () => {
    await backedUp();
  }, BACKUP_TIMEOUT);

  it(
    "ran in its own process on the Node.js major version the template's runtime names",
    async () => {
      await use(backedUp());
      expect(new Set(s.invocations.map((i) => i.fn)).size).toBe(3);
      for (const { fn, outcome } of s.invocations) {
        const runtime = s.stack.functions.find((f) => f.logicalId === fn)!.runtime;
        expect(`nodejs${outcome.node.slice(1).split(".")[0]}.x`, fn).toBe(runtime);
      }
    },
    BACKUP_TIMEOUT,
  );
});

describe("the functions' CloudWatch metrics", () => {
  beforeAll(async () => {
    await backedUp();
  }, BACKUP_TIMEOUT);

  it(
    "are published per source, with the dimensions the template's alarms watch",
    async () => {
      await use(backedUp());
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
    },
    BACKUP_TIMEOUT,
  );

  it(
    "leave no empty flush behind (no Powertools warning in every invocation's log)",
    async () => {
      await use(backedUp());
      expect(s.invocations.length).toBeGreaterThan(0);
      const warned = s.invocations.filter((i) =>
        i.outcome.logs.includes("No application metrics to publish"),
      );
      expect(warned.map((i) => i.fn)).toEqual([]);
    },
    BACKUP_TIMEOUT,
  );
});

describe("the sources' secrets in Lambda", () => {
  describe("after a backup, read by the test", () => {
    beforeAll(async () => {
      await backedUp();
    }, BACKUP_TIMEOUT);

    it(
      "are read from Secrets Manager at each cold start, never from the environment or into the logs",
      async () => {
        const { requests } = await use(backedUp());
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
          expect(requests[src.name].length).toBeGreaterThan(0);
          expect(requests[src.name].filter((r) => r.status === 401)).toEqual([]);
        }
      },
      BACKUP_TIMEOUT,
    );
  });

  it("a wrong secret is refused by its source only; a missing one fails the cold start, naming the field", async () => {
    await scenario();
    const before = await queueDepth(s, s.src1.queue.queueUrl);
    s.secrets.secrets.set(s.src1.secretName, `${s.src1.secret}-rotated`);
    const refused = await invoke(s, s.planner, scheduledEvent(s));
    const report = plannerReport(refused);
    expect(report.sources[0]).toEqual({ source: "src1", planned: 0, errors: expect.any(Number) });
    expect(report.sources[0]!.errors).toBeGreaterThan(0);
    expect(report.sources[1]).toMatchObject({ source: "src2", errors: 0 });
    expect(s.src1.sim.requests.filter((r) => r.status === 401).length).toBeGreaterThan(0);
    expect(refused.logs).toMatch(/HTTP 401/);

    s.secrets.secrets.delete(s.src1.secretName);
    const missing = await invoke(s, s.planner, scheduledEvent(s));
    expect(missing).toMatchObject({
      ok: false,
      errorType: "ConfigError",
      errorMessage: `BACKUP_CONFIG: sources[0].auth.passwordSecret: cannot read secret ${s.src1.secretName}: GetParameterError: Secrets Manager can't find the specified secret.`,
    });
    expect(await queueDepth(s, s.src1.queue.queueUrl)).toEqual(before);
  });
});
