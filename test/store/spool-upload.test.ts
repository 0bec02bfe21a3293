/**
 * Issue 26 item 1 and issue 22 item 6: the copier's spool (functions/store/spool-upload.ts) against
 * the embedded emulator. A window that fits the threshold is ONE PutObject carrying the SHA-256 of
 * the whole object (as its checksum and its payload hash); a larger one goes up in parts read from
 * disk, each with its own SHA-256, the disk holding a few parts at most; the spool is removed on
 * every path, stale spool files of dead processes are swept, a full disk is a clear retryable error,
 * and a failed request is tried again with a fresh read of its file.
 */
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, expect, test } from "vitest";
import { S3FaultProxy } from "../../dev/kit/s3-fault-proxy.ts";
import { RetryableError } from "../../functions/domain/errors.ts";
import { ensureBucket } from "../../functions/queue/source-queues.ts";
import { SpoolUpload, type SpoolUploadOptions } from "../../functions/store/spool-upload.ts";
import { createS3Client } from "../../local/aws-clients.ts";
import { type EmbeddedEmulator, startEmbedded } from "../../local/embedded.ts";

const BUCKET = "spool-upload";
const MiB = 1024 * 1024;

let dir: string;
let spool: string;
let emulator: EmbeddedEmulator;
let s3: S3Client;
/** Every PutObject / UploadPart as sent (after signing): its headers. */
const sent: { op: string; headers: Record<string, string> }[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "fb-spool-upload-"));
  spool = join(dir, "spool");
  emulator = await startEmbedded(join(dir, "emulator"));
  s3 = createS3Client(emulator.endpoints);
  s3.middlewareStack.add(
    (next, context) => (args) => {
      const request = args.request as { headers: Record<string, string> };
      const op = context.commandName ?? "?";
      if (/PutObject|UploadPart|MultipartUpload/.test(op)) sent.push({ op, headers: { ...request.headers } });
      return next(args);
    },
    { step: "finalizeRequest", priority: "low", name: "testCaptureHeaders" },
  );
  await ensureBucket(s3, BUCKET);
});

afterAll(async () => {
  s3.destroy();
  await emulator.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** `bytes` in chunks of 64 KiB (a download's reads); `onChunk` sees each before it is handed on. */
async function* chunks(bytes: Buffer, onChunk?: (at: number) => void): AsyncGenerator<Buffer> {
  for (let at = 0; at < bytes.length; at += 64 * 1024) {
    onChunk?.(at);
    yield bytes.subarray(at, at + 64 * 1024);
  }
}

async function stored(client: S3Client, key: string): Promise<Buffer> {
  const res = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest();

function spoolUpload(
  key: string,
  bytes: Buffer,
  o: Partial<SpoolUploadOptions> & { singleMaxBytes: number },
  client: S3Client = s3,
): SpoolUpload {
  return new SpoolUpload(
    client,
    { Bucket: BUCKET, Key: key, ContentType: "video/mp4" },
    {
      dir: spool,
      wholeSha256: () => sha256(bytes),
      ...o,
    },
  );
}

const spoolFiles = () => readdirSync(spool).filter((n) => n.endsWith(".spool"));

test("a window within the threshold: one PutObject carrying the whole object's SHA-256; nothing left in the spool", async () => {
  const bytes = randomBytes(20 * MiB + 12_345);
  const key = "single/window.mp4";
  sent.length = 0;
  const upload = spoolUpload(key, bytes, { singleMaxBytes: 32 * MiB, expectedBytes: 20 * MiB });
  const done = await upload.upload(chunks(bytes));
  expect(sent.map((s) => s.op)).toEqual(["PutObjectCommand"]);
  expect(upload.requests).toBe(1);
  expect(sent[0]!.headers["x-amz-checksum-sha256"]).toBe(sha256(bytes).toString("base64"));
  expect(sent[0]!.headers["x-amz-content-sha256"]).toBe(sha256(bytes).toString("hex"));
  expect(sent[0]!.headers["content-length"]).toBe(String(bytes.length));
  expect((await stored(s3, key)).equals(bytes)).toBe(true);
  const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
  expect(head.ETag).toBe(done.ETag);
  // The ETag of a lost answer is known from the spool until it is disposed.
  expect(await upload.expectedEtag()).toBe(head.ETag);
  await upload.dispose();
  expect(spoolFiles()).toEqual([]);
});

test("a window over the threshold: parts read from the spool, each with its SHA-256; the disk holds at most queue + 1 parts", async () => {
  const part = 5 * MiB;
  const bytes = randomBytes(4 * part + 777);
  const key = "parts/window.mp4";
  sent.length = 0;
  const upload = spoolUpload(key, bytes, {
    singleMaxBytes: 8 * MiB,
    partSize: part,
    queueSize: 2,
    expectedBytes: bytes.length,
    exact: true,
  });
  let most = 0;
  const done = await upload.upload(chunks(bytes, () => (most = Math.max(most, spoolFiles().length))));
  await upload.dispose();
  expect((await stored(s3, key)).equals(bytes)).toBe(true);
  const parts = sent.filter((s) => s.op === "UploadPartCommand");
  // Evened out over the window: 5 parts of ceil(size / 5) rounded up to a MiB, the last smaller.
  expect(parts.length).toBe(5);
  const size = Math.ceil(bytes.length / 5 / MiB) * MiB;
  parts.forEach((p, i) => {
    const slice = bytes.subarray(i * size, Math.min(bytes.length, (i + 1) * size));
    expect(p.headers["content-length"]).toBe(String(slice.length));
    expect(p.headers["x-amz-checksum-sha256"]).toBe(sha256(slice).toString("base64"));
    expect(p.headers["x-amz-content-sha256"]).toBe(sha256(slice).toString("hex"));
  });
  expect(sent.filter((s) => s.op !== "UploadPartCommand").map((s) => s.op)).toEqual([
    "CreateMultipartUploadCommand",
    "CompleteMultipartUploadCommand",
  ]);
  expect(upload.requests).toBe(7);
  expect(most).toBeGreaterThan(0);
  expect(most).toBeLessThanOrEqual(3);
  expect(await upload.expectedEtag()).toBe(done.ETag);
  expect(spoolFiles()).toEqual([]);
});

test("a window larger than expected: its first spool file becomes part 1 (hashed from disk), the rest in parts", async () => {
  const bytes = randomBytes(14 * MiB + 5);
  const key = "outgrown/window.mp4";
  sent.length = 0;
  const upload = spoolUpload(key, bytes, {
    singleMaxBytes: 6 * MiB,
    partSize: 5 * MiB,
    expectedBytes: 4 * MiB,
  });
  await upload.upload(chunks(bytes));
  await upload.dispose();
  expect((await stored(s3, key)).equals(bytes)).toBe(true);
  const parts = sent.filter((s) => s.op === "UploadPartCommand");
  expect(parts.map((p) => p.headers["content-length"])).toEqual([
    String(6 * MiB),
    String(5 * MiB),
    String(3 * MiB + 5),
  ]);
  expect(parts[0]!.headers["x-amz-checksum-sha256"]).toBe(
    sha256(bytes.subarray(0, 6 * MiB)).toString("base64"),
  );
  expect(spoolFiles()).toEqual([]);
});

test("a body that fails mid-way: the upload rejects with its error, no multipart upload and no spool file is left", async () => {
  const bytes = randomBytes(12 * MiB);
  const key = "failed/window.mp4";
  const upload = spoolUpload(key, bytes, {
    singleMaxBytes: 6 * MiB,
    partSize: 5 * MiB,
    expectedBytes: 12 * MiB,
  });
  async function* failing(): AsyncGenerator<Buffer> {
    yield* chunks(bytes.subarray(0, 11 * MiB));
    throw new RetryableError("download failed: socket hang up");
  }
  await expect(upload.upload(failing())).rejects.toThrow(/socket hang up/);
  await upload.dispose();
  expect(spoolFiles()).toEqual([]);
  const open = await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: "failed/" }));
  expect(open.Uploads ?? []).toEqual([]);
});

test("spool files of processes that are gone are swept before the first spool; a running process's are kept", async () => {
  const own = join(dir, "sweep");
  mkdirSync(own, { recursive: true });
  // A pid no process has (above the kernel's pid_max), this process's own (a previous process had
  // it: this one has written none in this directory yet), and the parent's (running).
  writeFileSync(join(own, "99999999-a.spool"), "x");
  writeFileSync(join(own, `${process.pid}-b.spool`), "x");
  writeFileSync(join(own, `${process.ppid}-c.spool`), "x");
  writeFileSync(join(own, "unrelated.txt"), "x");
  const bytes = randomBytes(1000);
  const upload = new SpoolUpload(
    s3,
    { Bucket: BUCKET, Key: "sweep/window.mp4" },
    {
      dir: own,
      singleMaxBytes: 8 * MiB,
      wholeSha256: () => sha256(bytes),
    },
  );
  await upload.upload(chunks(bytes));
  await upload.dispose();
  expect(readdirSync(own).sort()).toEqual([`${process.ppid}-c.spool`, "unrelated.txt"].sort());
});

test("a request that fails is tried again with a fresh read of its spool file (the SDK does not retry streams)", async () => {
  const proxy = await S3FaultProxy.start(emulator.endpoints.s3Endpoint!);
  const client = createS3Client({ ...emulator.endpoints, s3Endpoint: proxy.url });
  try {
    proxy.inject({ op: "PutObject", fault: "500" });
    proxy.inject({ op: "UploadPart", fault: "reset-request", skip: 1 });
    const small = randomBytes(3 * MiB);
    const one = spoolUpload("retry/single.mp4", small, { singleMaxBytes: 8 * MiB }, client);
    await one.upload(chunks(small));
    await one.dispose();
    expect((await stored(client, "retry/single.mp4")).equals(small)).toBe(true);
    expect(proxy.count("PutObject")).toBe(2);
    expect(one.requests).toBe(2);

    const large = randomBytes(11 * MiB);
    const parts = spoolUpload(
      "retry/parts.mp4",
      large,
      { singleMaxBytes: 5 * MiB, partSize: 5 * MiB, expectedBytes: large.length, exact: true },
      client,
    );
    await parts.upload(chunks(large));
    await parts.dispose();
    expect((await stored(client, "retry/parts.mp4")).equals(large)).toBe(true);
    expect(proxy.count("UploadPart")).toBe(4);
  } finally {
    client.destroy();
    await proxy.close();
  }
  expect(spoolFiles()).toEqual([]);
});

/** A 1 MiB tmpfs (root only: tests that cannot mount one skip, saying why). */
function smallDisk(): string | undefined {
  const mount = join(dir, "small-disk");
  mkdirSync(mount, { recursive: true });
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mount], { stdio: "ignore" });
    return mount;
  } catch {
    return undefined;
  }
}

test("a full disk: a retryable error that names the spool and what to do; nothing left behind", async (ctx) => {
  const mount = smallDisk();
  if (!mount) ctx.skip(true, "mounting a small tmpfs needs root: the full-disk case is not tried here");
  try {
    const bytes = randomBytes(3 * MiB);
    const upload = new SpoolUpload(
      s3,
      { Bucket: BUCKET, Key: "full/window.mp4" },
      {
        dir: mount!,
        singleMaxBytes: 8 * MiB,
        wholeSha256: () => sha256(bytes),
      },
    );
    const error = await upload.upload(chunks(bytes)).catch((e: unknown) => e);
    await upload.dispose();
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as Error).message).toMatch(
      /the copier's spool in .*small-disk is full after \d+ bytes of full\/window\.mp4 .*free disk space there.*lower spoolMiB/,
    );
    expect(readdirSync(mount!)).toEqual([]);
  } finally {
    execFileSync("umount", [mount!]);
  }
});
