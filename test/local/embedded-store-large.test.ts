/**
 * The embedded store's object files go through large-file-io.ts, whose slices get past Node's 2 GiB
 * limit of one read or write call (a window of 2 GiB or more failed CompleteMultipartUpload with
 * InvalidPart). The slicing is checked here with slices of a few bytes; a real 2 GiB window is
 * figure 4 of `npm run bench` (too big for the suite).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, describe, expect, it } from "vitest";
import { createS3Client } from "../../local/aws-clients.ts";
import { startEmbedded } from "../../local/embedded.ts";
import { readWholeFile, writeWholeFile } from "../../local/large-file-io.ts";

const dir = mkdtempSync(join(tmpdir(), "fb-large-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("whole-file reads and writes in slices", () => {
  it("a body of several slices and a part slice is written and read back byte for byte", () => {
    const body = randomBytes(1000);
    const path = join(dir, "sliced.data");
    writeWholeFile(path, body, 7);
    expect(readFileSync(path).equals(body)).toBe(true);
    expect(readWholeFile(path, 7).equals(body)).toBe(true);
    expect(readWholeFile(path, 1000).equals(body)).toBe(true);
  });

  it("a write replaces a longer file whole (truncated, not overlaid); an empty body makes an empty file", () => {
    const path = join(dir, "replaced.data");
    writeFileSync(path, randomBytes(500));
    const body = randomBytes(30);
    writeWholeFile(path, body, 8);
    expect(statSync(path).size).toBe(30);
    expect(readWholeFile(path, 8).equals(body)).toBe(true);
    writeWholeFile(path, new Uint8Array(0), 8);
    expect(readWholeFile(path, 8).length).toBe(0);
  });
});

describe("embedded store", () => {
  it("stores and serves an object's data through the sliced file calls (with a state directory)", async () => {
    type WholeFile = { write: typeof writeWholeFile; read: typeof readWholeFile };
    const hook = Symbol.for("flussonic-backup.wholeFile");
    const emulator = await startEmbedded(join(dir, "state"));
    const io = (globalThis as Record<symbol, WholeFile | undefined>)[hook];
    expect(io, "the emulator fixes register the sliced file calls").toBeDefined();
    const seen: string[] = [];
    const real = { ...io! };
    io!.write = (path, body, slice) => {
      seen.push(`write ${path}`);
      real.write(path, body, slice);
    };
    io!.read = (path, slice) => {
      seen.push(`read ${path}`);
      return real.read(path, slice);
    };
    const s3 = createS3Client(emulator.endpoints);
    try {
      await s3.send(new CreateBucketCommand({ Bucket: "large" }));
      const body = randomBytes(100_000);
      await s3.send(new PutObjectCommand({ Bucket: "large", Key: "a/window.mp4", Body: body }));
      const got = await s3.send(new GetObjectCommand({ Bucket: "large", Key: "a/window.mp4" }));
      expect(Buffer.from(await got.Body!.transformToByteArray()).equals(body)).toBe(true);
      expect(seen.filter((s) => s.endsWith("window.mp4.data"))).toEqual([
        `write ${join(dir, "state", "s3", "buckets", "large", "objects", "a", "window.mp4.data")}`,
        `read ${join(dir, "state", "s3", "buckets", "large", "objects", "a", "window.mp4.data")}`,
      ]);
    } finally {
      Object.assign(io!, real);
      s3.destroy();
      await emulator.stop();
    }
  });
});
