/**
 * Copies one archive window from Flussonic into S3: the body streams through the throttle, a
 * SHA-256 hasher and a container check into the spool on local disk (one PutObject carrying the
 * window's SHA-256 when it fits the threshold, else large parts read from the spool: see
 * store/spool-upload.ts), or, without a spool, into a multipart upload from a few memory buffers;
 * never buffered whole in memory. A failed copy aborts its upload and removes its spool, so no
 * partial object is ever visible. Idempotent: a window already stored is recorded and acknowledged
 * without downloading it again.
 */
import { createHash } from "node:crypto";
import type { CopyMessage } from "../domain/archive.ts";
import { ContainerError } from "../domain/container-check.ts";
import { BackupError, RetryableError } from "../domain/errors.ts";
import { encodeWindowIndex } from "../domain/fragment-index.ts";
import { indexingCheck } from "../domain/fragment-indexer.ts";
import type { CopyRecord } from "../domain/manifest.ts";
import type { ArchiveSource } from "../source/flussonic.ts";
import { streamChunks } from "../source/stream-chunks.ts";
import type { Throttle } from "../source/throttle.ts";
import type { BackupStore, StoredObject } from "../store/backup-store.ts";
import { storeError } from "../store/backup-store.ts";
import { holdArrivals } from "../store/holds.ts";
import { fitsBudget, PartUpload, type PartUploadOptions, partsFor } from "../store/part-upload.ts";
import { SpoolUpload } from "../store/spool-upload.ts";

export type { CopyMessage };

export type CopyOutcome =
  | { status: "copied"; record: CopyRecord }
  | { status: "already-stored"; record: CopyRecord }
  | { status: "stale" };

export interface CopyWindowDeps {
  store: BackupStore;
  flussonic: ArchiveSource;
  throttle: Throttle;
  /** Unix seconds. */
  now: () => number;
  /** Milliseconds the source took to answer (headers), for the back-off gate. */
  onResponse?: (ms: number) => void;
  /**
   * Multipart part size in bytes for a window of unknown size. The part buffers' memory,
   * partSize x (uploadQueueSize + 1), is the budget that parts are sized in from the window's expected
   * size (part-upload.ts partsFor): fewer, larger parts, one PutObject for a window that fits.
   */
  partSize: number;
  /** Parts uploading at once while the next fills (default UPLOAD_QUEUE_SIZE). */
  uploadQueueSize?: number;
  /** Always `partSize` parts, whatever the window's size (the bench's "before"). */
  fixedParts?: boolean;
  /**
   * Spool windows to local disk instead of memory (store/spool-upload.ts): a window expected up to
   * `singleMaxBytes` is stored with one PutObject, a larger one in parts of `partBytes` (default
   * 64 MiB) read from the spool. Undefined: windows stream through memory buffers (`partSize`).
   */
  spool?: { dir: string; singleMaxBytes: number; partBytes?: number } | undefined;
  /** Longest a copy may take (seconds); a window whose lease ends sooner is left to a re-plan. */
  copyTimeoutSeconds: number;
  /** Bytes a download delivers before the first read (default: flussonic.ts RECEIVE_WINDOW_BYTES). */
  receiveWindowBytes?: number;
  /** Uploads of a window older than this are orphans to abort (default: copy timeout + 60 s). */
  staleUploadSeconds?: number;
  /**
   * This delivery's receive count, when only redeliveries look for orphaned uploads (a LIST request,
   * billed as a PUT, per window): an upload left by a killed attempt of the same message is found by
   * its redelivery; one left by an earlier message of the window (re-planned after its lease ended)
   * is then left to the bucket's lifecycle rule (AbortIncompleteMultipartUpload after a day in AWS:
   * infra/backup-bucket.ts). Undefined: every copy looks (stores without that rule, the local runtime).
   */
  redeliveryOnlyAttempt?: number;
  /** The Lambda function's memory (MB), to record the copy's GB-seconds; absent outside Lambda. */
  lambdaMemoryMb?: number;
  /** Called with bytes as they are read from the source (progress). */
  onBytes?: (bytes: number) => void;
  /** SQS requests to count into this copy's record (asked once, as the record is written). */
  sqsRequests?: (() => number | undefined) | undefined;
}

/** Object metadata values must be ASCII: non-ASCII and '%' are percent-encoded. */
function metadataValue(s: string): string {
  return s.replace(/[^\x20-\x24\x26-\x7e]/gu, (c) => encodeURIComponent(c));
}

/** Parts of one window uploading at once while the next fills. */
export const UPLOAD_QUEUE_SIZE = 2;

export async function copyWindow(
  deps: CopyWindowDeps,
  m: CopyMessage,
  signal?: AbortSignal,
): Promise<CopyOutcome> {
  const { store } = deps;
  // A message whose lease ends before this copy could finish may already be re-planned: leave it,
  // so that two plans of the same seconds never run at once.
  if (deps.now() + deps.copyTimeoutSeconds > m.leaseUntil) return { status: "stale" };

  const started = performance.now();
  const key = store.windowKey(m, m.format);
  const what = `source ${m.source}: stream "${m.stream}" window ${m.from}-${m.duration}`;
  const current = await store.headWindow(key);
  if (current) {
    const record = await alreadyStored(deps, m, key, current, what);
    if (record) {
      await holdArrivals(store, m.source, [record]);
      return { status: "already-stored", record };
    }
    // The stored object is incomplete (short media or cut framing): copy the window again, the
    // new upload replaces it.
  }

  // Uploads of this window left by a copier killed mid-copy: abort them before starting anew.
  const listsOrphans = deps.redeliveryOnlyAttempt === undefined || deps.redeliveryOnlyAttempt > 1;
  if (listsOrphans) {
    await store.abortStaleUploads(key, deps.staleUploadSeconds ?? deps.copyTimeoutSeconds + 60);
  }
  const asked = performance.now();
  // The body comes paced by the source's throttle, every byte paid for once and before the source
  // is asked for it (Range slices where the source offers them, else the kernels' receive window
  // up front): see FlussonicClient.openWindow.
  const { body, contentLength, headersMs, mode, expectedBytes } = await deps.flussonic.openWindow(
    m.stream,
    m.from,
    m.duration,
    m.format,
    signal,
    deps.receiveWindowBytes === undefined
      ? { throttle: deps.throttle }
      : { throttle: deps.throttle, receiveWindowBytes: deps.receiveWindowBytes },
  );
  deps.onResponse?.(headersMs ?? performance.now() - asked);
  const hash = createHash("sha256");
  let digest: Buffer | undefined;
  const wholeSha256 = () => {
    digest ??= hash.digest();
    return digest;
  };
  // Framing and media time: a body that stops cleanly at a fragment boundary before the window's
  // end is refused (retryable), see container-check.ts for the tolerance. The same pass records
  // the fragment index (fragment-indexer.ts) for playback.
  const { check, indexer } = indexingCheck(m.format, m);
  let size = 0;
  let streamed = false;

  async function* verified(): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of streamChunks(body)) {
        hash.update(chunk);
        check.feed(chunk);
        size += chunk.length;
        deps.onBytes?.(chunk.length);
        yield chunk;
      }
    } catch (error) {
      if (error instanceof BackupError) throw error;
      throw new RetryableError(`${what}: download failed: ${(error as Error).message}`, { cause: error });
    } finally {
      body.destroy();
    }
    try {
      check.finish();
    } catch (error) {
      throw new RetryableError(`${what}: incomplete body: ${(error as Error).message}`, { cause: error });
    }
    if (contentLength !== undefined && size !== contentLength) {
      throw new RetryableError(`${what}: body has ${size} bytes, the server promised ${contentLength}`);
    }
    streamed = true;
  }

  const params = {
    Bucket: store.bucket,
    Key: key,
    ContentType: m.format === "mp4" ? "video/mp4" : "video/mp2t",
    Metadata: {
      source: metadataValue(m.source),
      stream: metadataValue(m.stream),
      from: String(m.from),
      duration: String(m.duration),
      format: m.format,
    },
  };
  // Spooled to disk: one PutObject carrying the window's SHA-256 when it fits, else large parts read
  // from the spool. In memory: each part is hashed once (SHA-256: its S3 checksum and its
  // signature's payload hash), in a few reused buffers: see part-upload.ts. A window expected to fit
  // those buffers is one PutObject from memory either way: it is not spooled (no file to write, read
  // and remove per window: small windows keep their rate).
  const budget = deps.partSize * ((deps.uploadQueueSize ?? UPLOAD_QUEUE_SIZE) + 1);
  const fitsMemory =
    !deps.fixedParts && fitsBudget(contentLength ?? expectedBytes, contentLength !== undefined, budget);
  const upload =
    deps.spool && !fitsMemory
      ? new SpoolUpload(store.s3, params, {
          dir: deps.spool.dir,
          singleMaxBytes: deps.spool.singleMaxBytes,
          ...(deps.spool.partBytes ? { partSize: deps.spool.partBytes } : {}),
          expectedBytes: contentLength ?? expectedBytes,
          exact: contentLength !== undefined,
          wholeSha256,
        })
      : new PartUpload(
          store.s3,
          params,
          uploadParts(deps, contentLength ?? expectedBytes, contentLength !== undefined),
        );
  // An abort (timeout, service stop) ends the download: the upload then fails on its body and
  // aborts the multipart upload before it rejects. Once the whole body is streamed, though, only S3
  // is left to answer (the last parts, CompleteMultipartUpload), and the SDK would wait for ever for
  // an answer S3 never sends: then the S3 requests are aborted, and what S3 did is looked at below.
  const abortUpload = () => {
    if (streamed) upload.abort();
  };
  signal?.addEventListener("abort", abortUpload, { once: true });
  let uploaded: { ETag?: string | undefined; VersionId?: string | undefined };
  try {
    uploaded = await upload.upload(verified());
  } catch (error) {
    if (error instanceof BackupError) throw error;
    const cause = (error as { cause?: unknown }).cause;
    if (cause instanceof BackupError) throw cause;
    // S3 may have completed the upload and lost its answer: the SDK's retry of
    // CompleteMultipartUpload then hears NoSuchUpload (404). The object there with this copy's size
    // and ETag is this copy: record it with the hash taken while streaming, no need to read it back.
    const etag = streamed ? await upload.expectedEtag() : undefined;
    const landed = etag ? await landedUpload(store, key, size, etag) : undefined;
    if (!landed) throw storeError(error, `upload ${key}`);
    uploaded = landed;
  } finally {
    signal?.removeEventListener("abort", abortUpload);
    // The spool goes on every path (a killed process's is swept by the next one).
    if (upload instanceof SpoolUpload) await upload.dispose();
    else upload.release();
  }

  const sqs = deps.sqsRequests?.();
  const record: CopyRecord = {
    source: m.source,
    stream: m.stream,
    from: m.from,
    duration: m.duration,
    format: m.format,
    key,
    size,
    sha256: wholeSha256().toString("hex"),
    copiedAt: deps.now(),
    ...(uploaded.ETag ? { etag: uploaded.ETag } : {}),
    ...(uploaded.VersionId ? { versionId: uploaded.VersionId } : {}),
    index: encodeWindowIndex(indexer.result(key, size, uploaded.ETag)),
    ...(mode ? { reads: mode } : {}),
    // Counted into the record it is written with (no request of its own): the HEAD before, the
    // listing of orphans, the upload, this record; and, as they follow when no other copy races,
    // the HEAD that settles it and the read of the holds.
    requests: {
      put: (listsOrphans ? 1 : 0) + upload.requests + 1,
      get: 1 + 1 + 1,
      ...(sqs !== undefined ? { sqs } : {}),
    },
    ...(deps.lambdaMemoryMb
      ? {
          gbSeconds:
            Math.round(((performance.now() - started) / 1000) * (deps.lambdaMemoryMb / 1024) * 1000) / 1000,
        }
      : {}),
  };
  await store.putRecord(record);
  const settled = await settleRecord(deps, m, key, record, what);
  // A window stored inside a hold (`hold` over a range still being recorded) is held at once; a
  // failure fails the copy, whose redelivery finds the window stored and holds it then.
  await holdArrivals(store, m.source, [settled]);
  return { status: "copied", record: settled };
}

/** Part size and queue of a window's upload: see CopyWindowDeps.partSize. */
function uploadParts(
  deps: CopyWindowDeps,
  expectedBytes: number | undefined,
  exact: boolean,
): PartUploadOptions {
  const fixed = { partSize: deps.partSize, queueSize: deps.uploadQueueSize ?? UPLOAD_QUEUE_SIZE };
  if (deps.fixedParts) return fixed;
  return partsFor(expectedBytes, exact, fixed.partSize * (fixed.queueSize + 1), fixed);
}

/** The object at `key` when it is the upload of these bytes (size and ETag), else undefined. */
async function landedUpload(
  store: BackupStore,
  key: string,
  size: number,
  etag: string,
): Promise<{ ETag?: string | undefined; VersionId?: string | undefined } | undefined> {
  const current = await store.headWindow(key).catch(() => undefined);
  if (!current || current.size !== size || current.etag !== etag) return undefined;
  return { ETag: current.etag, VersionId: current.versionId };
}

/** Whether a record describes the object S3 holds (records without an ETag, from before, are trusted). */
function describes(record: CopyRecord, object: StoredObject): boolean {
  return record.etag === undefined || object.etag === undefined || record.etag === object.etag;
}

/**
 * The record of a window whose object is already stored: its pending record when that describes the
 * current object; otherwise (an attempt that died before recording it, a record compacted already,
 * or a record of another copy of the window whose bytes differ) the object is read back, hashed and
 * its media time checked, and recorded. Undefined when the stored object is incomplete: the caller
 * copies the window again.
 */
async function alreadyStored(
  deps: CopyWindowDeps,
  m: CopyMessage,
  key: string,
  current: StoredObject,
  what: string,
): Promise<CopyRecord | undefined> {
  const recorded = await deps.store.getRecord(m);
  if (recorded && describes(recorded, current)) return recorded;
  const record = await recordFromStoredObject(deps, m, key);
  if (!record) return undefined;
  await deps.store.putRecord(record);
  return settleRecord(deps, m, key, record, what);
}

/**
 * Makes sure the record just written describes the object S3 holds now. Two copies of one window
 * (a duplicate delivery) both upload and both record; when the source's exports are not
 * byte-identical between requests (a re-mux), the later upload may land after the other copy's
 * record was written, or the records may land in the other order. So after writing its record, a
 * copier compares its upload's ETag with the current object's (HEAD) and, when they differ, reads
 * the current object back and records that instead: whichever record is written last then
 * describes the last upload. (Conditional writes alone would not do: the embedded emulator ignores
 * If-None-Match.)
 */
async function settleRecord(
  deps: CopyWindowDeps,
  m: CopyMessage,
  key: string,
  record: CopyRecord,
  what: string,
): Promise<CopyRecord> {
  let recorded = record;
  for (let attempt = 0; attempt < 3; attempt++) {
    const current = await deps.store.headWindow(key);
    if (!current) {
      throw new RetryableError(
        `${what}: the stored object ${key} disappeared while it was recorded; copying again`,
      );
    }
    if (describes(recorded, current)) return recorded;
    const again = await recordFromStoredObject(deps, m, key);
    if (!again) {
      throw new RetryableError(
        `${what}: another copy of the window replaced ${key} with an incomplete object; copying again`,
      );
    }
    await deps.store.putRecord(again);
    recorded = again;
  }
  throw new RetryableError(
    `${what}: ${key} kept changing while it was recorded (concurrent copies); retrying`,
  );
}

/**
 * A stored object read back from S3 (an attempt that died before recording it, or another copy of
 * the window): its size, SHA-256, ETag and, as for a download, its framing and media time. Undefined
 * when it is incomplete, so that it is copied again rather than recorded as the full window.
 */
export async function recordFromStoredObject(
  deps: Pick<CopyWindowDeps, "store" | "now">,
  m: CopyMessage,
  key: string,
): Promise<CopyRecord | undefined> {
  const { check, indexer } = indexingCheck(m.format, m);
  let incomplete: ContainerError | undefined;
  const inspect = (chunk: Uint8Array) => {
    if (incomplete) return;
    try {
      check.feed(chunk);
    } catch (error) {
      if (!(error instanceof ContainerError)) throw error;
      incomplete = error;
    }
  };
  const { size, sha256, etag, versionId } = await deps.store.hashObject(key, undefined, inspect);
  try {
    if (!incomplete) check.finish();
  } catch (error) {
    if (!(error instanceof ContainerError)) throw error;
    incomplete = error;
  }
  if (incomplete) return undefined;
  return {
    source: m.source,
    stream: m.stream,
    from: m.from,
    duration: m.duration,
    format: m.format,
    key,
    size,
    sha256,
    copiedAt: deps.now(),
    ...(etag ? { etag } : {}),
    ...(versionId ? { versionId } : {}),
    index: encodeWindowIndex(indexer.result(key, size, etag)),
  };
}
