/**
 * The lean S3 path of the bookkeeping objects (functions/store/lean-s3.ts) against the embedded
 * emulator behind the S3 fault proxy (which enforces conditional writes as S3 does): it reads and
 * writes the same objects the SDK does, answers 404 and 412 as the SDK's callers expect, and tries
 * again where the SDK would (5xx, SlowDown, a dropped or cut response), within the same budget; a
 * request refused for a clock far from S3's is signed again by S3's clock, as the SDK does.
 */

import { once } from "node:events";
import { type AddressInfo, createServer, type Socket } from "node:net";
import {
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ProxiedBucket, startProxiedBucket } from "../../dev/kit/proxied-bucket.ts";
import type { S3FaultProxy } from "../../dev/kit/s3-fault-proxy.ts";
import { manifestKey } from "../../functions/domain/keys.ts";
import { emptyManifest } from "../../functions/domain/manifest.ts";
import { BackupStore } from "../../functions/store/backup-store.ts";
import { LeanS3 } from "../../functions/store/lean-s3.ts";
import { createS3Client, type Endpoints } from "../../local/aws-clients.ts";

const BUCKET = "lean-s3-test";
let proxy: S3FaultProxy;
let endpoints: Endpoints;

let kit: ProxiedBucket;

beforeAll(async () => {
  kit = await startProxiedBucket(BUCKET);
  ({ proxy, endpoints } = kit);
});

afterAll(() => kit.close());

async function withLean(fn: (lean: LeanS3, s3: ReturnType<typeof createS3Client>) => Promise<void>) {
  const s3 = createS3Client(endpoints);
  const lean = LeanS3.forClient(s3, BUCKET);
  expect(lean, "a plain client gets the lean path").toBeDefined();
  try {
    await fn(lean!, s3);
  } finally {
    proxy.clear();
    lean!.destroy();
    s3.destroy();
  }
}

describe("the lean S3 path", () => {
  it("writes what the SDK reads and reads what the SDK writes, with the same ETags, for keys that need encoding", async () => {
    await withLean(async (lean, s3) => {
      // A key as the backup writes it (percent-encoded names), and one with characters RFC 3986 reserves.
      for (const key of [".backup/manifests/src%201/caf%C3%A9.json", "odd/it's (1)*!.json"]) {
        const body = JSON.stringify({ name: "café", n: 1 });
        const etag = await lean.put(key, body, "application/json");
        const viaSdk = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
        expect(await viaSdk.Body!.transformToString()).toBe(body);
        expect(viaSdk.ETag).toBe(etag);

        await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: `${body} ` }));
        const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
        expect(await lean.get(key)).toEqual({ text: `${body} `, etag: head.ETag });
      }
      expect(await lean.get("no/such/key.json")).toBeUndefined();
    });
  });

  it("reaches an endpoint configured outside the client (AWS_ENDPOINT_URL_S3), as the SDK does", async () => {
    const saved = process.env.AWS_ENDPOINT_URL_S3;
    process.env.AWS_ENDPOINT_URL_S3 = proxy.url;
    const s3 = new S3Client({
      region: "us-east-1",
      credentials: endpoints.credentials!,
      forcePathStyle: true,
    });
    const lean = LeanS3.forClient(s3, BUCKET)!;
    try {
      const before = proxy.count("PutObject");
      await lean.put("configured/a.json", "{}", "application/json");
      expect(proxy.count("PutObject") - before).toBe(1);
      expect((await lean.get("configured/a.json"))?.text).toBe("{}");
    } finally {
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_S3;
      else process.env.AWS_ENDPOINT_URL_S3 = saved;
      lean.destroy();
      s3.destroy();
    }
  });

  it("conditional writes: If-None-Match on an existing object and a stale If-Match fail with 412, as an S3ServiceException", async () => {
    await withLean(async (lean) => {
      const key = "conditional/a.json";
      const first = await lean.put(key, "{}", "application/json", { ifNoneMatch: "*" });
      const again = await lean
        .put(key, "{}", "application/json", { ifNoneMatch: "*" })
        .catch((e: unknown) => e);
      expect(again).toBeInstanceOf(S3ServiceException);
      expect((again as S3ServiceException).$metadata.httpStatusCode).toBe(412);
      const second = await lean.put(key, '{"v":2}', "application/json", { ifMatch: first! });
      const stale = await lean
        .put(key, '{"v":3}', "application/json", { ifMatch: first! })
        .catch((e: unknown) => e);
      expect((stale as S3ServiceException).$metadata.httpStatusCode).toBe(412);
      expect((await lean.get(key))?.etag).toBe(second);
    });
  });

  it("tries again after 500s, a dropped response and a response cut in half, as the SDK would", async () => {
    await withLean(async (lean) => {
      const key = "retries/a.json";
      const drop = proxy.inject({ op: "PutObject", key: /^retries\//, fault: "drop-response", times: 1 });
      await lean.put(key, '{"a":1}', "application/json");
      expect(drop.hits).toBe(1);
      const errors = proxy.inject({ op: "GetObject", key: /^retries\//, fault: "500", times: 2 });
      expect((await lean.get(key))?.text).toBe('{"a":1}');
      expect(errors.hits).toBe(2);
      const cut = proxy.inject({ op: "GetObject", key: /^retries\//, fault: "reset-response", times: 1 });
      expect((await lean.get(key))?.text).toBe('{"a":1}');
      expect(cut.hits).toBe(1);
    });
  });

  it("corrects its clock from S3's answer to a request signed too far from S3's time, and signs again once", async () => {
    // S3's clock an hour ahead of this host's: the proxy refuses what is signed 15 minutes or more
    // from it with 403 RequestTimeTooSkewed (and its own Date), as S3 does.
    proxy.clockOffsetMs = 3_600_000;
    try {
      await withLean(async (lean) => {
        const from = proxy.log.length;
        await lean.put("skew/a.json", '{"a":1}', "application/json");
        const puts = proxy.log.slice(from);
        expect(puts.map((r) => [r.op, r.status, r.skewed ?? false])).toEqual([
          ["PutObject", 403, true],
          ["PutObject", 200, false],
        ]);
        // The first signed by this host's clock, the second by S3's (taken from the refusal's Date).
        const [refused, signedAgain] = puts.map((r) => r.signedAt!);
        expect(Math.abs(refused! - Date.now())).toBeLessThan(60_000);
        expect(Math.abs(signedAgain! - (Date.now() + 3_600_000))).toBeLessThan(60_000);
        // The correction is kept: the next request is signed by S3's clock at once.
        expect((await lean.get("skew/a.json"))?.text).toBe('{"a":1}');
        const gets = proxy.log.slice(from + 2);
        expect(gets.map((r) => [r.op, r.status, r.skewed ?? false])).toEqual([["GetObject", 200, false]]);
      });
    } finally {
      proxy.clockOffsetMs = 0;
    }
  });

  it("gives up after the client's attempts (3) on an endless SlowDown, with the S3 error's name and status", async () => {
    await withLean(async (lean) => {
      const rule = proxy.inject({
        op: "GetObject",
        key: /^slow\//,
        fault: "slow-down",
        times: Number.POSITIVE_INFINITY,
      });
      const error = await lean.get("slow/a.json").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(S3ServiceException);
      expect((error as S3ServiceException).name).toBe("SlowDown");
      expect((error as S3ServiceException).$metadata.httpStatusCode).toBe(503);
      expect(rule.hits).toBe(3);
    });
  });

  it("fails on an endpoint that accepts and never answers, once the client's socket timeout passes on every attempt", async () => {
    const sockets: Socket[] = [];
    const silent = createServer((socket) => {
      sockets.push(socket);
      socket.on("data", () => undefined);
      socket.on("error", () => undefined);
    });
    silent.listen(0, "127.0.0.1");
    await once(silent, "listening");
    const { port } = silent.address() as AddressInfo;
    const s3 = createS3Client({ ...endpoints, s3Endpoint: `http://127.0.0.1:${port}`, socketIdleMs: 300 });
    const lean = LeanS3.forClient(s3, BUCKET)!;
    try {
      const started = performance.now();
      const error = await lean.get("k.json").catch((e: unknown) => e);
      expect((error as { name?: string }).name).toBe("TimeoutError");
      expect(performance.now() - started).toBeLessThan(10_000);
      expect(sockets.length).toBe(3);
    } finally {
      lean.destroy();
      s3.destroy();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });

  it("is not used for a client whose requests our middleware changes (--no-conditional-writes, --no-s3-checksums)", () => {
    for (const s3Without of [{ conditionalWrites: true }, { checksums: true }]) {
      const s3 = createS3Client({ ...endpoints, s3Without });
      expect(LeanS3.forClient(s3, BUCKET)).toBeUndefined();
      s3.destroy();
    }
  });

  it("BackupStore reads and writes manifests through it: a lost race is still false, a missing manifest still empty", async () => {
    const store = new BackupStore(createS3Client(endpoints), BUCKET, "lean/");
    try {
      const before = proxy.count("GetObject", "manifest");
      expect((await store.readManifest("src", "cam 1")).etag).toBeUndefined();
      const m = { ...emptyManifest("src", "cam 1"), covered: [{ from: 0, to: 600 }], head: 600 };
      expect(await store.writeManifest(m, undefined)).toBe(true);
      const read = await store.readManifest("src", "cam 1");
      expect(read.manifest).toEqual(m);
      expect(await store.writeManifest(m, undefined)).toBe(false);
      expect(await store.writeManifest({ ...m, head: 1200 }, read.etag)).toBe(true);
      expect(await store.writeManifest({ ...m, head: 1800 }, read.etag)).toBe(false);
      expect(proxy.count("GetObject", "manifest") - before).toBe(2);
      expect(proxy.log.some((r) => r.key === manifestKey("lean/", "src", "cam 1"))).toBe(true);
    } finally {
      store.s3.destroy();
    }
  });
});
