/**
 * The copier's multipart upload (functions/store/part-upload.ts) against the embedded emulator:
 * bytes stored exactly, each part's SHA-256 sent as its checksum and as the signature's payload
 * hash (computed once), the ETag S3 gives the object known in advance, nothing left on failure.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ensureBucket } from "../../functions/queue/source-queues.ts";
import { MIN_PART_BYTES, PartUpload, partsFor } from "../../functions/store/part-upload.ts";
import { createS3Client } from "../../local/aws-clients.ts";
import { type EmbeddedEmulator, startEmbedded } from "../../local/embedded.ts";

const BUCKET = "part-upload";
const MiB = 1024 * 1024;
const PART = 5 * MiB;

let dir: string;
let emulator: EmbeddedEmulator;
let s3: S3Client;
/**
 * Every UploadPart / PutObject request as sent (after signing): headers, body length, the body's
 * SHA-256 and its buffer (taken when sent: part buffers are reused for later parts).
 */
const sent: {
  op: string;
  headers: Record<string, string>;
  length: number;
  sha256: Buffer;
  buffer: ArrayBufferLike;
}[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "fb-part-upload-"));
  emulator = await startEmbedded(dir);
  s3 = createS3Client(emulator.endpoints);
  s3.middlewareStack.add(
    (next, context) => (args) => {
      const request = args.request as { headers: Record<string, string>; body?: unknown };
      if (context.commandName === "UploadPartCommand" || context.commandName === "PutObjectCommand") {
        const body = request.body as Uint8Array;
        sent.push({
          op: context.commandName,
          headers: { ...request.headers },
          length: body.length,
          sha256: sha256(body),
          buffer: body.buffer,
        });
      }
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

/** `bytes` in chunks of `chunk` (a download's reads). */
async function* chunks(bytes: Buffer, chunk = 64 * 1024): AsyncGenerator<Buffer> {
  for (let at = 0; at < bytes.length; at += chunk) yield bytes.subarray(at, at + chunk);
}

async function stored(key: string): Promise<Buffer> {
  const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest();

test("several parts: stored byte for byte; each part's SHA-256 is its checksum and its payload hash; the ETag is known in advance", async () => {
  const bytes = randomBytes(2 * PART + 12_345);
  const key = "multi/window.mp4";
  sent.length = 0;
  const upload = new PartUpload(
    s3,
    { Bucket: BUCKET, Key: key, ContentType: "video/mp4", Metadata: { source: "s1" } },
    { partSize: PART, queueSize: 2 },
  );
  const done = await upload.upload(chunks(bytes));
  expect((await stored(key)).equals(bytes)).toBe(true);

  const parts = sent.filter((s) => s.op === "UploadPartCommand");
  expect(parts.map((p) => p.length)).toEqual([PART, PART, 12_345]);
  for (const p of parts) {
    const digest = p.sha256;
    expect(p.headers["x-amz-checksum-sha256"]).toBe(digest.toString("base64"));
    expect(p.headers["x-amz-content-sha256"]).toBe(digest.toString("hex"));
  }

  const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
  expect(head.ETag).toBe(done.ETag);
  expect(upload.expectedEtag()).toBe(head.ETag);
  expect(head.Metadata).toEqual({ source: "s1" });
  expect(head.ContentType).toBe("video/mp4");
});

test("a body that fits in one part is one PutObject with its checksum; the expected ETag is its MD5", async () => {
  const bytes = randomBytes(PART - 1);
  const key = "single/window.mp4";
  sent.length = 0;
  const upload = new PartUpload(s3, { Bucket: BUCKET, Key: key }, { partSize: PART, queueSize: 2 });
  await upload.upload(chunks(bytes));
  expect((await stored(key)).equals(bytes)).toBe(true);
  expect(sent.map((s) => s.op)).toEqual(["PutObjectCommand"]);
  expect(sent[0]!.headers["x-amz-checksum-sha256"]).toBe(sha256(bytes).toString("base64"));
  expect(sent[0]!.headers["x-amz-content-sha256"]).toBe(sha256(bytes).toString("hex"));
  const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
  expect(upload.expectedEtag()).toBe(head.ETag);
  expect(head.ETag).toBe(`"${createHash("md5").update(bytes).digest("hex")}"`);
});

test("a body that fails after parts went up: its error is thrown, the multipart upload aborted, no object", async () => {
  const key = "failed/window.mp4";
  const failure = new Error("connection reset by the source");
  async function* breaking(): AsyncGenerator<Buffer> {
    yield* chunks(randomBytes(3 * PART));
    throw failure;
  }
  const upload = new PartUpload(s3, { Bucket: BUCKET, Key: key }, { partSize: PART, queueSize: 2 });
  await expect(upload.upload(breaking())).rejects.toBe(failure);
  const open = await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: key }));
  expect(open.Uploads ?? []).toEqual([]);
  await expect(s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))).rejects.toMatchObject({
    $metadata: { httpStatusCode: 404 },
  });
});

test("memory: parts are filled into at most queueSize + 1 buffers, whatever the object's size", async () => {
  const key = "bounded/window.mp4";
  sent.length = 0;
  const upload = new PartUpload(s3, { Bucket: BUCKET, Key: key }, { partSize: PART, queueSize: 2 });
  await upload.upload(chunks(randomBytes(8 * PART)));
  const buffers = new Set(sent.filter((s) => s.op === "UploadPartCommand").map((s) => s.buffer));
  expect(sent.filter((s) => s.op === "UploadPartCommand")).toHaveLength(8);
  expect(buffers.size).toBeLessThanOrEqual(3);
});

test("queue 0: one buffer, each part uploaded before it fills again; stored byte for byte", async () => {
  const key = "one-buffer/window.mp4";
  const bytes = randomBytes(3 * PART + 777);
  sent.length = 0;
  const upload = new PartUpload(s3, { Bucket: BUCKET, Key: key }, { partSize: PART, queueSize: 0 });
  await upload.upload(chunks(bytes));
  expect((await stored(key)).equals(bytes)).toBe(true);
  const parts = sent.filter((s) => s.op === "UploadPartCommand");
  expect(parts.map((p) => p.length)).toEqual([PART, PART, PART, 777]);
  expect(new Set(parts.map((p) => p.buffer)).size).toBe(1);
});

test("a small first buffer: a body that fits is one PutObject in it; a larger one grows it to a part, stored byte for byte", async () => {
  sent.length = 0;
  const small = randomBytes(300_000);
  const one = new PartUpload(
    s3,
    { Bucket: BUCKET, Key: "first/small.mp4" },
    { partSize: PART, queueSize: 1, firstBufferBytes: 320 * 1024 },
  );
  await one.upload(chunks(small));
  expect((await stored("first/small.mp4")).equals(small)).toBe(true);
  expect(sent.map((x) => x.op)).toEqual(["PutObjectCommand"]);
  expect(sent[0]!.buffer.byteLength).toBe(320 * 1024);

  sent.length = 0;
  const large = randomBytes(2 * PART + 4321);
  const grown = new PartUpload(
    s3,
    { Bucket: BUCKET, Key: "first/large.mp4" },
    { partSize: PART, queueSize: 1, firstBufferBytes: 320 * 1024 },
  );
  await grown.upload(chunks(large));
  expect((await stored("first/large.mp4")).equals(large)).toBe(true);
  expect(sent.filter((x) => x.op === "UploadPartCommand").map((x) => x.length)).toEqual([PART, PART, 4321]);
});

test("a small object's buffer, released, is the next small upload's: each object byte for byte, its ETag known before the release", async () => {
  sent.length = 0;
  const first = randomBytes(300_000);
  const a = new PartUpload(
    s3,
    { Bucket: BUCKET, Key: "pool/a.mp4" },
    { partSize: PART, queueSize: 1, firstBufferBytes: 320 * 1024 },
  );
  const storedA = await a.upload(chunks(first));
  expect(a.expectedEtag()).toBe(storedA.ETag);
  a.release();
  // Smaller, and with other bytes: written over the same memory.
  const second = randomBytes(100_000);
  const b = new PartUpload(
    s3,
    { Bucket: BUCKET, Key: "pool/b.mp4" },
    { partSize: PART, queueSize: 1, firstBufferBytes: 128 * 1024 },
  );
  const storedB = await b.upload(chunks(second));
  expect(b.expectedEtag()).toBe(storedB.ETag);
  b.release();
  expect(sent).toHaveLength(2);
  expect(sent[1]!.buffer).toBe(sent[0]!.buffer);
  expect(sent[1]!.length).toBe(100_000);
  expect((await stored("pool/a.mp4")).equals(first)).toBe(true);
  expect((await stored("pool/b.mp4")).equals(second)).toBe(true);
  // Not released (still in use): the next upload gets a buffer of its own.
  const c = new PartUpload(
    s3,
    { Bucket: BUCKET, Key: "pool/c.mp4" },
    { partSize: PART, queueSize: 1, firstBufferBytes: 128 * 1024 },
  );
  const d = new PartUpload(
    s3,
    { Bucket: BUCKET, Key: "pool/d.mp4" },
    { partSize: PART, queueSize: 1, firstBufferBytes: 128 * 1024 },
  );
  await Promise.all([c.upload(chunks(randomBytes(1000))), d.upload(chunks(randomBytes(1000)))]);
  expect(sent[2]!.buffer).not.toBe(sent[3]!.buffer);
  c.release();
  d.release();
});

describe("partsFor: parts sized from the window's expected size, within the buffers' budget", () => {
  const fallback = { partSize: 8 * MiB, queueSize: 2 };
  const budget = 24 * MiB;
  const fits = (o: { partSize: number; queueSize: number }) => o.partSize * (o.queueSize + 1) <= budget;

  test("the reference window (2 Mbit/s x 600 s, 150 MB, estimated): 12 parts, not 18, in the same memory", () => {
    const o = partsFor(150_000_000, false, budget, fallback);
    expect(Math.ceil(150_000_000 / o.partSize)).toBe(12);
    expect(Math.ceil(150_000_000 / fallback.partSize)).toBe(18);
    expect(fits(o)).toBe(true);
    // 10% over the estimate still goes up in the parts planned for it.
    expect(Math.ceil(165_000_000 / o.partSize)).toBeLessThanOrEqual(14);
  });

  test("a window that fits the budget is one part (one PutObject), its memory one buffer", () => {
    const exact = partsFor(20 * MiB, true, budget, fallback);
    expect(exact.partSize).toBeGreaterThanOrEqual(20 * MiB);
    expect(fits(exact)).toBe(true);
    const estimated = partsFor(20 * MiB, false, budget, fallback);
    expect(estimated.partSize).toBe(22 * MiB);
    expect(estimated.queueSize).toBe(0);
    expect(fits(estimated)).toBe(true);
  });

  test("small windows: at least S3's 5 MiB part, so that a body larger than expected can still go up in parts; the first buffer their size", () => {
    const o = partsFor(300_000, false, budget, fallback);
    expect(o.partSize).toBe(MIN_PART_BYTES);
    expect(o.firstBufferBytes).toBe(384 * 1024);
    expect(fits(o)).toBe(true);
  });

  test("large windows: parts evened out, within the budget; unknown size: the fixed parts", () => {
    const gib = partsFor(1024 * MiB, true, budget, fallback);
    expect(gib.partSize).toBe(12 * MiB);
    expect(fits(gib)).toBe(true);
    expect(partsFor(undefined, false, budget, fallback)).toBe(fallback);
    expect(partsFor(0, true, budget, fallback)).toBe(fallback);
  });

  test("never more than S3's 10,000 parts: memory gives way before the upload would fail", () => {
    const huge = 200 * 1024 * MiB;
    const o = partsFor(huge, true, budget, fallback);
    expect(Math.ceil(huge / o.partSize)).toBeLessThanOrEqual(10_000);
  });
});
