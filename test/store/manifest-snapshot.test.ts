/**
 * The snapshot of a source's manifests (functions/store/manifest-snapshot.ts): a process that holds
 * none takes each manifest from it, without a GET, only while the listing shows the ETag it has in
 * the snapshot; what changed since is read; a snapshot damaged in any way (garbage, truncated, a
 * flipped byte, another format, another source's, an entry under another stream's key) or not
 * readable is not used at all. On the lean and the SDK paths, against the embedded emulator behind
 * the S3 fault proxy (which logs every request).
 */

import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type ProxiedBucket, startProxiedBucket } from "../../dev/kit/proxied-bucket.ts";
import type { S3FaultProxy } from "../../dev/kit/s3-fault-proxy.ts";
import { manifestKey, manifestSnapshotKey, manifestsFolder } from "../../functions/domain/keys.ts";
import { emptyManifest, type Manifest } from "../../functions/domain/manifest.ts";
import { BackupStore, SNAPSHOT_MIN_MANIFESTS, StoreError } from "../../functions/store/backup-store.ts";
import {
  DamagedSnapshotError,
  decodeManifestSnapshot,
  encodeManifestSnapshot,
} from "../../functions/store/manifest-snapshot.ts";
import { createS3Client, type Endpoints } from "../../local/aws-clients.ts";

const BUCKET = "manifest-snapshot-test";
const STREAMS = Array.from({ length: 20 }, (_, i) => `cam${String(i).padStart(2, "0")}`);
let proxy: S3FaultProxy;
let endpoints: Endpoints;
const clients: S3Client[] = [];

let kit: ProxiedBucket;

beforeAll(async () => {
  kit = await startProxiedBucket(BUCKET);
  ({ proxy, endpoints } = kit);
});

afterAll(() => kit.close());

afterEach(() => {
  proxy.clear();
  proxy.log.length = 0;
  for (const c of clients.splice(0)) c.destroy();
});

function client(path: "lean" | "sdk"): S3Client {
  const s3 = createS3Client(endpoints);
  if (path === "sdk") s3.middlewareStack.add((next) => next, { name: "flussonicBackupTest" });
  clients.push(s3);
  return s3;
}

/** A manifest with a few ranges, leases and optional fields, different per stream and `round`. */
function manifest(stream: string, round: number, source = "src"): Manifest {
  const n = Number(stream.slice(3)) + round;
  return {
    ...emptyManifest(source, stream),
    covered: Array.from({ length: 3 + (n % 4) }, (_, i) => ({
      from: 1_760_000_000 + i * 1200,
      to: 1_760_000_600 + i * 1200 + n,
    })),
    leases: [{ from: 1_760_100_000 + n, duration: 600, until: 1_760_101_000 }],
    windows: n,
    bytes: n * 1000,
    head: 1_760_100_000 + n,
    reads: n % 2 ? "slices" : "whole",
    updatedAt: 1_760_100_000 + round,
  };
}

/** Requests of one kind of key under a prefix: "op status" in order. */
function requests(prefix: string, kind: "manifest" | "snapshot"): string[] {
  return proxy.log
    .filter((r) => r.kind === kind && r.key.startsWith(prefix))
    .map((r) => `${r.op} ${r.status}`);
}

/** The manifest as an independent GET reads it now. */
async function stored(s3: S3Client, key: string): Promise<Manifest | undefined> {
  try {
    const r = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return JSON.parse(await r.Body!.transformToString()) as Manifest;
  } catch {
    return undefined;
  }
}

/** A store that wrote every stream's manifest (round 0) and the source's snapshot. */
async function written(prefix: string, path: "lean" | "sdk"): Promise<BackupStore> {
  const store = new BackupStore(client(path), BUCKET, prefix);
  for (const s of STREAMS) expect(await store.writeManifest(manifest(s, 0), undefined)).toBe(true);
  expect(await store.writeManifestSnapshot("src", 1_760_100_000)).toBe(true);
  return store;
}

for (const path of ["lean", "sdk"] as const) {
  describe(`manifest snapshots (${path} path)`, () => {
    it("a new process takes every manifest from the snapshot: one GET instead of one per manifest", async () => {
      const prefix = `${path}-all/`;
      const writer = await written(prefix, path);
      // Nothing written since: no second snapshot.
      expect(await writer.writeManifestSnapshot("src", 1_760_100_001)).toBe(false);
      expect(requests(prefix, "snapshot")).toEqual(["PutObject 200"]);
      proxy.log.length = 0;

      const fresh = new BackupStore(client(path), BUCKET, prefix);
      const listing = await fresh.listManifests("src");
      expect(await fresh.loadManifestSnapshot("src", listing)).toBe(STREAMS.length);
      for (const s of STREAMS) {
        const read = await fresh.readManifest("src", s, listing);
        expect(read.manifest, s).toEqual(manifest(s, 0));
        expect(read.etag).toBe(listing.get(manifestKey(prefix, "src", s)));
      }
      expect(requests(prefix, "manifest")).toEqual(["ListObjectsV2 200"]);
      expect(requests(prefix, "snapshot")).toEqual(["GetObject 200"]);

      // The same snapshot again (as when the process's copies were forgotten): a 304, nothing taken
      // twice; a process that holds what is listed does not ask for it at all.
      for (const s of STREAMS.slice(0, SNAPSHOT_MIN_MANIFESTS))
        fresh.manifests.forget(manifestKey(prefix, "src", s));
      expect(await fresh.loadManifestSnapshot("src", listing)).toBe(0);
      expect(requests(prefix, "snapshot")).toEqual(["GetObject 200", "GetObject 304"]);
      expect(await writer.loadManifestSnapshot("src", await writer.listManifests("src"))).toBe(0);
      expect(requests(prefix, "snapshot")).toHaveLength(2);
    });

    it("a manifest changed, created or deleted after the snapshot is read, and only that one", async () => {
      const prefix = `${path}-changed/`;
      const writer = await written(prefix, path);
      // Another writer changes cam03 and cam07 (one of them back and forth: its ETag is then the
      // snapshot's again, and so is its content), deletes cam05 and creates cam99.
      const other = client("lean");
      const put = (m: Manifest) =>
        other.send(
          new PutObjectCommand({
            Bucket: BUCKET,
            Key: manifestKey(prefix, "src", m.stream),
            Body: JSON.stringify(m),
          }),
        );
      await put(manifest("cam03", 1));
      await put(manifest("cam07", 1));
      await put(manifest("cam07", 0));
      await put(manifest("cam99", 0));
      await other.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: manifestKey(prefix, "src", "cam05") }));
      expect(writer.manifests.size).toBe(STREAMS.length);
      proxy.log.length = 0;

      const fresh = new BackupStore(client(path), BUCKET, prefix);
      const listing = await fresh.listManifests("src");
      expect(await fresh.loadManifestSnapshot("src", listing)).toBe(STREAMS.length - 2);
      const gets: string[] = [];
      for (const s of [...STREAMS, "cam99"]) {
        const before = proxy.log.length;
        const read = await fresh.readManifest("src", s, listing);
        if (proxy.log.length > before) gets.push(s);
        // Whatever the path, what is read is what is stored.
        const key = manifestKey(prefix, "src", s);
        expect(read.manifest, s).toEqual((await stored(other, key)) ?? emptyManifest("src", s));
      }
      expect(gets).toEqual(["cam03", "cam99"]);
    });

    it("a damaged or foreign snapshot is not used at all: every manifest is read", async () => {
      const prefix = `${path}-damaged/`;
      const writer = await written(prefix, path);
      const key = manifestSnapshotKey(prefix, "src");
      const other = client("lean");
      const good = Buffer.from(
        await (
          await other.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))
        ).Body!.transformToByteArray(),
      );
      const folder = manifestsFolder(prefix, "src");
      const keyOf = (s: string) => manifestKey(prefix, "src", s);
      expect(decodeManifestSnapshot(good, "src", folder, keyOf).entries).toHaveLength(STREAMS.length);
      const flipped = Buffer.from(good);
      // A bit of the last covered value (before the CRC32): only the CRC32 tells.
      const last = flipped.length - 6;
      flipped[last] = flipped[last]! ^ 1;
      const format2 = Buffer.from(good);
      format2[8] = 2;
      // Another source's snapshot copied here; and well-formed snapshots (CRC32 and length right)
      // whose entries carry the ETags the listing shows but another content: another source's
      // manifests, another stream's.
      const folder2 = manifestsFolder(prefix, "src2");
      const foreignStore = new BackupStore(client("lean"), BUCKET, prefix);
      for (const s of STREAMS) await foreignStore.writeManifest(manifest(s, 0, "src2"), undefined);
      const theirs = [...foreignStore.manifests.heldUnder(folder2)];
      const copied = encodeManifestSnapshot("src2", folder2, 1, theirs);
      const held = [...writer.manifests.heldUnder(folder)];
      const etagOf = (k: string) => writer.manifests.etagOf(folder + k.slice(folder2.length))!;
      const foreign = encodeManifestSnapshot(
        "src",
        folder,
        1,
        theirs.map(([k, e]) => [folder + k.slice(folder2.length), { ...e, etag: etagOf(k) }] as const),
      );
      const swapped = encodeManifestSnapshot(
        "src",
        folder,
        1,
        held.map(([k, e], i) => [k, i === 4 ? { ...held[5]![1], etag: e.etag } : e] as const),
      );
      const cases: [string, Buffer | string][] = [
        ["garbage", "<html>502 Bad Gateway</html>"],
        ["truncated", good.subarray(0, Math.floor(good.length / 2))],
        ["a flipped byte", flipped],
        ["another format", format2],
        ["another source's snapshot", copied],
        ["another source's manifests under this source's ETags", foreign],
        ["another stream's manifest under a stream's ETag", swapped],
      ];
      for (const [name, body] of cases) {
        await other.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
        proxy.log.length = 0;
        const fresh = new BackupStore(client(path), BUCKET, prefix);
        const listing = await fresh.listManifests("src");
        await expect(fresh.loadManifestSnapshot("src", listing), name).rejects.toBeInstanceOf(
          DamagedSnapshotError,
        );
        expect(fresh.manifests.size, `${name}: nothing held`).toBe(0);
        for (const s of STREAMS)
          expect((await fresh.readManifest("src", s, listing)).manifest).toEqual(manifest(s, 0));
        expect(
          requests(prefix, "manifest").filter((r) => r.startsWith("GetObject")),
          name,
        ).toHaveLength(STREAMS.length);
      }
    });

    it("an entry that passes the snapshot's checks but does not parse is read instead, the others are used", async () => {
      const prefix = `${path}-unparsable/`;
      const writer = await written(prefix, path);
      const folder = manifestsFolder(prefix, "src");
      const bad = manifestKey(prefix, "src", "cam04");
      const held = [...writer.manifests.heldUnder(folder)].map(([k, e]) =>
        k === bad
          ? ([k, { ...e, rest: '{"version":1,"source":"src","stream":"cam04",' }] as const)
          : ([k, e] as const),
      );
      const other = client("lean");
      await other.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: manifestSnapshotKey(prefix, "src"),
          Body: encodeManifestSnapshot("src", folder, 1, held),
        }),
      );
      proxy.log.length = 0;
      const fresh = new BackupStore(client(path), BUCKET, prefix);
      const listing = await fresh.listManifests("src");
      expect(await fresh.loadManifestSnapshot("src", listing)).toBe(STREAMS.length);
      for (const s of STREAMS)
        expect((await fresh.readManifest("src", s, listing)).manifest).toEqual(manifest(s, 0));
      expect(requests(prefix, "manifest").filter((r) => r.startsWith("GetObject"))).toEqual([
        "GetObject 200",
      ]);
    });

    it("a snapshot S3 does not give (reset mid-answer every time, or none at all) leaves every manifest to its GET", async () => {
      const prefix = `${path}-unread/`;
      await written(prefix, path);
      proxy.inject({ op: "GetObject", kind: "snapshot", fault: "reset-response", times: Infinity });
      const fresh = new BackupStore(client(path), BUCKET, prefix);
      const listing = await fresh.listManifests("src");
      await expect(fresh.loadManifestSnapshot("src", listing)).rejects.toBeInstanceOf(StoreError);
      expect(fresh.manifests.size).toBe(0);
      proxy.clear();
      await client("lean").send(
        new DeleteObjectCommand({ Bucket: BUCKET, Key: manifestSnapshotKey(prefix, "src") }),
      );
      expect(await fresh.loadManifestSnapshot("src", listing)).toBe(0);
      for (const s of STREAMS)
        expect((await fresh.readManifest("src", s, listing)).manifest).toEqual(manifest(s, 0));
    });
  });
}

describe("manifest snapshots: when they are written and read", () => {
  it("not for a source of fewer manifests than SNAPSHOT_MIN_MANIFESTS, and not when few are missing", async () => {
    const prefix = "few/";
    const store = new BackupStore(client("lean"), BUCKET, prefix);
    for (const s of STREAMS.slice(0, SNAPSHOT_MIN_MANIFESTS - 1))
      await store.writeManifest(manifest(s, 0), undefined);
    expect(await store.writeManifestSnapshot("src", 1)).toBe(false);
    await store.writeManifest(manifest(STREAMS[SNAPSHOT_MIN_MANIFESTS - 1]!, 0), undefined);
    expect(await store.writeManifestSnapshot("src", 1)).toBe(true);
    // A process that holds all but one: the one is read, the snapshot is not.
    store.manifests.forget(manifestKey(prefix, "src", STREAMS[0]!));
    proxy.log.length = 0;
    expect(await store.loadManifestSnapshot("src", await store.listManifests("src"))).toBe(0);
    expect(requests(prefix, "snapshot")).toEqual([]);
  });

  it("written once a new process would read one manifest in 50 or more: written or read whole since the last", async () => {
    const prefix = "ratio/";
    const many = Array.from({ length: 100 }, (_, i) => `cam${String(i).padStart(2, "0")}`);
    const store = new BackupStore(client("lean"), BUCKET, prefix);
    for (const s of many) await store.writeManifest(manifest(s, 0), undefined);
    expect(await store.writeManifestSnapshot("src", 1)).toBe(true);
    // One manifest of 100 changed: a new process reads one; not worth 100 entries.
    const one = await store.readManifest("src", "cam01");
    expect(await store.writeManifestSnapshot("src", 2)).toBe(false);
    await store.writeManifest({ ...manifest("cam01", 1) }, one.etag);
    expect(await store.writeManifestSnapshot("src", 2)).toBe(false);
    const two = await store.readManifest("src", "cam02");
    await store.writeManifest({ ...manifest("cam02", 1) }, two.etag);
    expect(await store.writeManifestSnapshot("src", 3)).toBe(true);

    // A new process that found no snapshot reads every manifest: it writes one, changing nothing.
    await client("lean").send(
      new DeleteObjectCommand({ Bucket: BUCKET, Key: manifestSnapshotKey(prefix, "src") }),
    );
    const fresh = new BackupStore(client("lean"), BUCKET, prefix);
    const listing = await fresh.listManifests("src");
    expect(await fresh.loadManifestSnapshot("src", listing)).toBe(0);
    for (const s of many) await fresh.readManifest("src", s, listing);
    expect(await fresh.writeManifestSnapshot("src", 4)).toBe(true);
    const next = new BackupStore(client("lean"), BUCKET, prefix);
    expect(await next.loadManifestSnapshot("src", await next.listManifests("src"))).toBe(many.length);
  });

  it("ranges that are not whole seconds survive the round trip (stored as 64-bit floats)", () => {
    const folder = "p/.backup/manifests/src/";
    const covered = new Float64Array([1_760_000_000.5, 1_760_000_600.25, 5e9, 5e9 + 1]);
    const bytes = encodeManifestSnapshot("src", folder, 1, [
      [`${folder}a.json`, { etag: '"e"', rest: '{"version":1,"source":"src","stream":"a"}', covered }],
    ]);
    const decoded = decodeManifestSnapshot(bytes, "src", folder, (s) => `${folder}${s}.json`);
    expect(decoded.entries[0]!.held().covered).toEqual(covered);
  });
});
