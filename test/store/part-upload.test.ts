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
import { afterAll, beforeAll, expect, test } from "vitest";
import { ensureBucket } from "../../functions/queue/source-queues.ts";
import { PartUpload } from "../../functions/store/part-upload.ts";
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
