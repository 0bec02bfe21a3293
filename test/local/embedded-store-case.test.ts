/**
 * issue 15 item 12: the embedded store (`--embedded <dir>`) names each object's file after its key;
 * on a case-insensitive file system (macOS, Windows) the windows of streams "Cam1" and "cam1" would
 * share files. File names now never differ only in case (S3 keys are unchanged), and files an older
 * version wrote are moved to their new names on load.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it } from "vitest";
import { windowKey } from "../../functions/domain/keys.ts";
import { createS3Client } from "../../local/aws-clients.ts";
import { type EmbeddedEmulator, startEmbedded } from "../../local/embedded.ts";

const BUCKET = "case-test";
const dirs: string[] = [];
let emulator: EmbeddedEmulator | undefined;
let s3: S3Client | undefined;
afterEach(async () => {
  s3?.destroy();
  await emulator?.stop();
  emulator = undefined;
  s3 = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function open(dir: string): Promise<S3Client> {
  s3?.destroy();
  await emulator?.stop();
  emulator = await startEmbedded(dir);
  s3 = createS3Client(emulator.endpoints);
  return s3;
}

async function read(client: S3Client, key: string): Promise<string> {
  const res = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return res.Body!.transformToString();
}

function files(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(root, join(e.parentPath, e.name)));
}

const window = (stream: string) =>
  windowKey(
    "flussonic/",
    { source: "src1", stream, from: Date.UTC(2026, 10, 20, 12, 0) / 1000, duration: 600 },
    "mp4",
  );

describe("embedded store: names that differ only in case", () => {
  it("keeps the objects of streams Cam1 and cam1 in files whose names differ in more than case, across a restart", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fb-case-"));
    dirs.push(dir);
    const client = await open(dir);
    await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: window("Cam1"), Body: "upper" }));
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: window("cam1"), Body: "lower" }));

    // What a case-insensitive file system would merge: paths equal once lower-cased.
    const objects = join(dir, "s3", "buckets", BUCKET, "objects");
    const paths = files(objects);
    expect(paths).toHaveLength(4); // .data and .meta.json of each
    expect(new Set(paths.map((p) => p.toLowerCase())).size).toBe(paths.length);

    const again = await open(dir);
    expect(await read(again, window("Cam1"))).toBe("upper");
    expect(await read(again, window("cam1"))).toBe("lower");
  });

  it("moves the files an older version wrote (named with upper-case letters) to their new names on load", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fb-case-"));
    dirs.push(dir);
    const bucketDir = join(dir, "s3", "buckets", BUCKET);
    const key = window("Cam1");
    const old = join(bucketDir, "objects", ...key.split("/"));
    mkdirSync(dirname(old), { recursive: true });
    writeFileSync(
      join(bucketDir, ".bucket.json"),
      JSON.stringify({ name: BUCKET, creationDate: new Date().toISOString(), type: "general-purpose" }),
    );
    writeFileSync(`${old}.data`, "video");
    writeFileSync(
      `${old}.meta.json`,
      JSON.stringify({
        key,
        contentType: "video/mp4",
        contentLength: 5,
        etag: '"5b1e2c3f4f6b2d0f0a6f6c1b5f0e2d3c"',
        lastModified: new Date().toISOString(),
        metadata: {},
      }),
    );

    const client = await open(dir);
    expect(await read(client, key)).toBe("video");
    const paths = files(join(bucketDir, "objects"));
    expect(paths).toHaveLength(2);
    expect(paths.every((p) => p === p.toLowerCase())).toBe(true);
  });
});
