/**
 * `run --queues embedded`: the backup goes to an S3 endpoint reached only through the AWS
 * variables (the emulator in a process of its own, as MinIO, Ceph, R2... would be), with no queue
 * service (AWS_ENDPOINT_URL_SQS points where nothing listens); the copy queues live in the state
 * directory and survive restarts. And a store without checksums and conditional writes: a clear
 * refusal naming the flag, then a byte-exact backup with the flags.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { ListQueuesCommand, SQSClient } from "@aws-sdk/client-sqs";
import { afterEach, expect, test } from "vitest";
import { startEmulatorProcess } from "../../dev/kit/emulator-process.ts";
import { PlainS3Proxy } from "../../dev/kit/plain-s3-proxy.ts";
import {
  metricsUrl,
  type RunProcess,
  sample,
  scrape,
  startRun,
  waitFor,
  writeConfig,
} from "../../dev/kit/service-process.ts";
import { parseWindowKeyTail, streamPrefix } from "../../functions/domain/keys.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";

const BUCKET = "service-backup";
const PREFIX = streamPrefix("flussonic/", "src1", "cam1");
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(
  o: {
    plain?: boolean;
    faults?: Parameters<FlussonicSimulator["setFaults"]>[0];
    retentionDays?: number;
  } = {},
) {
  const dir = mkdtempSync(join(tmpdir(), "fb-s3only-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const sim = await FlussonicSimulator.start({
    streams: 1,
    days: 1,
    liveOnlyStreams: 0,
    faults: o.faults ?? {},
  });
  cleanups.push(() => sim.close());
  const emu = await startEmulatorProcess({ dir: join(dir, "store") });
  cleanups.push(() => emu.stop());
  let endpoint = emu.url;
  let proxy: PlainS3Proxy | undefined;
  if (o.plain) {
    proxy = await PlainS3Proxy.start(emu.url);
    cleanups.push(() => proxy!.close());
    endpoint = proxy.url;
  }
  const credentials = { accessKeyId: "test", secretAccessKey: "test" };
  const s3 = new S3Client({ region: "us-east-1", endpoint: emu.url, forcePathStyle: true, credentials });
  const sqs = new SQSClient({ region: "us-east-1", endpoint: emu.url, credentials });
  cleanups.push(() => {
    s3.destroy();
    sqs.destroy();
  });
  const env = {
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    AWS_ENDPOINT_URL_S3: endpoint,
    // No queue service: anything sent here would fail (nothing listens on the discard port).
    AWS_ENDPOINT_URL_SQS: "http://127.0.0.1:9",
  };
  const config = writeConfig(dir, sim.url, o.retentionDays ? { retentionDays: o.retentionDays } : {});
  const state = join(dir, "queues");
  const run = (...args: string[]): RunProcess => {
    const p = startRun(["run", "-c", config, "--queues", "embedded", "--state-dir", state, ...args], {
      cwd: dir,
      env,
    });
    cleanups.push(() => {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
    });
    return p;
  };
  return { dir, sim, s3, sqs, env, config, state, run, proxy };
}

/** Window keys of src1/cam1 in the store ([] when the bucket does not exist). */
async function windowKeys(s3: S3Client): Promise<string[]> {
  try {
    const res = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    return (res.Contents ?? [])
      .map((o) => o.Key!)
      .filter((k) => k.startsWith(PREFIX) && parseWindowKeyTail(k.slice(PREFIX.length)));
  } catch (error) {
    if (error instanceof S3ServiceException && error.name === "NoSuchBucket") return [];
    throw error;
  }
}

async function allKeys(s3: S3Client): Promise<string[]> {
  try {
    const res = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    return (res.Contents ?? []).map((o) => o.Key!);
  } catch (error) {
    if (error instanceof S3ServiceException && error.name === "NoSuchBucket") return [];
    throw error;
  }
}

async function expectExact(s3: S3Client, sim: FlussonicSimulator, keys: string[]): Promise<void> {
  for (const key of keys) {
    const w = parseWindowKeyTail(key.slice(PREFIX.length))!;
    const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    const got = Buffer.from(await res.Body!.transformToByteArray());
    expect(got.equals(sim.body("cam1", w.from, w.duration, "mp4")), `bytes of ${key}`).toBe(true);
  }
}

test("run --queues embedded backs up into an S3 endpoint with no queue service; a window left queued by one run is copied by the next", async () => {
  // Every download stalls: the first window's copy is in flight when the service is stopped.
  const t = await setup({ faults: { stallAfterBytes: 100_000 } });
  const p = t.run("--metrics-port", "0", "--grace-seconds", "0");
  const context = () => `stdout:\n${p.stdout()}\nstderr:\n${p.stderr()}`;
  const base = await waitFor("the metrics address", () => metricsUrl(p.stdout()), 20_000, context);
  const queued = await waitFor(
    "a copy in flight and windows queued",
    async () => {
      const text = await scrape(base);
      const running = sample(text, "flussonic_backup_copies_in_flight", { source: "src1" }) ?? 0;
      const q = (state: string) =>
        sample(text, "flussonic_backup_queue_messages", { source: "src1", queue: "copy", state }) ?? 0;
      return running === 1 && q("visible") >= 1 ? q("visible") + q("in_flight") : undefined;
    },
    20_000,
    context,
  );
  // The emulator, like some stores, ignores If-Match: said once at the start.
  expect(p.stdout()).toMatch(
    /^note: S3 endpoint http:\S+, bucket service-backup: ignores conditional writes \(If-Match\)/m,
  );
  p.signal("SIGTERM");
  expect(await p.exited, context()).toBe(0);
  expect(p.stdout()).toMatch(/Stopped in [\d.]+ s: 0 copies finished, 1 aborted and returned to the queue\./);
  // The store: nothing copied yet, no upload left, and no queue (they are in the state directory).
  expect(await windowKeys(t.s3)).toEqual([]);
  expect((await t.s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }))).Uploads ?? []).toEqual([]);
  expect((await t.sqs.send(new ListQueuesCommand({}))).QueueUrls ?? []).toEqual([]);

  // Run 2 starts where run 1 stopped: the planner leaves leased windows alone, so only the queue
  // kept in the state directory can bring them.
  t.sim.setFaults({});
  const once = t.run("--once");
  expect(await once.exited, once.stdout() + once.stderr()).toBe(0);
  const copied = Number(/Copied (\d+) window\(s\)/.exec(once.stdout())?.[1]);
  expect(copied).toBeGreaterThanOrEqual(queued);
  const keys = await windowKeys(t.s3);
  expect(keys.length).toBe(copied);
  await expectExact(t.s3, t.sim, keys);
}, 60_000);

test("an S3 store without checksums and conditional writes: run names the flag and changes nothing; with the flags the backup is byte for byte", async () => {
  const t = await setup({ plain: true, retentionDays: 0.01 });
  const context = (p: RunProcess) => `stdout:\n${p.stdout()}\nstderr:\n${p.stderr()}`;

  const r1 = t.run("--once");
  expect(await r1.exited, context(r1)).toBe(2);
  expect(r1.stderr().trim()).toMatch(
    /^S3 endpoint http:\/\/127\.0\.0\.1:\d+, bucket service-backup: refused SHA-256 upload checksums \(x-amz-checksum-sha256: HTTP 501 NotImplemented\); run with --no-s3-checksums \(each window's own SHA-256 is still recorded and checked by `verify`\)$/,
  );

  const r2 = t.run("--once", "--no-s3-checksums");
  expect(await r2.exited, context(r2)).toBe(2);
  expect(r2.stderr().trim()).toMatch(
    /^S3 endpoint http:\/\/127\.0\.0\.1:\d+, bucket service-backup: refused conditional writes \(If-Match: HTTP 501 NotImplemented\); run with --no-conditional-writes and run only one `run` against this bucket at a time$/,
  );
  // Nothing written, no upload left open by the probes.
  expect(await allKeys(t.s3)).toEqual([]);
  expect((await t.s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }))).Uploads ?? []).toEqual([]);

  const refusedBefore = t.proxy!.refused.length;
  const r3 = t.run("--once", "--no-s3-checksums", "--no-conditional-writes");
  expect(await r3.exited, context(r3)).toBe(0);
  expect(t.proxy!.refused.slice(refusedBefore)).toEqual([]);
  const keys = await windowKeys(t.s3);
  expect(keys.length).toBeGreaterThan(0);
  await expectExact(t.s3, t.sim, keys);

  // Our own SHA-256 of each window was recorded: verify re-reads and compares it.
  const verify = startRun(["verify", "-c", t.config], { cwd: t.dir, env: t.env });
  expect(await verify.exited, verify.stdout() + verify.stderr()).toBe(0);
}, 60_000);
