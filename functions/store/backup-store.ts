/**
 * The S3 side of the backup's bookkeeping: manifests, completion records and catalogs.
 * Archive objects themselves are written by the copier (functions/copier/copy-window.ts).
 */
import { createHash } from "node:crypto";
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import type { ArchiveFormat } from "../config/config.ts";
import { MalformedAnswerError, RetryableError } from "../domain/errors.ts";
import {
  catalogKey,
  controlKey,
  manifestKey,
  manifestSnapshotKey,
  manifestsFolder,
  recordKey,
  recordsPrefix,
  type WindowId,
  windowKey,
} from "../domain/keys.ts";
import { type CopyRecord, emptyManifest, type Manifest } from "../domain/manifest.ts";
import { decodeKeySegment, encodeKeySegment } from "../domain/names.ts";
import { type RequestTally, ScopedCounter } from "../shared/request-scope.ts";
import { jsonPut } from "./json-put.ts";
import { type LeanListPage, LeanS3, LeanUnsupportedError } from "./lean-s3.ts";
import { type HeldManifest, ManifestCache, type ManifestListing, sameEtag } from "./manifest-cache.ts";
import { decodeManifestSnapshot, encodeManifestSnapshot, SNAPSHOTS_SUPPORTED } from "./manifest-snapshot.ts";

/**
 * Manifests a source needs at least for its snapshot to be written or read (manifest-snapshot.ts):
 * below, a new process's GETs of them cost less than the snapshot's bookkeeping.
 */
export const SNAPSHOT_MIN_MANIFESTS = 16;
/**
 * A snapshot is read when at least one listed manifest in this many is not held as listed: reading
 * and checking a snapshot entry costs about 1/50 of a GET's CPU.
 */
const SNAPSHOT_READ_RATIO = 50;

/** A manifest as read, with the ETag to make the next write conditional. */
export interface StoredManifest {
  manifest: Manifest;
  etag: string | undefined;
}

/** A stored window in its day's catalog: its copy record without the source and stream. */
export type CatalogEntry = Omit<CopyRecord, "source" | "stream">;

export interface Catalog {
  version: 1;
  source: string;
  stream: string;
  day: string;
  windows: CatalogEntry[];
  /**
   * The planner's S3 and SQS requests (by operation) and runs of the whole source, kept here since
   * the last catalog the planner wrote (any stream's, any day): summed over the source's catalogs by
   * the `cost` report.
   */
  planner?: { runs: number; ops: Record<string, number> };
}

/** The operator's switch for a source, set by `flussonic-backup pause` and cleared by `resume`. */
export interface SourceControl {
  paused: true;
  reason: string;
  /** Unix seconds. */
  at: number;
}

/** What identifies the current bytes of an object: S3's ETag, and VersionId in a versioned bucket. */
export interface StoredObject {
  etag: string | undefined;
  versionId: string | undefined;
  size?: number | undefined;
}

/** Counts S3 requests by kind (the planner's O(streams) promise is measured with it). */
export type RequestCounter = Map<string, number>;

export class BackupStore {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly prefix: string;
  readonly requests: RequestCounter = new ScopedCounter();
  /**
   * The planner's requests per source not yet kept in the bucket: counted as it runs, folded into the
   * next catalog it writes (compact-records.ts), so that keeping them costs no request of its own.
   */
  readonly plannerTallies = new Map<string, RequestTally>();
  /** Small JSON objects (manifests, catalogs, records) without the SDK's per-request cost (lean-s3.ts). */
  #lean: LeanS3 | undefined;
  /** Manifests as last read or written, for conditional GETs in the next run (manifest-cache.ts). */
  readonly manifests = new ManifestCache();
  /**
   * Per manifests folder (source), manifests this process wrote or read whole (a GET that brought
   * a body: its snapshot lacked them) since it wrote the snapshot: what a new process would read.
   */
  readonly #unsnapshotted = new Map<string, number>();
  /** Per manifests folder, the ETag of its snapshot as this process last read or wrote it. */
  readonly #snapshotEtags = new Map<string, string>();

  constructor(s3: S3Client, bucket: string, prefix: string) {
    this.s3 = s3;
    this.bucket = bucket;
    this.prefix = prefix;
    this.#lean = LeanS3.forClient(s3, bucket);
  }

  /**
   * PutObject of a bookkeeping JSON object, optionally conditional (If-Match / If-None-Match).
   * Returns the new object's ETag.
   */
  async #putJson(
    Key: string,
    Body: string,
    condition: { ifMatch?: string; ifNoneMatch?: "*" },
  ): Promise<string | undefined> {
    return await this.#leanOr<string | undefined>(
      (l) => l.put(Key, Body, "application/json", condition),
      async () =>
        (
          await this.s3.send(
            jsonPut({
              Bucket: this.bucket,
              Key,
              Body,
              ...(condition.ifMatch ? { IfMatch: condition.ifMatch } : {}),
              ...(condition.ifNoneMatch ? { IfNoneMatch: condition.ifNoneMatch } : {}),
            }),
          )
        ).ETag,
    );
  }

  /** Through the lean path when this client allows it, else (or once it turns out not to) the SDK. */
  async #leanOr<T>(lean: (l: LeanS3) => Promise<T>, sdk: () => Promise<T>): Promise<T> {
    const l = this.#lean;
    if (l) {
      try {
        return await lean(l);
      } catch (error) {
        if (!(error instanceof LeanUnsupportedError)) throw error;
        this.#lean = undefined;
        l.destroy();
      }
    }
    return await sdk();
  }

  #count(kind: string): void {
    this.requests.set(kind, (this.requests.get(kind) ?? 0) + 1);
  }

  windowKey(w: WindowId, format: ArchiveFormat): string {
    return windowKey(this.prefix, w, format);
  }

  /**
   * A stream's manifest and its ETag. One held from an earlier read or write of this process is
   * asked for conditionally (If-None-Match): a 304 answers it with no body. With `listing` (of the
   * source's manifests, taken before), one the listing shows unchanged since it was held, or does
   * not show at all, costs no request.
   */
  async readManifest(source: string, stream: string, listing?: ManifestListing): Promise<StoredManifest> {
    const key = manifestKey(this.prefix, source, stream);
    const held = this.manifests.etagOf(key);
    if (listing) {
      // With a listing of the source's manifests (listManifests): no request for one listed absent
      // or listed with the ETag held (manifest-cache.ts says why that is safe).
      if (!listing.has(key)) {
        this.manifests.forget(key);
        return { manifest: emptyManifest(source, stream), etag: undefined };
      }
      const listed = listing.get(key);
      const manifest = listed && held && sameEtag(listed, held) ? this.#heldCopy(key) : undefined;
      if (manifest) return { manifest, etag: held };
    }
    const got = await this.#getJson<Manifest>(key, rebuildHint(source, stream), this.manifests.etagOf(key));
    if (got === "not modified") {
      const manifest = this.#heldCopy(key);
      if (manifest) return { manifest, etag: held };
      return await this.readManifest(source, stream);
    }
    if (!got) {
      this.manifests.forget(key);
      return { manifest: emptyManifest(source, stream), etag: undefined };
    }
    this.manifests.remember(key, got.body, got.etag);
    this.#notInSnapshot(source);
    return { manifest: got.body, etag: got.etag };
  }

  #notInSnapshot(source: string): void {
    const folder = manifestsFolder(this.prefix, source);
    this.#unsnapshotted.set(folder, (this.#unsnapshotted.get(folder) ?? 0) + 1);
  }

  /**
   * The manifest held for `key`; one whose held copy does not parse (taken from a damaged snapshot
   * that passed its checks) is forgotten, so that it is read.
   */
  #heldCopy(key: string): Manifest | undefined {
    try {
      return this.manifests.manifestOf(key);
    } catch {
      this.manifests.forget(key);
      return undefined;
    }
  }

  /**
   * Writes a manifest, conditionally: If-Match the ETag it was read with, or If-None-Match for a new
   * one. Returns false when someone else changed it meanwhile (the caller re-plans next run).
   */
  async writeManifest(m: Manifest, etag: string | undefined): Promise<boolean> {
    this.#count("PutObject");
    try {
      const Key = manifestKey(this.prefix, m.source, m.stream);
      const Body = JSON.stringify(m);
      const written = await this.#putJson(Key, Body, etag ? { ifMatch: etag } : { ifNoneMatch: "*" });
      this.manifests.remember(Key, m, written);
      this.#notInSnapshot(m.source);
      return true;
    } catch (error) {
      if (lostRace(error, etag !== undefined)) return false;
      throw storeError(error, "write manifest");
    }
  }

  /**
   * The manifests of a source with their ETags, from one listing of their folder (1,000 a page, or
   * `pageSize`): what readManifest needs to skip the manifests that did not change.
   */
  async listManifests(source: string, pageSize?: number): Promise<ManifestListing> {
    const prefix = manifestsFolder(this.prefix, source);
    const listing = new Map<string, string | undefined>();
    let token: string | undefined;
    do {
      this.#count("ListObjectsV2");
      const page = await this.#leanOr<LeanListPage>(
        (l) => l.listPage(prefix, token, pageSize),
        async () => {
          const res = await this.s3.send(
            new ListObjectsV2Command({
              Bucket: this.bucket,
              Prefix: prefix,
              ContinuationToken: token,
              ...(pageSize ? { MaxKeys: pageSize } : {}),
            }),
          );
          return {
            objects: (res.Contents ?? []).flatMap((o) =>
              o.Key ? [{ key: o.Key, size: o.Size ?? 0, ...(o.ETag ? { etag: o.ETag } : {}) }] : [],
            ),
            next: res.IsTruncated ? res.NextContinuationToken : undefined,
          };
        },
      ).catch((error: unknown) => {
        throw storeError(error, `list ${prefix}`);
      });
      for (const o of page.objects) listing.set(o.key, o.etag);
      token = page.next;
    } while (token);
    return listing;
  }

  /**
   * Holds the manifests of the source's snapshot (manifest-snapshot.ts) that `listing` shows with
   * the ETag they have in it and that this process does not hold so: readManifest then uses them
   * without a request. Only when it saves requests: at least SNAPSHOT_MIN_MANIFESTS listed
   * manifests, and one in SNAPSHOT_READ_RATIO, are not held as listed (a new process: all of them).
   * Returns how many it took; 0 when there is no snapshot or it is the one this process last read
   * or wrote (a conditional GET). A damaged one throws a DamagedSnapshotError and nothing of it is
   * held.
   */
  async loadManifestSnapshot(source: string, listing: ManifestListing): Promise<number> {
    const folder = manifestsFolder(this.prefix, source);
    let needed = 0;
    for (const [key, listed] of listing) {
      const held = listed && this.manifests.etagOf(key);
      if (listed && !(held && sameEtag(held, listed))) needed++;
    }
    if (
      !SNAPSHOTS_SUPPORTED ||
      needed < SNAPSHOT_MIN_MANIFESTS ||
      needed * SNAPSHOT_READ_RATIO < listing.size
    )
      return 0;
    const key = manifestSnapshotKey(this.prefix, source);
    const got = await this.#getBytes(key, this.#snapshotEtags.get(folder));
    if (got === undefined || got === "not modified") return 0;
    const snapshot = decodeManifestSnapshot(got.bytes, source, folder, (stream) =>
      manifestKey(this.prefix, source, stream),
    );
    // Every entry taken is checked before any is held: a damaged snapshot is not used at all.
    const take: [string, HeldManifest][] = [];
    for (const e of snapshot.entries) {
      const listed = listing.get(e.key);
      if (!listed || !sameEtag(listed, e.etag)) continue;
      const held = this.manifests.etagOf(e.key);
      if (held && sameEtag(held, listed)) continue;
      take.push([e.key, e.held()]);
    }
    for (const [k, held] of take) this.manifests.hold(k, held);
    if (got.etag) this.#snapshotEtags.set(folder, got.etag);
    return take.length;
  }

  /**
   * Writes the source's snapshot from the manifests this process holds (at least
   * SNAPSHOT_MIN_MANIFESTS), when the manifests it wrote or read whole since its last snapshot (what
   * a new process would read, were it not written) are one in SNAPSHOT_READ_RATIO of them or more:
   * fewer cost a new process less than writing it does. One PutObject (unconditional: any
   * snapshot is safe, a newer one only saves more). True when written.
   */
  async writeManifestSnapshot(source: string, at: number): Promise<boolean> {
    const folder = manifestsFolder(this.prefix, source);
    const stale = this.#unsnapshotted.get(folder) ?? 0;
    if (!SNAPSHOTS_SUPPORTED || stale === 0) return false;
    const held = [...this.manifests.heldUnder(folder)];
    if (held.length < SNAPSHOT_MIN_MANIFESTS || stale * SNAPSHOT_READ_RATIO < held.length) return false;
    const Body = encodeManifestSnapshot(source, folder, at, held);
    const Key = manifestSnapshotKey(this.prefix, source);
    this.#unsnapshotted.delete(folder);
    this.#count("PutObject");
    try {
      const etag = await this.#leanOr<string | undefined>(
        (l) => l.put(Key, Body, "application/octet-stream"),
        async () =>
          (
            await this.s3.send(
              new PutObjectCommand({
                Bucket: this.bucket,
                Key,
                Body,
                ContentType: "application/octet-stream",
                ChecksumAlgorithm: "CRC32",
              }),
            )
          ).ETag,
      );
      if (etag) this.#snapshotEtags.set(folder, etag);
      else this.#snapshotEtags.delete(folder);
      return true;
    } catch (error) {
      this.#unsnapshotted.set(folder, stale + (this.#unsnapshotted.get(folder) ?? 0));
      throw storeError(error, `write ${Key}`);
    }
  }

  /** An object's bytes and ETag, undefined when there is none; "not modified" for If-None-Match. */
  async #getBytes(
    key: string,
    ifNoneMatch: string | undefined,
  ): Promise<{ bytes: Buffer; etag: string | undefined } | undefined | "not modified"> {
    this.#count("GetObject");
    try {
      return await this.#leanOr<{ bytes: Buffer; etag: string | undefined } | undefined | "not modified">(
        (l) => l.getBytes(key, ifNoneMatch),
        async () => {
          try {
            const r = await this.s3.send(
              new GetObjectCommand({ Bucket: this.bucket, Key: key, IfNoneMatch: ifNoneMatch }),
            );
            const bytes = (await r.Body?.transformToByteArray()) ?? new Uint8Array();
            return { bytes: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), etag: r.ETag };
          } catch (error) {
            if (ifNoneMatch && error instanceof S3ServiceException && error.$metadata.httpStatusCode === 304)
              return "not modified";
            if (
              error instanceof S3ServiceException &&
              (error.name === "NoSuchKey" || error.$metadata.httpStatusCode === 404)
            )
              return undefined;
            throw error;
          }
        },
      );
    } catch (error) {
      throw storeError(error, `read ${key}`);
    }
  }

  /** True when the archive object of a window exists (complete: uploads appear only when done). */
  async windowExists(key: string): Promise<boolean> {
    return (await this.headWindow(key)) !== undefined;
  }

  /** The current object of a window (its ETag and VersionId), or undefined when there is none. */
  async headWindow(key: string): Promise<StoredObject | undefined> {
    this.#count("HeadObject");
    try {
      const res = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { etag: res.ETag, versionId: res.VersionId, size: res.ContentLength };
    } catch (error) {
      if (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404) return undefined;
      throw storeError(error, `check ${key}`);
    }
  }

  /** Records a finished copy: one object per window, so concurrent copiers never contend. */
  async putRecord(record: CopyRecord): Promise<void> {
    this.#count("PutObject");
    try {
      await this.s3.send(
        jsonPut({
          Bucket: this.bucket,
          Key: recordKey(this.prefix, record),
          Body: JSON.stringify(record),
        }),
      );
    } catch (error) {
      throw storeError(error, "write completion record");
    }
  }

  recordKeyOf(w: WindowId): string {
    return recordKey(this.prefix, w);
  }

  /** The pending record of one window, if any. */
  async getRecord(w: WindowId): Promise<CopyRecord | undefined> {
    // A damaged record describes nothing: the caller records the stored object anew over it.
    return (await this.#getJson<CopyRecord>(recordKey(this.prefix, w)).catch(ignoreDamaged))?.body;
  }

  /** The pending record of one window with the ETag it was read with (for a conditional delete). */
  async getRecordTagged(w: WindowId): Promise<{ record: CopyRecord; etag: string | undefined } | undefined> {
    const got = await this.#getJson<CopyRecord>(recordKey(this.prefix, w)).catch(ignoreDamaged);
    return got && { record: got.body, etag: got.etag };
  }

  /**
   * Deletes one object only if it is still the one read (If-Match its ETag; S3 general purpose
   * buckets take conditional deletes). "changed": another writer replaced it meanwhile (412), or it
   * is gone already (404); either way nothing of theirs is deleted.
   */
  async deleteIfUnchanged(key: string, etag: string, what: string): Promise<"deleted" | "changed"> {
    this.#count("DeleteObject");
    try {
      await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key, IfMatch: etag }));
      return "deleted";
    } catch (error) {
      if (lostRace(error, true)) return "changed";
      throw storeError(error, what);
    }
  }

  /**
   * Pending completion records of a source (or of one of its streams), grouped by stream: one
   * listing (plus one GET per record not yet compacted), never a listing of stored archive objects.
   */
  async pendingRecords(
    source: string,
    stream?: string,
  ): Promise<{ keys: string[]; byStream: Map<string, CopyRecord[]>; damaged?: DamagedObjectError[] }> {
    const keysByStream = await this.pendingRecordKeys(source, stream);
    const keys = [...keysByStream.values()].flat();
    const byStream = new Map<string, CopyRecord[]>();
    const damaged: DamagedObjectError[] = [];
    for (const [name, list] of keysByStream) {
      const read = await this.readRecords(name, list, 1);
      damaged.push(...read.damaged);
      if (read.records.length > 0) byStream.set(name, read.records);
    }
    return { keys, byStream, ...(damaged.length > 0 ? { damaged } : {}) };
  }

  /**
   * The keys of a source's pending completion records (or of one of its streams), by stream: one
   * listing. The planner reads them a few streams at a time (readRecords), so that it never holds
   * every record of a source at once.
   */
  async pendingRecordKeys(source: string, stream?: string): Promise<Map<string, string[]>> {
    const prefix = recordsPrefix(this.prefix, source);
    const folder = stream === undefined ? prefix : `${prefix}${encodeKeySegment(stream)}/`;
    const byStream = new Map<string, string[]>();
    for await (const o of this.listObjects(folder)) {
      const name = decodeKeySegment(o.key.slice(prefix.length).split("/")[0] ?? "");
      const list = byStream.get(name);
      if (list) list.push(o.key);
      else byStream.set(name, [o.key]);
    }
    return byStream;
  }

  /**
   * The completion records of one stream at these keys (`concurrency` GETs at once), in key order.
   * A damaged record is left where it is (never compacted, so its window stays uncovered and is
   * planned again; the copier finds the object stored and writes a good record over it); a record
   * of another stream than its folder says is skipped.
   */
  async readRecords(
    stream: string,
    keys: readonly string[],
    concurrency = 4,
  ): Promise<{ records: CopyRecord[]; damaged: DamagedObjectError[] }> {
    const got: (CopyRecord | undefined)[] = new Array(keys.length);
    const damaged: DamagedObjectError[] = [];
    let next = 0;
    const worker = async () => {
      while (next < keys.length) {
        const i = next++;
        const record = (
          await this.#getJson<CopyRecord>(keys[i]!).catch((error: unknown) => {
            if (!(error instanceof DamagedObjectError)) throw error;
            damaged.push(error);
            return undefined;
          })
        )?.body;
        if (record && record.stream === stream) got[i] = record;
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, keys.length)) }, worker));
    return { records: got.filter((r): r is CopyRecord => r !== undefined), damaged };
  }

  /**
   * Every object under `prefix`, page by page (1000 keys at a time in memory), each key once. The
   * planner lists only the small records folder; operator commands list more.
   */
  async *listObjects(
    prefix: string,
  ): AsyncGenerator<{ key: string; size: number; etag?: string; modified?: number }> {
    let token: string | undefined;
    const seen = new Set<string>();
    do {
      this.#count("ListObjectsV2");
      const page = await this.s3
        .send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }))
        .catch((error: unknown) => {
          throw storeError(error, `list ${prefix}`);
        });
      for (const o of page.Contents ?? []) {
        if (!o.Key || seen.has(o.Key)) continue;
        seen.add(o.Key);
        yield {
          key: o.Key,
          size: o.Size ?? 0,
          ...(o.ETag ? { etag: o.ETag } : {}),
          ...(o.LastModified ? { modified: Math.floor(o.LastModified.getTime() / 1000) } : {}),
        };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /**
   * The folders directly under `prefix` (`{prefix}{name}/`), from a delimiter listing (1000 a page):
   * the planner learns in one listing which streams of a source have stored windows at all.
   */
  async listFolders(prefix: string): Promise<Set<string>> {
    const folders = new Set<string>();
    let token: string | undefined;
    do {
      this.#count("ListObjectsV2");
      const page = await this.s3
        .send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            Delimiter: "/",
            ContinuationToken: token,
          }),
        )
        .catch((error: unknown) => {
          throw storeError(error, `list ${prefix}`);
        });
      for (const p of page.CommonPrefixes ?? []) if (p.Prefix) folders.add(p.Prefix);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return folders;
  }

  /** Deletes compacted records (in batches of 1000). */
  async deleteKeys(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      this.#count("DeleteObjects");
      await this.s3
        .send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true },
          }),
        )
        .catch((error: unknown) => {
          throw storeError(error, "delete compacted records");
        });
    }
  }

  async readCatalog(source: string, stream: string, day: string): Promise<Catalog> {
    const got = await this.#getJson<Catalog>(
      catalogKey(this.prefix, source, stream, day),
      rebuildHint(source, stream),
    );
    return got?.body ?? { version: 1, source, stream, day, windows: [] };
  }

  /**
   * Writes a catalog; with `ifMatch`, only over the object of that ETag (`null`: only when there is
   * none) and returns false when another writer changed (or deleted) it meanwhile.
   */
  async writeCatalog(c: Catalog, ifMatch?: string | null): Promise<boolean> {
    this.#count("PutObject");
    try {
      const Key = catalogKey(this.prefix, c.source, c.stream, c.day);
      const Body = JSON.stringify(c);
      await this.#putJson(
        Key,
        Body,
        ifMatch === undefined ? {} : ifMatch === null ? { ifNoneMatch: "*" } : { ifMatch },
      );
      return true;
    } catch (error) {
      if (ifMatch !== undefined && lostRace(error, ifMatch !== null)) return false;
      throw storeError(error, "write catalog");
    }
  }

  /**
   * Read, change, write of one day's catalog, conditional on its ETag and done again on the current
   * catalog when another writer (a second planner: a duplicate scheduled event, `run --once` beside
   * the service) changed it meanwhile, so that no one's entries are lost. `change` gets the current
   * catalog and returns the new one, or undefined to leave it as it is. Against a store without
   * conditional writes (`--no-conditional-writes`) the write is unconditional: last writer wins.
   */
  async updateCatalog(
    source: string,
    stream: string,
    day: string,
    change: (c: Catalog) => Catalog | undefined,
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const got = await this.#getJson<Catalog>(
        catalogKey(this.prefix, source, stream, day),
        rebuildHint(source, stream),
      );
      const next = change(got?.body ?? { version: 1, source, stream, day, windows: [] });
      if (!next) return;
      if (await this.writeCatalog(next, got?.etag ?? null)) return;
      if (attempt >= CONDITIONAL_ATTEMPTS) {
        throw new StoreError(
          `S3: the catalog of stream "${stream}" on ${day} (source ${source}) kept changing while it was written (${attempt} attempts); the next run folds its records in again`,
        );
      }
      await raceBackoff(attempt);
    }
  }

  /**
   * Size and SHA-256 of a stored object, streamed (nothing held but the hash state), with the ETag
   * and VersionId of the object read; `inspect` sees every chunk (e.g. a container check).
   */
  async hashObject(
    key: string,
    onBytes?: (n: number) => void,
    inspect?: (chunk: Uint8Array) => void,
  ): Promise<{ size: number; sha256: string; metadata: Record<string, string> } & StoredObject> {
    this.#count("GetObject");
    const res = await this.s3
      .send(new GetObjectCommand({ Bucket: this.bucket, Key: key }))
      .catch((error: unknown) => {
        throw storeError(error, `read ${key}`);
      });
    const hash = createHash("sha256");
    let size = 0;
    for await (const chunk of res.Body as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      size += chunk.length;
      onBytes?.(chunk.length);
      inspect?.(chunk);
    }
    return {
      size,
      sha256: hash.digest("hex"),
      etag: res.ETag,
      versionId: res.VersionId,
      metadata: res.Metadata ?? {},
    };
  }

  /**
   * Aborts multipart uploads of `key` started more than `olderThanSeconds` ago: what a copier
   * killed mid-upload (no chance to abort) left behind. Younger ones may belong to a copy still
   * running. Best effort: an endpoint without ListMultipartUploads leaves them to the bucket's
   * lifecycle rule (abort after 1 day). Returns how many were aborted.
   */
  async abortStaleUploads(key: string, olderThanSeconds: number): Promise<number> {
    this.#count("ListMultipartUploads");
    const listed = await this.s3
      .send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: key }))
      .catch(() => undefined);
    const before = Date.now() - olderThanSeconds * 1000;
    let aborted = 0;
    for (const u of listed?.Uploads ?? []) {
      if (u.Key !== key || !u.UploadId || (u.Initiated && u.Initiated.getTime() > before)) continue;
      this.#count("AbortMultipartUpload");
      await this.s3
        .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: u.UploadId }))
        .then(() => aborted++)
        .catch(() => undefined);
    }
    return aborted;
  }

  /**
   * A bookkeeping JSON object of another kind (holds, audit records, proofs) with its ETag, or
   * undefined when there is none; one that is not JSON is a DamagedObjectError.
   */
  async readObject<T>(key: string): Promise<{ body: T; etag: string | undefined } | undefined> {
    return await this.#getJson<T>(key);
  }

  /**
   * Writes such an object: over the one of ETag `ifMatch`, or only when there is none (`null`:
   * write-once). False when another writer got there first (the object exists, or changed).
   */
  async writeObject(key: string, body: string, ifMatch: string | null): Promise<boolean> {
    this.#count("PutObject");
    try {
      await this.#putJson(key, body, ifMatch === null ? { ifNoneMatch: "*" } : { ifMatch });
      return true;
    } catch (error) {
      if (lostRace(error, ifMatch !== null)) return false;
      throw storeError(error, `write ${key}`);
    }
  }

  /** The source's pause switch, or undefined when it runs normally. */
  async readControl(source: string): Promise<SourceControl | undefined> {
    const got = await this.#getJson<SourceControl>(controlKey(this.prefix, source));
    return got?.body?.paused ? got.body : undefined;
  }

  /** Pauses a source (a control object) or resumes it (deletes the object). */
  async writeControl(source: string, control: SourceControl | undefined): Promise<void> {
    const Key = controlKey(this.prefix, source);
    if (control) {
      this.#count("PutObject");
      await this.s3
        .send(
          jsonPut({
            Bucket: this.bucket,
            Key,
            Body: JSON.stringify(control),
          }),
        )
        .catch((error: unknown) => {
          throw storeError(error, `pause source ${source}`);
        });
      return;
    }
    this.#count("DeleteObject");
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key })).catch((error: unknown) => {
      throw storeError(error, `resume source ${source}`);
    });
  }

  /**
   * A JSON object, or undefined when there is none. One that is there but not JSON is damaged: a
   * DamagedObjectError naming the key (never taken for an absent one, which would lose its entries).
   */
  async #getJson<T>(key: string, hint?: string): Promise<{ body: T; etag: string | undefined } | undefined>;
  async #getJson<T>(
    key: string,
    hint: string | undefined,
    ifNoneMatch: string | undefined,
  ): Promise<{ body: T; etag: string | undefined } | undefined | "not modified">;
  async #getJson<T>(
    key: string,
    hint?: string,
    ifNoneMatch?: string,
  ): Promise<{ body: T; etag: string | undefined } | undefined | "not modified"> {
    this.#count("GetObject");
    try {
      const res = await this.#leanOr<
        { text: string | undefined; etag: string | undefined } | undefined | "not modified"
      >(
        async (l) => {
          const got = ifNoneMatch ? await l.get(key, ifNoneMatch) : await l.get(key);
          return got === "not modified" ? got : got && { text: got.text, etag: got.etag };
        },
        async () => {
          try {
            const r = await this.s3.send(
              new GetObjectCommand({ Bucket: this.bucket, Key: key, IfNoneMatch: ifNoneMatch }),
            );
            return { text: await r.Body?.transformToString(), etag: r.ETag };
          } catch (error) {
            if (ifNoneMatch && error instanceof S3ServiceException && error.$metadata.httpStatusCode === 304)
              return "not modified";
            throw error;
          }
        },
      );
      if (res === "not modified") {
        // Counted apart: the request was made, but no body came back.
        this.requests.set("GetObject", (this.requests.get("GetObject") ?? 1) - 1);
        this.#count("GetObject 304");
        return res;
      }
      if (!res) return undefined;
      let body: T;
      try {
        body = JSON.parse(res.text ?? "null") as T;
      } catch (error) {
        throw new DamagedObjectError(key, res.etag, hint, error);
      }
      if (body === null || typeof body !== "object") throw new DamagedObjectError(key, res.etag, hint);
      return { body, etag: res.etag };
    } catch (error) {
      if (error instanceof DamagedObjectError) throw error;
      if (
        error instanceof S3ServiceException &&
        (error.name === "NoSuchKey" || error.$metadata.httpStatusCode === 404)
      ) {
        return undefined;
      }
      throw storeError(error, `read ${key}`);
    }
  }
}

/**
 * A bookkeeping object (manifest, catalog, completion record) that is there but not a JSON object:
 * damaged (a truncated upload, an operator's edit). Reported with its key, never read as absent.
 */
export class DamagedObjectError extends MalformedAnswerError {
  override readonly code: string = "FB_DAMAGED_OBJECT";
  readonly key: string;
  readonly etag: string | undefined;

  constructor(key: string, etag: string | undefined, hint: string | undefined, cause?: unknown) {
    super(`S3: ${key} is damaged (not a JSON object)${hint ? `: ${hint}` : ""}`, { cause });
    this.key = key;
    this.etag = etag;
  }
}

function rebuildHint(source: string, stream: string): string {
  return `run \`flussonic-backup rebuild --source ${source} --stream ${stream}\` to rebuild it from the stored windows`;
}

function ignoreDamaged(error: unknown): undefined {
  if (error instanceof DamagedObjectError) return undefined;
  throw error;
}

/** Conditional writes of one object tried before giving up (each after re-reading it). */
export const CONDITIONAL_ATTEMPTS = 8;

/**
 * Whether a conditional write failed because another writer got there first: 412 Precondition
 * Failed, 409 ConditionalRequestConflict (two at once), or for If-Match a 404 (deleted meanwhile).
 */
function lostRace(error: unknown, ifMatch: boolean): boolean {
  if (!(error instanceof S3ServiceException)) return false;
  const status = error.$metadata.httpStatusCode ?? 0;
  return status === 412 || status === 409 || (ifMatch && status === 404);
}

/** A short random wait before writing again after a lost race, so two writers do not collide again. */
export function raceBackoff(attempt: number): Promise<void> {
  const ms = Math.min(1000, 25 * 2 ** attempt) * (0.5 + Math.random());
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A failure of S3 (not of the source): retryable, but no sign that the media server is overloaded,
 * so it never backs the source off (source-pressure.ts).
 */
export class StoreError extends RetryableError {
  override readonly code: string = "FB_STORE";
}

/** S3 failures are retryable from the backup's point of view (the next delivery or run tries again). */
export function storeError(error: unknown, what: string): StoreError {
  const status = error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
  const name = error instanceof Error ? error.name : "error";
  return new StoreError(`S3: cannot ${what}: ${name}${status ? ` (HTTP ${status})` : ""}`, {
    cause: error,
    status,
  });
}
