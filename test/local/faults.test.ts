/**
 * Fault injection: the local runtime against the simulator and the embedded emulator while the
 * source, the queue or the planner misbehave. Each scenario checks the end state: exact bytes for
 * every window the source could serve, a dead-letter entry with a readable reason for each it could
 * not, no partial object, no orphaned multipart upload, no secret in any log line. The S3 rows run
 * the copiers and planner through dev/kit/s3-fault-proxy.ts and also check the bookkeeping:
 * every catalog entry names an object that is there with its size and ETag, each stored window is
 * listed exactly once, the manifest covers what is stored, and S3 errors never back the source off.
 * `FAULT_RUNS=n npm run test:faults` repeats every scenario n times.
 */

import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SetQueueAttributesCommand,
} from "@aws-sdk/client-sqs";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { expectExactCopies, leakedSecrets, storedWindows } from "../../dev/kit/backup-checks.ts";
import { expectHonestBookkeeping, expectManifestClaimsOnlyStored } from "../../dev/kit/bookkeeping-checks.ts";
import { type Harness, type HarnessOptions, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { type FaultRule, S3FaultProxy } from "../../dev/kit/s3-fault-proxy.ts";
import { Secret } from "../../functions/config/config.ts";
import { clipRanges } from "../../functions/domain/ranges.ts";
import type { PlanReport } from "../../functions/planner/plan-backup.ts";
import { formatSummary, type OnceSummary, runOnce } from "../../local/once.ts";
import type { LocalRuntime } from "../../local/runtime.ts";
import type { SimFaults } from "../../simulator/simulator.ts";

const RUNS = Number(process.env.FAULT_RUNS ?? 1);
const PASSWORD = "correct-horse-battery";
const NOW = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
const STREAMS = [
  // 80 kbit/s: a 10-minute window is 6 MB, above the 5 MiB part size, so copies are multipart.
  { name: "cam1", bitrateBps: 80_000, ranges: [{ from: NOW - 2 * HOUR, to: NOW + 1 }] },
  {
    name: "cam2",
    bitrateBps: 40_000,
    ranges: [
      { from: NOW - 2 * HOUR, to: NOW - 31 * 60 + 7 },
      { from: NOW - 29 * 60, to: NOW + 1 },
    ],
  },
];

interface Row {
  fault: string;
  runs: number;
  correct: number;
  deadLettered: number;
  corrupt: number;
}
const table = new Map<string, Row>();
function row(fault: string): Row {
  let r = table.get(fault);
  if (!r) {
    r = { fault, runs: 0, correct: 0, deadLettered: 0, corrupt: 0 };
    table.set(fault, r);
  }
  return r;
}
afterAll(() => {
  const lines = [...table.values()].map(
    (r) =>
      `${r.fault.padEnd(44)} ${String(r.runs).padStart(4)} ${String(r.correct).padStart(15)} ${String(r.deadLettered).padStart(13)} ${String(r.corrupt).padStart(8)}`,
  );
  process.stdout.write(
    `\n${"fault".padEnd(44)} runs windows correct dead-lettered  corrupt\n${lines.join("\n")}\n`,
  );
});

/**
 * The copiers' runtime in the source scenarios: 5 MiB parts, and a source's back-off pause a tenth
 * of production's (100 ms, doubling while overloads continue): these scenarios check what is stored
 * and dead-lettered, not how long the source was left alone (test/source/caps.test.ts checks the
 * back-off itself).
 */
const RUNTIME = { partSize: 5 * 1024 * 1024, sourcePauseMs: 100 };

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function harness(o: HarnessOptions = {}): Promise<{ h: Harness; rt: LocalRuntime }> {
  h = await startHarness({
    sim: { streams: STREAMS, ...o.sim },
    ...o,
    source: { retentionDays: 1 / 24, ...o.source },
  });
  const rt = await h.runtime(RUNTIME);
  return { h, rt };
}

/** Checks the end state; counts byte-exact windows into the fault's row. */
async function checkEndState(
  hh: Harness,
  fault: string,
  o: { partial?: boolean; deadLettered?: number } = {},
) {
  const r = row(fault);
  r.runs++;
  const now = hh.clock.now();
  const boundary = Math.floor((now - hh.config.settleSeconds) / 600) * 600;
  let correct = 0;
  for (const stream of STREAMS.map((s) => s.name)) {
    if (!o.partial) {
      // Every stored window byte for byte, and every second the source could serve stored.
      const exact = await expectExactCopies(
        hh,
        stream,
        clipRanges(hh.sim.rangesOf(stream), now - HOUR, boundary),
      );
      correct += exact.length;
      continue;
    }
    // Windows dead-lettered or gone leave holes (and the source may since have deleted the start
    // of a stored window): then only the stored windows' bytes are checked, and below that the
    // manifest claims only what is stored.
    for (const w of await storedWindows(hh, stream)) {
      const same = (await hh.getObject(w.key)).equals(hh.sim.body(stream, w.from, w.duration, "mp4"));
      if (same) correct++;
      else r.corrupt++;
    }
  }
  await expectManifestClaimsOnlyStored(
    hh,
    hh.store(),
    STREAMS.map((s) => s.name),
  );
  r.correct += correct;
  const dead = hh.tally.events.filter((e) => e.type === "dead-lettered");
  r.deadLettered += dead.length;
  expect(r.corrupt).toBe(0);
  expect(dead.length).toBe(o.deadLettered ?? 0);
  for (const d of dead) expect(d.reason.length).toBeGreaterThan(10);
  expect(hh.openMultipartUploads(), "orphaned multipart uploads").toEqual([]);
  expect(leakedSecrets(hh.logs, [PASSWORD])).toEqual([]);
  return correct;
}

/** Runs a scenario with the source's faults set, then clears them and lets the backup finish. */
async function sourceFault(fault: string, faults: SimFaults, source: Record<string, unknown> = {}) {
  const { h: hh, rt } = await harness({ source });
  hh.sim.setFaults(faults);
  const first = await runOnce(rt, hh.tally);
  expect(first.deadLettered).toEqual([]);
  expect(first.retries, "the fault fired and was retried").toBeGreaterThan(0);
  hh.sim.setFaults({});
  const second = await runOnce(rt, hh.tally);
  expect(second.planned).toBe(0);
  await checkEndState(hh, fault);
}

/**
 * One S3 scenario: the copiers and the planner talk to S3 through the fault proxy with `rules`;
 * a second run with the faults cleared finds nothing to plan; then the end state and bookkeeping.
 */
async function s3Fault(
  fault: string,
  rules: FaultRule[],
  o: {
    maxReceiveCount?: number;
    copyTimeoutSeconds?: number;
    retryBaseSeconds?: number;
    deadLettered?: (planned: number) => number;
    check?: (run: OnceSummary, proxy: S3FaultProxy) => void;
    /**
     * Windows spooled to disk (the default path) up to this size in one PutObject, larger ones in
     * parts of 5 MiB from the spool: cam1's (6 MB; with 1 MiB part buffers, over the 5 MiB a window
     * must exceed to be spooled), not cam2's (3 MB, one PutObject from memory). Else (the memory
     * path) fixed parts from memory buffers.
     */
    spool?: { singleMaxBytes: number };
  } = {},
): Promise<{ run: OnceSummary; proxy: S3FaultProxy }> {
  const { h: hh, rt: direct } = await harness();
  const proxy = await S3FaultProxy.start(hh.emulator.endpoints.s3Endpoint!);
  const spoolDir = o.spool ? mkdtempSync(join(tmpdir(), "fb-faults-spool-")) : undefined;
  try {
    const rt = await hh.runtime({
      // The faults hit multipart uploads: fixed parts, as small windows would go up in one PutObject
      // (or spooled: see `spool`).
      ...(spoolDir && o.spool
        ? {
            partSize: 1024 * 1024,
            spoolDir,
            spool: { singleMaxBytes: o.spool.singleMaxBytes, partBytes: 5 * 1024 * 1024 },
          }
        : { partSize: 5 * 1024 * 1024, fixedParts: true }),
      endpoints: { ...hh.emulator.endpoints, s3Endpoint: proxy.url },
      ...(o.maxReceiveCount ? { maxReceiveCount: o.maxReceiveCount } : {}),
      ...(o.copyTimeoutSeconds ? { copyTimeoutSeconds: o.copyTimeoutSeconds } : {}),
      ...(o.retryBaseSeconds ? { retryBaseSeconds: o.retryBaseSeconds } : {}),
    });
    const active = rules.map((r) => proxy.inject(r));
    const run = await runOnce(rt, hh.tally);
    for (const [i, r] of active.entries())
      expect(r.hits, `rule ${i} (${r.op} ${r.fault}) fired`).toBeGreaterThan(0);
    o.check?.(run, proxy);
    // S3 trouble says nothing about the source: it is never backed off for it.
    expect(hh.logs.filter((l) => l.includes("source back-off"))).toEqual([]);
    proxy.clear();
    const again = await runOnce(rt, hh.tally);
    if (!o.deadLettered) expect(again.planned, "nothing left to copy").toBe(0);
    const dead = o.deadLettered?.(run.planned) ?? 0;
    await checkEndState(hh, fault, dead > 0 ? { partial: true, deadLettered: dead } : {});
    await expectHonestBookkeeping(
      hh,
      direct.store,
      STREAMS.map((s) => s.name),
    );
    // The spool is removed on every path, the failed ones included.
    if (spoolDir) expect(readdirSync(spoolDir)).toEqual([]);
    return { run, proxy };
  } finally {
    await proxy.close();
    if (spoolDir) rmSync(spoolDir, { recursive: true, force: true });
  }
}

for (let run = 1; run <= RUNS; run++) {
  const suffix = RUNS > 1 ? ` (run ${run})` : "";
  describe(`fault injection${suffix}`, () => {
    it("source answers 503 with Retry-After, then 500 and 429: retried until copied", async () => {
      await sourceFault("source 503/500/429 burst", { failNext: 6, errorStatus: 503, retryAfterSeconds: 1 });
      await h!.close();
      await sourceFault("source 503/500/429 burst", { failNext: 3, errorStatus: 500 });
      await h!.close();
      await sourceFault("source 503/500/429 burst", { failNext: 3, errorStatus: 429 });
    }, 120_000); // three whole scenarios, each with its retry delays: about 50 s on a quiet machine

    it("connection reset mid-body, after the first part was uploaded", async () => {
      await sourceFault("reset mid-body", { resetAfterBytes: 5_500_000, bodyFaultNext: 3 });
    });

    it("truncated body: a clean close too early (chunked) is caught by the container check", async () => {
      await sourceFault("truncated body (clean close)", { truncateAfterBytes: 3_000_017, bodyFaultNext: 3 });
    });

    it("truncated body: fewer bytes than Content-Length promised", async () => {
      h = await startHarness({
        sim: { streams: STREAMS, sendContentLength: true },
        source: { retentionDays: 1 / 24 },
      });
      const rt = await h.runtime(RUNTIME);
      h.sim.setFaults({ truncateAfterBytes: 1_000_000, bodyFaultNext: 2 });
      const first = await runOnce(rt, h.tally);
      expect(first.retries).toBeGreaterThan(0);
      expect(first.ok).toBe(true);
      await checkEndState(h, "truncated body (short of Content-Length)");
    });

    it("a stall longer than the body idle timeout", async () => {
      await sourceFault(
        "stall > idle timeout",
        { stallAfterBytes: 200_000, bodyFaultNext: 2 },
        { timeouts: { connectSeconds: 1, headersSeconds: 1, bodyIdleSeconds: 1 } },
      );
    });

    it("connection refused while copying, then the source comes back", async () => {
      const { h: hh, rt } = await harness();
      await hh.sim.pauseListening();
      // Plan fails too while the source is down: nothing is queued, the plan error is reported.
      const down = await runOnce(rt, hh.tally);
      expect(down.ok).toBe(false);
      expect(down.planErrors.map((e) => e.message).join()).toMatch(/refused|ECONNREFUSED/);
      await hh.sim.resumeListening();
      const report = await rt.plan();
      expect(report.sources[0]!.planned.length).toBeGreaterThan(0);
      await hh.sim.pauseListening();
      await rt.startCopiers();
      await expect
        .poll(() => hh.tally.events.filter((e) => e.type === "retry").length, { timeout: 10_000 })
        .toBeGreaterThan(1);
      await hh.sim.resumeListening();
      await rt.drain();
      await rt.stopCopiers();
      expect((await runOnce(rt, hh.tally)).planned).toBe(0);
      await checkEndState(hh, "connection refused");
    });

    it("401 after a password change: dead-lettered with the reason, no secret in the logs", async () => {
      const { h: hh, rt } = await harness({
        sim: { streams: STREAMS, auth: { basic: { username: "backup", password: PASSWORD } } },
        source: { auth: { type: "basic", username: "backup", passwordEnv: "P" } },
        credentials: { type: "basic", username: "backup", password: new Secret(PASSWORD) },
      });
      const report = await rt.plan();
      const planned = report.sources[0]!.planned.length;
      hh.sim.setAuth({ basic: { username: "backup", password: "new-password" } });
      const run = await runOnce(rt, hh.tally);
      expect(run.ok).toBe(false);
      const dead = hh.tally.events.filter((e) => e.type === "dead-lettered");
      expect(dead).toHaveLength(planned);
      expect(dead[0]!.reason).toMatch(/HTTP 401/);
      await checkEndState(hh, "401 after password change", { partial: true, deadLettered: planned });
    });

    it("404 for windows retention removed before they were copied: dropped, not retried", async () => {
      const { h: hh, rt } = await harness({
        sim: { streams: STREAMS.map((s) => ({ ...s, depthSeconds: HOUR })) },
      });
      const report = await rt.plan();
      expect(report.sources[0]!.planned.length).toBeGreaterThan(0);
      hh.clock.advance(25 * 60); // the source deletes the oldest 25 minutes
      const run = await runOnce(rt, hh.tally);
      expect(run.gone).toBeGreaterThan(0);
      expect(run.deadLettered).toEqual([]);
      expect(run.retries).toBe(0);
      await checkEndState(hh, "404 expired window", { partial: true });
      // Nothing stored that the source no longer had when it was asked.
      for (const s of STREAMS) {
        for (const w of await storedWindows(hh, s.name)) expect(w.from).toBeGreaterThanOrEqual(NOW - HOUR);
      }
    });

    it("malformed index answers are reported per stream and nothing is queued for it", async () => {
      const { h: hh, rt } = await harness();
      hh.sim.setFaults({ target: "index", indexFault: "wrong-shape" });
      const bad = await runOnce(rt, hh.tally);
      expect(bad.ok).toBe(false);
      expect(bad.planned).toBe(0);
      expect(bad.planErrors[0]!.message).toMatch(/stream list|ranges/);
      hh.sim.setFaults({});
      expect((await runOnce(rt, hh.tally)).ok).toBe(true);
      await checkEndState(hh, "malformed index (bad JSON, wrong shape)");
    });

    it("duplicate delivery: every message delivered twice, copies finishing concurrently", async () => {
      const { h: hh } = await harness({ source: { maxConcurrentCopies: 6 } });
      const rt = await hh.runtime({ partSize: 5 * 1024 * 1024 });
      const report = await rt.plan();
      const planned = report.sources[0]!.planned.length;
      const url = rt.queues.get("src1")!.url;
      // Read every message (they come back after their 2 s visibility) and send a copy of each.
      const bodies = new Map<string, string>();
      while (bodies.size < planned) {
        const got = await rt.sqs.send(
          new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 2 }),
        );
        for (const m of got.Messages ?? []) bodies.set(m.MessageId!, m.Body!);
      }
      const copies = [...bodies.values()];
      for (let i = 0; i < copies.length; i += 10) {
        await rt.sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: url,
            Entries: copies.slice(i, i + 10).map((b, j) => ({ Id: String(j), MessageBody: b })),
          }),
        );
      }
      await rt.startCopiers();
      await rt.drain();
      await rt.stopCopiers();
      const copiedOrStored = hh.tally.events.filter(
        (e) => e.type === "copied" || e.type === "already-stored",
      );
      expect(copiedOrStored.length).toBe(2 * planned);
      expect(rt.pollers.size).toBe(0);
      // The next plan compacts every completion record and finds nothing missing.
      const after = await runOnce(rt, hh.tally);
      expect(after.planned).toBe(0);
      for (const st of after.finalPlan.sources[0]!.streams)
        expect(st.backedUpSeconds).toBe(st.copyableSeconds);
      await checkEndState(hh, "SQS duplicate delivery");
    });

    it("a message whose visibility expires while it is being copied", async () => {
      const { h: hh, rt } = await harness({ source: { maxConcurrentCopies: 16 } });
      const url = rt.queues.get("src1")!.url;
      await rt.sqs.send(
        new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { VisibilityTimeout: "1" } }),
      );
      // Bodies paced to take over 2 s, more copiers than windows: every message is visible again,
      // and received by an idle copier, while its first copy runs.
      hh.sim.setFaults({ bodyBytesPerSecond: 2_500_000 });
      const run = await runOnce(rt, hh.tally);
      expect(run.ok).toBe(true);
      expect(hh.sim.meter.downloads).toBeGreaterThan(run.planned);
      hh.sim.setFaults({});
      expect((await runOnce(rt, hh.tally)).planned).toBe(0);
      await checkEndState(hh, "SQS visibility expires mid-copy");
    });

    it("a copier killed mid-upload: the window is copied again whole, the orphaned upload aborted", async () => {
      const { h: hh, rt } = await harness({ source: { maxConcurrentCopies: 1 } });
      const child = spawn(process.execPath, ["dev/kit/copier-process.ts"], {
        env: {
          ...process.env,
          FB_COPIER: JSON.stringify({
            config: JSON.stringify({
              bucket: hh.config.bucket,
              sources: [{ name: "src1", url: hh.sim.url, retentionDays: 1 / 24, maxConcurrentCopies: 1 }],
            }),
            endpoints: hh.emulator.endpoints,
            now: hh.clock.now(),
            partSize: 5 * 1024 * 1024,
          }),
        },
        stdio: ["ignore", "pipe", "inherit"],
      });
      const exited = new Promise((resolve) => child.once("exit", resolve));
      await new Promise((resolve) => child.stdout!.once("data", resolve)); // its queues are set up
      // Short visibility, so the window the killed copier held comes back at once.
      const url = rt.queues.get("src1")!.url;
      await rt.sqs.send(
        new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { VisibilityTimeout: "2" } }),
      );
      hh.sim.setFaults({ bodyBytesPerSecond: 2_000_000 }); // a 6 MB window takes 3 s
      const report = await rt.plan();
      expect(report.sources[0]!.planned.length).toBeGreaterThan(0);
      // Kill it once its first part (5 MiB) is uploaded and the body is still streaming.
      await expect.poll(() => hh.uploadedParts(), { timeout: 20_000, interval: 20 }).toBeGreaterThan(0);
      child.kill("SIGKILL");
      await exited;
      expect(hh.openMultipartUploads().length, "the killed copier left its upload").toBeGreaterThan(0);
      hh.sim.setFaults({});
      const rerun = await hh.runtime({ partSize: 5 * 1024 * 1024, staleUploadSeconds: 0 });
      const run = await runOnce(rerun, hh.tally);
      expect(run.ok).toBe(true);
      expect((await runOnce(rerun, hh.tally)).planned).toBe(0);
      await checkEndState(hh, "copier killed mid-upload");
    });

    it("the planner's lease (its manifest write) fails: nothing is queued; the next run plans the same windows, each copied once", async () => {
      const { h: hh } = await harness();
      const proxy = await S3FaultProxy.start(hh.emulator.endpoints.s3Endpoint!);
      try {
        const rt = await hh.runtime({
          partSize: 5 * 1024 * 1024,
          endpoints: { ...hh.emulator.endpoints, s3Endpoint: proxy.url },
        });
        // Every manifest write fails (after the client's own retries). The planner leases first
        // (the premise changed: before, it queued first and a failed lease left the windows queued
        // and then queued again, each copied twice): nothing leased, nothing queued.
        const killed = proxy.inject({ op: "PutObject", kind: "manifest", fault: "500", times: Infinity });
        const report = await rt.plan();
        const failed = report.sources[0]!;
        expect(failed.planned).toEqual([]);
        expect(failed.errors.map((e) => e.stream).sort()).toEqual(STREAMS.map((s) => s.name));
        for (const e of failed.errors) expect(e.message).toMatch(/manifest.*(500|InternalError)/i);
        expect(killed.hits, "the manifest writes were retried").toBeGreaterThan(STREAMS.length);
        expect(await rt.pendingMessages()).toBe(0);
        proxy.clear();
        // The next (healthy) run leases and queues the windows; each is copied once.
        const plans: PlanReport[] = [];
        const run = await runOnce(rt, hh.tally, { onPlan: (r) => plans.push(r) });
        expect(run.ok).toBe(true);
        expect(plans[0]!.sources[0]!.planned.length).toBeGreaterThan(0);
        expect(run.copied).toBeGreaterThanOrEqual(plans[0]!.sources[0]!.planned.length);
        expect(run.alreadyStored, "no window queued twice").toBe(0);
        expect((await runOnce(rt, hh.tally)).planned).toBe(0);
        await checkEndState(hh, "planner's lease failed");
      } finally {
        await proxy.close();
      }
    });

    it("S3 loses answers after doing the work (CompleteMultipartUpload, PutObject): recognised, no retry, no re-read", async () => {
      await s3Fault(
        "S3 lost/held answers (Complete, PutObject)",
        [
          { op: "CompleteMultipartUpload", fault: "drop-response", times: 2 },
          { op: "CompleteMultipartUpload", fault: "reset-response", times: 1 },
          { op: "PutObject", kind: "record", fault: "drop-response", times: 2 },
          { op: "PutObject", kind: "catalog", fault: "drop-response", times: 1 },
          // S3 completes one upload and answers only after a minute: the copy's timeout (8 s) ends
          // the wait, and the object S3 completed is recorded.
          { op: "CompleteMultipartUpload", fault: "delay", delayMs: 60_000, times: 1 },
        ],
        {
          copyTimeoutSeconds: 8,
          check: (run, proxy) => {
            expect(run.seconds, "the run waited for the held answer").toBeLessThan(40);
            // The copy that S3 completed is the copy: recorded with the streamed hash, not retried,
            // not downloaded again, its object not read back from S3.
            expect(run.retries).toBe(0);
            expect(run.copied).toBe(run.planned);
            expect(proxy.count("GetObject", "window"), "windows read back from S3").toBe(0);
          },
        },
      );
    });

    it("S3 errors on every operation (500, SlowDown, RequestTimeout, ExpiredToken, resets): exact, the source not backed off", async () => {
      await s3Fault(
        "S3 500/SlowDown/RequestTimeout/403/resets",
        [
          // One window's CompleteMultipartUpload fails past the SDK's 3 attempts: the upload is
          // aborted and the window tried again soon (S3, not the source, failed).
          { op: "CompleteMultipartUpload", key: /\/cam1\/2026-11-20\/115000Z-/, fault: "500", times: 3 },
          { op: "UploadPart", fault: "slow-down", times: 3 },
          { op: "UploadPart", fault: "reset-request", times: 1 },
          { op: "UploadPart", fault: "request-timeout", times: 1 },
          { op: "CreateMultipartUpload", fault: "500", times: 2 },
          { op: "HeadObject", kind: "window", fault: "expired-token", skip: 3, times: 1 },
          { op: "GetObject", fault: "500", times: 2 },
          { op: "ListObjectsV2", fault: "slow-down", times: 1 },
          { op: "PutObject", kind: ["manifest", "catalog", "index"], fault: "500", times: 2 },
          { op: "PutObject", kind: "record", fault: "reset-request", times: 1 },
        ],
        {
          // The production retry base: the first retry after an S3 failure does not wait 10 s.
          retryBaseSeconds: 10,
          check: (run) => {
            const retries = h!.tally.events.filter((e) => e.type === "retry");
            expect(run.retries).toBeGreaterThan(0);
            for (const r of retries) {
              expect(r.reason).toMatch(/^S3: /);
              if (r.attempt === 1) expect(r.delaySeconds).toBeLessThanOrEqual(2);
            }
          },
        },
      );
    });

    it("spooled windows: S3 fails parts and PutObjects, loses a Complete's answer: retried from the spool, exact, spool removed", async () => {
      // Each failed request was sent again from its spool file: no copy failed, none was read back.
      const check = (run: OnceSummary, proxy: S3FaultProxy) => {
        expect(run.retries).toBe(0);
        expect(run.copied).toBe(run.planned);
        expect(proxy.count("GetObject", "window"), "windows read back from S3").toBe(0);
      };
      await s3Fault(
        "S3 faults on spooled windows (parts)",
        [
          { op: "UploadPart", fault: "slow-down", times: 2 },
          { op: "UploadPart", fault: "reset-request", times: 1 },
          { op: "UploadPart", fault: "request-timeout", times: 1 },
          { op: "CompleteMultipartUpload", fault: "drop-response", times: 1 },
        ],
        { spool: { singleMaxBytes: 5 * 1024 * 1024 }, check },
      );
      await h!.close();
      await s3Fault(
        "S3 faults on spooled windows (one PutObject)",
        [
          { op: "PutObject", kind: "window", key: /\/cam1\//, fault: "500", times: 2 },
          { op: "PutObject", kind: "window", key: /\/cam1\//, fault: "reset-request", times: 1 },
          { op: "PutObject", kind: "window", key: /\/cam1\//, fault: "drop-response", times: 1 },
        ],
        { spool: { singleMaxBytes: 8 * 1024 * 1024 }, check },
      );
    }, 120_000);

    it("S3 fails reading the pause switch past its retries: the source waits for the next run (a sentence, not a crash), then is copied", async () => {
      await s3Fault(
        "S3 500 on the pause switch",
        [{ op: "GetObject", kind: "control", fault: "500", times: 3 }],
        {
          check: (run) => {
            expect(run.ok).toBe(false);
            expect(run.copied).toBe(0);
            expect(run.idle).toEqual([
              ["src1", expect.stringMatching(/^its pause switch could not be read \(S3: /)],
            ]);
            expect(formatSummary(run, NOW)).toMatch(
              /Source src1 did not copy: its pause switch could not be read/,
            );
          },
        },
      );
    });

    it("S3 never recovers for a stream's parts: dead-lettered with the reason, nothing partial, bookkeeping true", async () => {
      await s3Fault(
        "S3 SlowDown forever (dead-lettered)",
        [
          {
            op: "UploadPart",
            key: /\/cam1\/2026-11-20\/115000Z-/,
            fault: "slow-down",
            times: Number.POSITIVE_INFINITY,
          },
        ],
        {
          maxReceiveCount: 2,
          deadLettered: () => h!.tally.events.filter((e) => e.type === "dead-lettered").length,
          check: (run) => {
            expect(run.deadLettered.length).toBe(1);
            for (const d of run.deadLettered) {
              expect(d.message?.stream).toBe("cam1");
              expect(d.reason).toMatch(/S3: cannot upload .*SlowDown \(HTTP 503\)/);
            }
          },
        },
      );
    });
  });
}
