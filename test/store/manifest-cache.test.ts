/**
 * Manifests held across runs (functions/store/manifest-cache.ts): the emulator answers a GET with
 * If-None-Match as S3 does (304, no body), and BackupStore reads a manifest it holds conditionally:
 * 304 while unchanged, the new content once another writer changed it, empty once it is deleted;
 * through the lean path and through the SDK.
 */

import {
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ProxiedBucket, startProxiedBucket } from "../../dev/kit/proxied-bucket.ts";
import type { S3FaultProxy } from "../../dev/kit/s3-fault-proxy.ts";
import { manifestKey } from "../../functions/domain/keys.ts";
import { emptyManifest, type Manifest } from "../../functions/domain/manifest.ts";
import { BackupStore } from "../../functions/store/backup-store.ts";
import { ManifestCache } from "../../functions/store/manifest-cache.ts";
import { createS3Client, type Endpoints } from "../../local/aws-clients.ts";
import type { EmbeddedEmulator } from "../../local/embedded.ts";

const BUCKET = "manifest-cache-test";
let emulator: EmbeddedEmulator;
let proxy: S3FaultProxy;
let endpoints: Endpoints;

let kit: ProxiedBucket;

beforeAll(async () => {
  kit = await startProxiedBucket(BUCKET);
  ({ emulator, proxy, endpoints } = kit);
});

afterAll(() => kit.close());

function manifest(stream: string, head: number): Manifest {
  return {
    ...emptyManifest("src", stream),
    covered: [
      { from: 0, to: 600 },
      { from: 1200, to: head },
    ],
    head,
    leases: [{ from: head, duration: 600, until: 5000 }],
  };
}

/** The statuses the emulator gave to GETs of one manifest, in order. */
function manifestGets(key: string): (number | undefined)[] {
  return proxy.log.filter((r) => r.op === "GetObject" && r.key === key).map((r) => r.status);
}

describe("conditional GETs of manifests", () => {
  it("the emulator answers If-None-Match with 304 and no body while the ETag matches, 200 once it does not", async () => {
    const s3 = createS3Client(endpoints);
    try {
      const Key = "inm/object.json";
      const put = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: '{"a":1}' }));
      const unchanged = await s3
        .send(new GetObjectCommand({ Bucket: BUCKET, Key, IfNoneMatch: put.ETag }))
        .then(() => 200)
        .catch((error: unknown) =>
          error instanceof S3ServiceException ? error.$metadata.httpStatusCode : -1,
        );
      expect(unchanged).toBe(304);
      const other = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key, IfNoneMatch: '"0000"' }));
      expect(await other.Body!.transformToString()).toBe('{"a":1}');
      const raw = await fetch(`${emulator.endpoints.s3Endpoint}/${BUCKET}/${Key}`, {
        headers: { "if-none-match": put.ETag! },
      });
      expect(raw.status).toBe(304);
      expect((await raw.arrayBuffer()).byteLength).toBe(0);
    } finally {
      s3.destroy();
    }
  });

  for (const path of ["lean", "sdk"] as const) {
    it(`BackupStore (${path} path): a held manifest is read with 304 while unchanged, anew once another writer changed or deleted it`, async () => {
      const s3 = createS3Client(endpoints);
      const store = new BackupStore(s3, BUCKET, `${path}/`);
      // The SDK path is the one a client with request-changing middleware of ours takes.
      if (path === "sdk") s3.middlewareStack.add((next) => next, { name: "flussonicBackupTest" });
      const other = createS3Client(endpoints);
      try {
        const Key = manifestKey(`${path}/`, "src", "cam");
        const first = manifest("cam", 1800);
        expect(await store.writeManifest(first, undefined)).toBe(true);
        // Read after its own write: 304, the manifest as written, with the write's ETag.
        const a = await store.readManifest("src", "cam");
        expect(a.manifest).toEqual(first);
        expect(a.etag).toBeDefined();
        // A caller changing what it got does not change what the next read returns.
        a.manifest.covered.push({ from: 9000, to: 9600 });
        a.manifest.leases.length = 0;
        const b = await store.readManifest("src", "cam");
        expect(b.manifest).toEqual(first);
        expect(b.etag).toBe(a.etag);
        expect(manifestGets(Key)).toEqual([304, 304]);
        expect(store.requests.get("GetObject 304")).toBe(2);

        // Another planner writes it: the next read is a 200 with its content and ETag.
        const theirs = manifest("cam", 2400);
        await other.send(
          new PutObjectCommand({ Bucket: BUCKET, Key, Body: JSON.stringify(theirs), IfMatch: b.etag }),
        );
        const c = await store.readManifest("src", "cam");
        expect(c.manifest).toEqual(theirs);
        expect(c.etag).not.toBe(b.etag);
        // A conditional write with the stale ETag still loses; with the fresh one it wins.
        expect(await store.writeManifest(first, b.etag)).toBe(false);
        expect(await store.readManifest("src", "cam")).toEqual(c);
        expect(manifestGets(Key)).toEqual([304, 304, 200, 304]);

        // Deleted (a rebuild, an operator): the next read finds none, and does not ask conditionally again.
        await other.send(new DeleteObjectCommand({ Bucket: BUCKET, Key }));
        const d = await store.readManifest("src", "cam");
        expect(d.etag).toBeUndefined();
        expect(d.manifest).toEqual(emptyManifest("src", "cam"));
        expect(store.manifests.etagOf(Key)).toBeUndefined();
      } finally {
        proxy.clear();
        s3.destroy();
        other.destroy();
      }
    });
  }

  it("the cache holds at most its bytes, dropping the manifests held longest", () => {
    // An entry of these is about 260 bytes: room for two, not three.
    const cache = new ManifestCache(2 * 300);
    cache.remember("a", manifest("a", 1800), '"1"');
    cache.remember("b", manifest("b", 1800), '"2"');
    cache.remember("a", manifest("a", 2400), '"3"');
    cache.remember("c", manifest("c", 1800), '"4"');
    expect(cache.size).toBe(2);
    expect(cache.etagOf("b")).toBeUndefined();
    expect(cache.etagOf("a")).toBe('"3"');
    expect(cache.manifestOf("a")?.head).toBe(2400);
    expect(cache.etagOf("c")).toBe('"4"');
  });
});
