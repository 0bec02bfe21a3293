/**
 * Issue 26 item 1: the copier sizes a window's upload parts from its expected size (the stream's
 * bitrate x the window's duration, or the server's Content-Length), within the memory of the fixed
 * parts: fewer PUT-class requests per window, every byte and checksum as before. Against the
 * simulator and the embedded emulator; requests counted as the S3 client sends them.
 */
import { createHash } from "node:crypto";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it } from "vitest";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { type CopyMessage, type CopyWindowDeps, copyWindow } from "../../functions/copier/copy-window.ts";
import { FlussonicClient } from "../../functions/source/flussonic.ts";
import { TokenBucket } from "../../functions/source/throttle.ts";

const NOW = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
const FROM = Math.floor((NOW - HOUR) / 600) * 600;
const MiB = 1024 * 1024;

let h: Harness | undefined;
async function closeHarness(): Promise<void> {
  await h?.close();
  h = undefined;
}
afterEach(closeHarness);

/** S3 commands sent for `key` (the window's object), by name, as the client sends them. */
function countFor(s3: S3Client, key: () => string): Map<string, number> {
  const counts = new Map<string, number>();
  s3.middlewareStack.add(
    (next, context) => (args) => {
      const input = args.input as { Key?: string; Prefix?: string };
      const name = context.commandName ?? "?";
      if (input.Key === key() || input.Prefix === key()) counts.set(name, (counts.get(name) ?? 0) + 1);
      return next(args);
    },
    { step: "initialize", name: "testCountWindowRequests" },
  );
  return counts;
}

async function copyOnce(
  bitrateBps: number,
  fixedParts: boolean,
  sendContentLength = false,
  redeliveryOnlyAttempt?: number,
  lambdaMemoryMb?: number,
) {
  h = await startHarness({
    sim: {
      streams: [{ name: "cam1", bitrateBps, ranges: [{ from: NOW - 2 * HOUR, to: NOW + 1 }] }],
      sendContentLength,
    },
    source: { retentionDays: 1 / 24 },
  });
  const rt = await h.runtime();
  const m: CopyMessage = {
    v: 1,
    source: "src1",
    stream: "cam1",
    from: FROM,
    duration: 600,
    format: "mp4",
    leaseUntil: h.clock.now() + 86_400,
  };
  const key = rt.store.windowKey(m, "mp4");
  const counts = countFor(rt.store.s3, () => key);
  const flussonic = new FlussonicClient(h.config.sources[0]!, { type: "none" });
  const deps: CopyWindowDeps = {
    store: rt.store,
    flussonic,
    // Paced (as every copy in AWS is), fast enough not to slow the test: the bitrate is asked once.
    throttle: new TokenBucket(2_000 * MiB),
    now: h.clock.now,
    partSize: 8 * MiB,
    copyTimeoutSeconds: 60,
    fixedParts,
    ...(redeliveryOnlyAttempt !== undefined ? { redeliveryOnlyAttempt } : {}),
    ...(lambdaMemoryMb !== undefined ? { lambdaMemoryMb } : {}),
  };
  const outcome = await copyWindow(deps, m);
  await flussonic.close();
  expect(outcome.status).toBe("copied");
  const record = outcome.status === "copied" ? outcome.record : undefined;
  const got = await rt.store.s3.send(new GetObjectCommand({ Bucket: rt.store.bucket, Key: key }));
  const bytes = Buffer.from(await got.Body!.transformToByteArray());
  expect(createHash("sha256").update(bytes).digest("hex")).toBe(record?.sha256);
  expect(bytes.length).toBe(record?.size);
  expect(h.openMultipartUploads()).toEqual([]);
  return { counts, size: bytes.length, record };
}

const puts = (c: Map<string, number>) =>
  (c.get("PutObjectCommand") ?? 0) +
  (c.get("CreateMultipartUploadCommand") ?? 0) +
  (c.get("UploadPartCommand") ?? 0) +
  (c.get("CompleteMultipartUploadCommand") ?? 0);

describe("parts sized from the window's expected size (issue 26 item 1)", () => {
  it("a 40 MB window (530 kbit/s x 600 s): 4 parts of ~11 MiB, not 5 of 8 MiB; stored byte for byte", async () => {
    const fixed = await copyOnce(530_000, true);
    expect(fixed.size).toBeGreaterThan(32 * MiB);
    expect(fixed.counts.get("UploadPartCommand")).toBe(5);
    await closeHarness();
    const sized = await copyOnce(530_000, false);
    expect(sized.size).toBe(fixed.size);
    expect(sized.counts.get("UploadPartCommand")).toBe(4);
    expect(puts(sized.counts)).toBeLessThan(puts(fixed.counts));
  });

  it("a 15 MB window that fits the buffers' memory is one PutObject, no multipart upload", async () => {
    const { counts, size } = await copyOnce(200_000, false);
    expect(size).toBeGreaterThan(8 * MiB);
    expect(counts.get("PutObjectCommand")).toBe(1);
    expect(counts.get("CreateMultipartUploadCommand")).toBeUndefined();
    expect(counts.get("UploadPartCommand")).toBeUndefined();
  });

  it("a server's Content-Length sizes the parts exactly", async () => {
    const { counts, size } = await copyOnce(530_000, false, true);
    expect(size).toBeGreaterThan(32 * MiB);
    expect(counts.get("UploadPartCommand")).toBe(Math.ceil(size / (12 * MiB)));
  });
});

describe("orphaned uploads looked for on redeliveries only, where a lifecycle rule aborts the rest (AWS)", () => {
  it("a first delivery sends no ListMultipartUploads; a redelivery does; the default (local) always does", async () => {
    expect(
      (await copyOnce(64_000, false, false, 1)).counts.get("ListMultipartUploadsCommand"),
    ).toBeUndefined();
    await closeHarness();
    expect((await copyOnce(64_000, false, false, 2)).counts.get("ListMultipartUploadsCommand")).toBe(1);
    await closeHarness();
    expect((await copyOnce(64_000, false)).counts.get("ListMultipartUploadsCommand")).toBe(1);
  });
});

describe("the copier counts its requests into the window's record (issue 26 item 2)", () => {
  it("the record's PUT- and GET-class counts are the requests the S3 client sent for the window", async () => {
    const { counts, record } = await copyOnce(530_000, false);
    // The record's own PUT and the holds' GET are on other keys: counted by name here.
    const window = {
      put:
        (counts.get("ListMultipartUploadsCommand") ?? 0) +
        (counts.get("CreateMultipartUploadCommand") ?? 0) +
        (counts.get("UploadPartCommand") ?? 0) +
        (counts.get("CompleteMultipartUploadCommand") ?? 0) +
        (counts.get("PutObjectCommand") ?? 0),
      get: counts.get("HeadObjectCommand") ?? 0,
    };
    expect(record?.requests).toEqual({ put: window.put + 1, get: window.get + 1 });
    expect(record?.gbSeconds).toBeUndefined();
  });

  it("in Lambda, the record carries the copy's GB-seconds: its duration x the function's memory", async () => {
    const started = performance.now();
    const { record } = await copyOnce(64_000, false, false, undefined, 256);
    const seconds = (performance.now() - started) / 1000;
    expect(record?.gbSeconds).toBeGreaterThan(0);
    expect(record?.gbSeconds).toBeLessThanOrEqual(seconds * 0.25 + 0.001);
  });
});
