/**
 * A listing of a source's manifests (BackupStore.listManifests, manifest-cache.ts ManifestListing):
 * the ETags the emulator lists are those its writes answered, so readManifest with a listing asks
 * nothing for a manifest held unchanged or not listed, reads one another writer changed or created,
 * and still reads (conditionally) one listed without an ETag; pages of the listing are followed.
 * Against the embedded emulator behind the S3 fault proxy, which logs every request.
 */

import { DeleteObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type ProxiedBucket, startProxiedBucket } from "../../dev/kit/proxied-bucket.ts";
import type { S3FaultProxy } from "../../dev/kit/s3-fault-proxy.ts";
import { manifestKey } from "../../functions/domain/keys.ts";
import { emptyManifest, type Manifest } from "../../functions/domain/manifest.ts";
import { BackupStore } from "../../functions/store/backup-store.ts";
import { sameEtag } from "../../functions/store/manifest-cache.ts";
import { createS3Client, type Endpoints } from "../../local/aws-clients.ts";

const BUCKET = "manifest-listing-test";
let proxy: S3FaultProxy;
let endpoints: Endpoints;

let kit: ProxiedBucket;

beforeAll(async () => {
  kit = await startProxiedBucket(BUCKET);
  ({ proxy, endpoints } = kit);
});

afterAll(() => kit.close());

afterEach(() => {
  proxy.clear();
  proxy.log.length = 0;
});

function manifest(stream: string, head: number): Manifest {
  return { ...emptyManifest("src", stream), covered: [{ from: 0, to: head }], head };
}

/** Statuses of the GETs of manifests, by stream, in order. */
function manifestGets(prefix: string): Record<string, (number | undefined)[]> {
  const out: Record<string, (number | undefined)[]> = {};
  for (const r of proxy.log) {
    if (r.op !== "GetObject" || r.kind !== "manifest" || !r.key.startsWith(prefix)) continue;
    const stream = r.key.slice(r.key.lastIndexOf("/") + 1, -".json".length);
    out[stream] = [...(out[stream] ?? []), r.status];
  }
  return out;
}

describe("a listing of the manifests", () => {
  it("ETags compare bare: quotes and a weak prefix aside, different tags differ", () => {
    expect(sameEtag('"abc"', "abc")).toBe(true);
    expect(sameEtag('W/"abc"', '"abc"')).toBe(true);
    expect(sameEtag('"abc"', '"abd"')).toBe(false);
    expect(sameEtag('"abc"', '"abc-2"')).toBe(false);
  });

  for (const path of ["lean", "sdk"] as const) {
    it(`(${path} path) skips the GET of manifests held unchanged or not listed, reads those changed or new`, async () => {
      const s3 = createS3Client(endpoints);
      if (path === "sdk") s3.middlewareStack.add((next) => next, { name: "flussonicBackupTest" });
      const prefix = `${path}/`;
      const store = new BackupStore(s3, BUCKET, prefix);
      const other = createS3Client(endpoints);
      try {
        const streams = ["a", "b", "c", "d", "e", "f", "g"];
        for (const s of streams) expect(await store.writeManifest(manifest(s, 600), undefined)).toBe(true);
        // A manifest of another source whose name starts alike is not in this source's listing.
        const twin = { ...manifest("a", 600), source: "src2" };
        expect(await store.writeManifest(twin, undefined)).toBe(true);

        // Pages of 3: 7 manifests take 3 requests, and every one is listed once with its ETag.
        const listing = await store.listManifests("src", 3);
        expect(proxy.count("ListObjectsV2", "manifest")).toBe(3);
        expect([...listing.keys()].sort()).toEqual(streams.map((s) => manifestKey(prefix, "src", s)));
        for (const s of streams) {
          const key = manifestKey(prefix, "src", s);
          expect(listing.get(key), `listed ETag of ${s}`).toBeDefined();
          expect(sameEtag(listing.get(key)!, store.manifests.etagOf(key)!), `${s}: listed as written`).toBe(
            true,
          );
        }
        // Every manifest held as listed: no GET at all.
        for (const s of streams) {
          const read = await store.readManifest("src", s, listing);
          expect(read.manifest).toEqual(manifest(s, 600));
          expect(read.etag).toBe(store.manifests.etagOf(manifestKey(prefix, "src", s)));
        }
        expect(manifestGets(prefix)).toEqual({});

        // Another writer changes b, deletes c and creates h; this process forgets d (as a bounded
        // cache does). The next listing: b and h read (200), d read conditionally (its held copy is
        // gone, so a plain GET), c asked for not at all, the rest not read.
        const put = (m: Manifest) =>
          other.send(
            new PutObjectCommand({
              Bucket: BUCKET,
              Key: manifestKey(prefix, "src", m.stream),
              Body: JSON.stringify(m),
            }),
          );
        await put(manifest("b", 1200));
        await put(manifest("h", 1800));
        await other.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: manifestKey(prefix, "src", "c") }));
        store.manifests.forget(manifestKey(prefix, "src", "d"));
        const next = await store.listManifests("src");
        const reads = Object.fromEntries(
          await Promise.all(
            [...streams, "h"].map(async (s) => [s, await store.readManifest("src", s, next)] as const),
          ),
        );
        expect(reads.b!.manifest.head).toBe(1200);
        expect(reads.h!.manifest.head).toBe(1800);
        expect(reads.c!.etag).toBeUndefined();
        expect(reads.c!.manifest).toEqual(emptyManifest("src", "c"));
        expect(reads.d!.manifest).toEqual(manifest("d", 600));
        expect(manifestGets(prefix)).toEqual({ b: [200], d: [200], h: [200] });

        // A stale write over b (its ETag before the other writer's) still loses, listing or not.
        const before = listing.get(manifestKey(prefix, "src", "b"))!;
        expect(await store.writeManifest(manifest("b", 600), before)).toBe(false);
      } finally {
        s3.destroy();
        other.destroy();
      }
    });
  }

  for (const path of ["lean", "sdk"] as const) {
    it(`(${path} path) a listing S3 refuses is an error, never an empty listing`, async () => {
      const s3 = createS3Client(endpoints);
      if (path === "sdk") s3.middlewareStack.add((next) => next, { name: "flussonicBackupTest" });
      const store = new BackupStore(s3, BUCKET, `${path}-refused/`);
      try {
        expect(await store.writeManifest(manifest("a", 600), undefined)).toBe(true);
        proxy.inject({ op: "ListObjectsV2", fault: "500", times: Infinity });
        await expect(store.listManifests("src")).rejects.toThrow(/S3: cannot list .*manifests\/src\/.*500/);
      } finally {
        s3.destroy();
      }
    });
  }

  it("listed without ETags (a store whose listings carry none): held manifests are read with If-None-Match", async () => {
    const s3 = createS3Client(endpoints);
    const prefix = "bare/";
    const store = new BackupStore(s3, BUCKET, prefix);
    try {
      for (const s of ["a", "b"]) expect(await store.writeManifest(manifest(s, 600), undefined)).toBe(true);
      proxy.inject({ op: "ListObjectsV2", fault: "no-listing-etags", times: Infinity });
      const listing = await store.listManifests("src");
      expect([...listing.values()]).toEqual([undefined, undefined]);
      for (const s of ["a", "b"]) {
        expect((await store.readManifest("src", s, listing)).manifest).toEqual(manifest(s, 600));
      }
      // Not listed: still no request.
      expect((await store.readManifest("src", "z", listing)).etag).toBeUndefined();
      expect(manifestGets(prefix)).toEqual({ a: [304], b: [304] });
    } finally {
      s3.destroy();
    }
  });
});
