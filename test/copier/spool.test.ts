/**
 * Issue 26 item 1 and issue 22 item 6: the copier spools a window to local disk. A window within
 * the threshold is stored by ONE PutObject carrying its SHA-256 (the record's), a larger one in
 * parts read from the spool; a body the simulator cuts short fails the copy (retryable) and leaves
 * no spool file, no upload and no object. Against the simulator and the embedded emulator; requests
 * counted as the S3 client sends them.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it } from "vitest";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { type CopyMessage, type CopyWindowDeps, copyWindow } from "../../functions/copier/copy-window.ts";
import { RetryableError } from "../../functions/domain/errors.ts";
import { FlussonicClient } from "../../functions/source/flussonic.ts";
import { TokenBucket } from "../../functions/source/throttle.ts";
import type { SimulatorOptions } from "../../simulator/simulator.ts";

const NOW = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
const FROM = Math.floor((NOW - HOUR) / 600) * 600;
const MiB = 1024 * 1024;

let h: Harness | undefined;
let spool: string | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
  if (spool) rmSync(spool, { recursive: true, force: true });
  spool = undefined;
});

/**
 * S3 commands sent for `key` (by name), the headers of its PutObject requests and what their bodies
 * were (a ReadStream of the spool file, or a Buffer from memory).
 */
function watch(s3: S3Client, key: () => string) {
  const counts = new Map<string, number>();
  const putHeaders: Record<string, string>[] = [];
  const putBodies: string[] = [];
  s3.middlewareStack.add(
    (next, context) => (args) => {
      const input = args.input as { Key?: string; Prefix?: string };
      const name = context.commandName ?? "?";
      if (input.Key === key() || input.Prefix === key()) counts.set(name, (counts.get(name) ?? 0) + 1);
      return next(args);
    },
    { step: "initialize", name: "testCountWindowRequests" },
  );
  s3.middlewareStack.add(
    (next, context) => (args) => {
      const input = args.input as { Key?: string };
      if (context.commandName === "PutObjectCommand" && input.Key === key()) {
        const request = args.request as { headers: Record<string, string>; body?: unknown };
        putHeaders.push({ ...request.headers });
        putBodies.push((request.body as object | undefined)?.constructor.name ?? "none");
      }
      return next(args);
    },
    { step: "finalizeRequest", priority: "low", name: "testPutHeaders" },
  );
  return { counts, putHeaders, putBodies };
}

async function setup(bitrateBps: number, sim: Omit<SimulatorOptions, "now" | "streams"> = {}) {
  h = await startHarness({
    sim: { streams: [{ name: "cam1", bitrateBps, ranges: [{ from: NOW - 2 * HOUR, to: NOW + 1 }] }], ...sim },
    source: { retentionDays: 1 / 24 },
  });
  const rt = await h.runtime();
  spool = mkdtempSync(join(tmpdir(), "fb-copier-spool-"));
  const m: CopyMessage = {
    v: 1,
    source: "src1",
    stream: "cam1",
    from: FROM,
    duration: 600,
    format: "mp4",
    leaseUntil: h.clock.now() + 86_400,
  };
  let key = rt.store.windowKey(m, "mp4");
  const seen = watch(rt.store.s3, () => key);
  const watchKey = (k: string) => {
    key = k;
  };
  const flussonic = new FlussonicClient(h.config.sources[0]!, { type: "none" });
  const deps = (singleMaxBytes: number, partBytes?: number): CopyWindowDeps => ({
    store: rt.store,
    flussonic,
    throttle: new TokenBucket(2_000 * MiB),
    now: h!.clock.now,
    // 12 MiB of memory buffers: a window expected to fit them is one PutObject from memory, not
    // spooled; the windows here are larger.
    partSize: 4 * MiB,
    copyTimeoutSeconds: 60,
    spool: { dir: spool!, singleMaxBytes, ...(partBytes ? { partBytes } : {}) },
  });
  return { h, rt, m, key, watchKey, ...seen, deps, flussonic };
}

const uploadRequests = (c: Map<string, number>) =>
  (c.get("PutObjectCommand") ?? 0) +
  (c.get("CreateMultipartUploadCommand") ?? 0) +
  (c.get("UploadPartCommand") ?? 0) +
  (c.get("CompleteMultipartUploadCommand") ?? 0);

describe("a window spooled to disk (issue 26 item 1, issue 22 item 6)", () => {
  it("a 15 MB window within the threshold is stored by ONE PutObject carrying its SHA-256", async () => {
    const { h, rt, m, key, watchKey, counts, putHeaders, putBodies, deps, flussonic } = await setup(200_000);
    const outcome = await copyWindow(deps(256 * MiB), m);
    expect(outcome.status).toBe("copied");
    const record = outcome.status === "copied" ? outcome.record : undefined;
    const bytes = await h.getObject(key);
    expect(bytes.length).toBeGreaterThan(8 * MiB);
    expect(bytes.equals(h.sim.body("cam1", FROM, 600, "mp4"))).toBe(true);
    const sha = createHash("sha256").update(bytes).digest();
    expect(record?.sha256).toBe(sha.toString("hex"));
    // One request for the window's bytes (the memory path with 8 MiB parts: create, 2 parts, complete).
    expect(uploadRequests(counts)).toBe(1);
    expect(counts.get("PutObjectCommand")).toBe(1);
    expect(putHeaders.map((p) => p["x-amz-checksum-sha256"])).toEqual([sha.toString("base64")]);
    // A stream of the spool file's reads (a Transform that collects their garbage), not a Buffer.
    expect(putBodies, "the body is read from the spool file").toEqual(["Transform"]);
    // The record counts it: the listing of orphans, the PutObject, the record itself.
    expect(record?.requests?.put).toBe(3);
    expect(h.openMultipartUploads()).toEqual([]);
    expect(readdirSync(spool!)).toEqual([]);
    expect((await rt.store.getRecord(m))?.sha256).toBe(record?.sha256);

    // The window before, with the copier's 24 MiB of memory buffers, which it fits: one PutObject
    // from memory, not spooled (no file per small window).
    const before = { ...m, from: m.from - 600 };
    watchKey(rt.store.windowKey(before, "mp4"));
    putBodies.length = 0;
    const small = await copyWindow({ ...deps(256 * MiB), partSize: 8 * MiB }, before);
    await flussonic.close();
    expect(small.status).toBe("copied");
    expect(putBodies).toEqual(["Buffer"]);
    expect(readdirSync(spool!)).toEqual([]);
  });

  it("a window over the threshold goes up in parts read from the spool, byte for byte", async () => {
    const { h, m, key, counts, deps, flussonic } = await setup(200_000);
    const outcome = await copyWindow(deps(6 * MiB, 5 * MiB), m);
    await flussonic.close();
    expect(outcome.status).toBe("copied");
    const bytes = await h.getObject(key);
    expect(bytes.equals(h.sim.body("cam1", FROM, 600, "mp4"))).toBe(true);
    expect(outcome.status === "copied" ? outcome.record.sha256 : "").toBe(
      createHash("sha256").update(bytes).digest("hex"),
    );
    expect(counts.get("PutObjectCommand")).toBeUndefined();
    // Parts of S3's smallest size here (5 MiB; 64 MiB by default): a 15 MB window is 3.
    expect(counts.get("UploadPartCommand")).toBe(Math.ceil(bytes.length / (5 * MiB)));
    expect(counts.get("CreateMultipartUploadCommand")).toBe(1);
    expect(counts.get("CompleteMultipartUploadCommand")).toBe(1);
    expect(readdirSync(spool!)).toEqual([]);
  });

  for (const [mode, singleMax] of [
    ["one PutObject", 256 * MiB],
    ["parts", 6 * MiB],
  ] as const) {
    it(`an export that ends early (${mode}): the copy fails, retryable; no spool file, upload, object or record is left`, async () => {
      const { h, rt, m, key, deps, flussonic } = await setup(200_000, {
        faults: { truncateAfterFragments: 420, bodyFaultNext: 1 },
      });
      const error = await copyWindow(deps(singleMax, 5 * MiB), m).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RetryableError);
      expect((error as Error).message).toMatch(/incomplete body: media ends at/);
      expect(readdirSync(spool!)).toEqual([]);
      expect(h.openMultipartUploads()).toEqual([]);
      expect(await rt.store.windowExists(key)).toBe(false);
      expect(await rt.store.getRecord(m)).toBeUndefined();
      // The redelivery copies the whole window.
      const again = await copyWindow(deps(singleMax, 5 * MiB), m);
      await flussonic.close();
      expect(again.status).toBe("copied");
      expect((await h.getObject(key)).equals(h.sim.body("cam1", FROM, 600, "mp4"))).toBe(true);
      expect(readdirSync(spool!)).toEqual([]);
    });
  }
});
