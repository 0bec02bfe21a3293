/**
 * `run` as a long-running service, the installed binary in a child process against the simulator
 * and the embedded emulator: metrics and health while it copies, and a clean stop on SIGTERM (the
 * copy running finishes within the grace period, or is aborted after it with no upload left open
 * and its window visible again), after which `run --once` completes the archive byte for byte.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client,
} from "@aws-sdk/client-s3";
import { GetQueueUrlCommand } from "@aws-sdk/client-sqs";
import { afterEach, expect, test } from "vitest";
import {
  metricsUrl,
  openUploadParts,
  openUploads,
  type RunProcess,
  sample,
  scrape,
  startRun,
  waitFor,
  writeConfig,
} from "../../dev/kit/service-process.ts";
import { parseWindowKeyTail, streamPrefix, windowKey } from "../../functions/domain/keys.ts";
import { queueDepth } from "../../functions/queue/source-queues.ts";
import { createS3Client, createSqsClient } from "../../local/aws-clients.ts";
import { startEmbedded } from "../../local/embedded.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";

const BUCKET = "service-backup";
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "fb-service-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function simulator(o: Parameters<typeof FlussonicSimulator.start>[0]): Promise<FlussonicSimulator> {
  const sim = await FlussonicSimulator.start({ streams: 1, days: 1, liveOnlyStreams: 0, ...o });
  cleanups.push(() => sim.close());
  return sim;
}

function service(args: string[], cwd: string): RunProcess {
  const p = startRun(args, { cwd });
  cleanups.push(() => {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  });
  return p;
}

/** Milliseconds left of `ms` from now, for waits that share one deadline. */
function budget(ms: number): () => number {
  const end = performance.now() + ms;
  return () => Math.max(0, end - performance.now());
}

/** What the emulator state in `stateDir` holds once the service has exited. */
async function inspect(stateDir: string) {
  const emu = await startEmbedded(stateDir);
  const s3 = createS3Client(emu.endpoints);
  const sqs = createSqsClient(emu.endpoints);
  const keys = await listKeys(s3);
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
  const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: "flussonic-backup-src1" }));
  const depth = await queueDepth(sqs, QueueUrl!);
  s3.destroy();
  sqs.destroy();
  await emu.stop();
  return { keys, uploads: uploads.Uploads ?? [], depth };
}

/** Window objects of src1/cam1 with their start and duration (parsed back from the key). */
async function listKeys(s3: S3Client): Promise<string[]> {
  const prefix = streamPrefix("flussonic/", "src1", "cam1");
  const res = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key!).filter((k) => parseWindowKeyTail(k.slice(prefix.length)));
}

/** Every stored window matches the simulator byte for byte. */
async function expectExact(stateDir: string, sim: FlussonicSimulator): Promise<string[]> {
  const emu = await startEmbedded(stateDir);
  const s3 = createS3Client(emu.endpoints);
  try {
    const keys = await listKeys(s3);
    const prefix = streamPrefix("flussonic/", "src1", "cam1");
    for (const key of keys) {
      const w = parseWindowKeyTail(key.slice(prefix.length))!;
      expect(key).toBe(windowKey("flussonic/", { source: "src1", stream: "cam1", ...w }, "mp4"));
      const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
      const got = Buffer.from(await res.Body!.transformToByteArray());
      expect(got.equals(sim.body("cam1", w.from, w.duration, "mp4")), `bytes of ${key}`).toBe(true);
    }
    return keys;
  } finally {
    s3.destroy();
    await emu.stop();
  }
}

test("SIGTERM lets the running copy finish within the grace period; /metrics and /healthz describe the service", async () => {
  // 32 kbit/s (generated streams get half the asked 64): 600 s windows of ~2.4 MB, served at
  // 1 MB/s: a copy takes ~2.4 s.
  const sim = await simulator({ faults: { bodyBytesPerSecond: 1_000_000 } });
  const dir = tempDir();
  // 43 minutes of retention: three or four windows, so some are still queued at the signal.
  const config = writeConfig(dir, sim.url, { retentionDays: 0.03 });
  const state = join(dir, "state");
  const p = service(["run", "-c", config, "--embedded", state, "--metrics-port", "0"], dir);
  const context = () => `stdout:\n${p.stdout()}\nstderr:\n${p.stderr()}`;
  // One budget for the three waits below (they used to take up to 70 s inside a 60 s test): the
  // test's own timeout leaves room for the stop (grace up to 30 s) and the run --once after.
  const left = budget(40_000);
  const base = await waitFor("the metrics address", () => metricsUrl(p.stdout()), left(), context);

  // /healthz once the planner has run.
  await waitFor(
    "the first planner run",
    async () => {
      const runs = sample(await scrape(base), "flussonic_backup_planner_runs_total", { result: "ok" }) ?? 0;
      return runs >= 1 ? true : undefined;
    },
    left(),
    context,
  );
  const health = await fetch(`${base}/healthz`);
  expect(health.status).toBe(200);
  expect(await health.text()).toMatch(/^ok: last planner run \d+ s ago \(limit 120 s, two schedules\)/);

  // A window copied and the next one being copied: SIGTERM right then.
  const text = await waitFor(
    "one window copied, the next in flight, more queued",
    async () => {
      const t = await scrape(base);
      const copied = sample(t, "flussonic_backup_windows_total", { source: "src1", outcome: "copied" }) ?? 0;
      const running = sample(t, "flussonic_backup_copies_in_flight", { source: "src1" }) ?? 0;
      const read = sample(t, "flussonic_backup_downloaded_bytes_total", { source: "src1" }) ?? 0;
      const stored = sample(t, "flussonic_backup_copied_bytes_total", { source: "src1" }) ?? 0;
      const queued =
        sample(t, "flussonic_backup_queue_messages", { source: "src1", queue: "copy", state: "visible" }) ??
        0;
      return copied >= 1 && running >= 1 && read > stored && queued >= 1 ? t : undefined;
    },
    left(),
    context,
  );
  p.signal("SIGTERM");
  const metric = (name: string, labels: Record<string, string>) => sample(text, name, labels);
  // The window copied first may be the short piece at the retention start (its length follows the
  // wall clock: the test runs at the real time), so only "some bytes" is certain.
  expect(metric("flussonic_backup_copied_bytes_total", { source: "src1" })).toBeGreaterThan(0);
  expect(metric("flussonic_backup_copy_duration_seconds_count", { source: "src1" })).toBeGreaterThanOrEqual(
    1,
  );
  expect(metric("flussonic_backup_source_concurrency_limit", { source: "src1" })).toBe(1);
  expect(metric("flussonic_backup_source_backoff_paused", { source: "src1" })).toBe(0);
  expect(metric("flussonic_backup_planner_runs_total", { result: "ok" })).toBe(1);
  expect(metric("flussonic_backup_stream_lag_seconds", { source: "src1", stream: "cam1" })).toBeGreaterThan(
    0,
  );
  const queue = (queue: string, state: string) =>
    metric("flussonic_backup_queue_messages", { source: "src1", queue, state });
  expect(queue("copy", "in_flight")).toBe(1);
  expect(queue("dead_letter", "visible")).toBe(0);
  expect(text).toMatch(/^# TYPE flussonic_backup_copy_duration_seconds histogram$/m);
  const copiedBefore = metric("flussonic_backup_windows_total", { source: "src1", outcome: "copied" })!;
  const queuedBefore = queue("copy", "visible")!;

  expect(await p.exited, context()).toBe(0);
  // The scrape and the signal are a few milliseconds apart: the copy seen running may have ended in
  // between, and the copier may have taken the next window (which then is the one running at the
  // signal). Whichever it was, the copy running at the signal is finished, none is aborted, and no
  // window is taken after it.
  const stopping =
    /SIGTERM: stopping; taking no new window, ([01]) cop(?:y|ies) running get up to 30 s to finish/.exec(
      p.stdout(),
    );
  expect(stopping, context()).not.toBeNull();
  const running = Number(stopping![1]);
  expect(p.stdout()).toContain(
    `: ${running} cop${running === 1 ? "y" : "ies"} finished, 0 aborted and returned to the queue.`,
  );

  const after = await inspect(state);
  // Every window is stored or still queued, none is lost, in flight or half uploaded.
  expect(after.uploads).toEqual([]);
  expect(after.depth).toMatchObject({ inFlight: 0, delayed: 0 });
  expect(after.keys.length + after.depth.visible).toBe(copiedBefore + 1 + queuedBefore);
  // At most one more window was taken between the scrape and the signal.
  expect(after.keys.length).toBeGreaterThanOrEqual(copiedBefore + running);
  expect(after.keys.length).toBeLessThanOrEqual(copiedBefore + 2);
  expect(queuedBefore).toBeGreaterThanOrEqual(1);

  // The next run copies what the service left queued, byte for byte.
  sim.setFaults({});
  const once = startRun(["run", "-c", config, "--embedded", state, "--once"], { cwd: dir });
  expect(await once.exited, once.stdout() + once.stderr()).toBe(0);
  const keys = await expectExact(state, sim);
  expect(keys.length).toBeGreaterThanOrEqual(copiedBefore + 1 + queuedBefore);
}, 100_000);

test("SIGTERM aborts the copies still running when the grace period ends: no multipart upload left, the window visible again", async () => {
  // 400 kbit/s (the generated stream gets half the asked rate): full 600 s windows of ~30 MB, more
  // than the copier's 24 MiB of part buffers, so they go up in parts of about 11 MiB (a smaller
  // window is one PutObject). Downloads stall after 13 MiB (past any part: they are at most 12 MiB), so a full window's first part is
  // uploaded and its copy cannot finish. Without the spool (spoolMiB 0): spooled, such a window
  // would be one PutObject sent once the download ends, no multipart upload to abort.
  const sim = await simulator({ bitrateBps: 800_000, faults: { stallAfterBytes: 13 * 1024 * 1024 } });
  const dir = tempDir();
  const config = writeConfig(dir, sim.url, { maxConcurrentCopies: 2 }, { spoolMiB: 0 });
  const state = join(dir, "state");
  const p = service(["run", "-c", config, "--embedded", state, "--grace-seconds", "1"], dir);
  const context = () => `stdout:\n${p.stdout()}\nstderr:\n${p.stderr()}`;
  // An upload with a part that stays open: a short window (its length set by the wall clock) may
  // upload a part too, then completes at once; only a stalled one stays.
  const firstSeen = new Map<string, number>();
  await waitFor(
    "a multipart upload with a part that stays open 1.5 s, its download stalled",
    () => {
      const now = performance.now();
      for (const [id, parts] of openUploadParts(state)) {
        if (parts < 1) continue;
        const since = firstSeen.get(id) ?? now;
        firstSeen.set(id, since);
        if (now - since >= 1500) return true;
      }
      return undefined;
    },
    30_000,
    context,
  );

  const signalled = performance.now();
  p.signal("SIGTERM");
  expect(await p.exited, context()).toBe(0);
  expect(performance.now() - signalled).toBeLessThan(10_000);
  const stopped =
    /Stopped in [\d.]+ s: \d+ cop(?:y|ies) finished, (\d+) aborted and returned to the queue\./.exec(
      p.stdout(),
    );
  expect(Number(stopped?.[1]), context()).toBeGreaterThanOrEqual(1);
  // Interrupted, not failed: no retry delay, no back-off of the source, nothing dead-lettered.
  expect(p.stderr()).not.toMatch(/copy failed|source back-off|dead-lettered/);

  const after = await inspect(state);
  expect(openUploads(state)).toEqual([]);
  expect(after.uploads).toEqual([]);
  // Visible again at once (not after the retry delay or the visibility timeout).
  expect(after.depth.inFlight).toBe(0);
  expect(after.depth.visible).toBeGreaterThanOrEqual(1);

  sim.setFaults({});
  const once = startRun(["run", "-c", config, "--embedded", state, "--once"], { cwd: dir });
  expect(await once.exited, once.stdout() + once.stderr()).toBe(0);
  const keys = await expectExact(state, sim);
  expect(keys.length).toBeGreaterThan(after.keys.length);
}, 60_000);
