/**
 * One object streamed into S3 in parts, each part hashed once: its SHA-256 is both the part's S3
 * checksum (`x-amz-checksum-sha256`, which S3 verifies) and the SigV4 payload hash
 * (`x-amz-content-sha256`), which the SDK would otherwise compute again over the same bytes. Parts
 * are copied into a few reused buffers (parts in flight + the one filling), so memory stays at
 * `partSize x (queueSize + 1)` whatever the object's size and no part is allocated twice.
 *
 * A body that fits in one part is one PutObject; anything larger a multipart upload, aborted on
 * any failure (no part left behind, no partial object visible).
 */
import { createHash, type Hash } from "node:crypto";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";

export interface PartUploadParams {
  Bucket: string;
  Key: string;
  ContentType?: string;
  Metadata?: Record<string, string>;
}

export interface PartUploadOptions {
  /** Bytes per part (at least 5 MiB for S3, except the last part). */
  partSize: number;
  /**
   * Parts uploading at once while the next one fills. 0: the one buffer waits for its part's upload
   * before it fills again (memory of one part, for parts as large as the whole budget).
   */
  queueSize: number;
  /**
   * Bytes of the first buffer, when the object is expected to be smaller than a part: it grows to
   * `partSize` (its bytes copied once) only should the body turn out larger. A small window then
   * holds about its own size, not a whole part.
   */
  firstBufferBytes?: number;
}

/** S3's smallest part but the last. */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
const MiB = 1024 * 1024;
/** Room left over an estimated size (bitrate x duration) so that a body a little larger stays in its parts. */
const ESTIMATE_MARGIN = 1.1;

/**
 * Part size and queue for an object of about `expectedBytes`, within `budgetBytes` of part buffers
 * (partSize x (queueSize + 1) <= budget, whatever the object turns out to be). Every part is a PUT-class
 * request, so parts are as large as the budget allows: two buffers (one uploading while the other
 * fills) of half the budget each, evened out over the object so that the last part is not a sliver;
 * an object that fits the budget is one buffer and one PutObject. `exact`: the size is the server's
 * Content-Length, no margin needed. Unknown size: `fallback` (the fixed part size and queue).
 */
export function partsFor(
  expectedBytes: number | undefined,
  exact: boolean,
  budgetBytes: number,
  fallback: PartUploadOptions,
): PartUploadOptions {
  if (expectedBytes === undefined || !Number.isFinite(expectedBytes) || expectedBytes <= 0) return fallback;
  const budget = Math.max(budgetBytes, MIN_PART_BYTES);
  const want = Math.ceil(expectedBytes * (exact ? 1 : ESTIMATE_MARGIN));
  // An object that fits the budget: one buffer, one PutObject. Should it be larger after all, its
  // parts go up one at a time (queue 0), so the memory stays that one buffer.
  if (want <= budget) {
    const first = roundUp(want, 64 * 1024);
    const partSize = Math.min(budget, Math.max(MIN_PART_BYTES, first));
    return {
      partSize,
      queueSize: partSize * 2 <= budget ? 1 : 0,
      ...(first < partSize ? { firstBufferBytes: first } : {}),
    };
  }
  const half = Math.max(MIN_PART_BYTES, Math.floor(budget / 2 / MiB) * MiB);
  const parts = Math.min(MAX_PARTS, Math.ceil(want / half));
  const partSize = Math.max(MIN_PART_BYTES, roundUp(Math.ceil(want / parts), MiB));
  return { partSize, queueSize: partSize * 2 <= budget ? 1 : 0 };
}

/**
 * Whether an object of about `expectedBytes` (`exact`: the server's Content-Length) fits one buffer
 * of `budgetBytes`, so that `partsFor` makes it one PutObject from memory.
 */
export function fitsBudget(expectedBytes: number | undefined, exact: boolean, budgetBytes: number): boolean {
  if (expectedBytes === undefined || !Number.isFinite(expectedBytes) || expectedBytes <= 0) return false;
  return Math.ceil(expectedBytes * (exact ? 1 : ESTIMATE_MARGIN)) <= Math.max(budgetBytes, MIN_PART_BYTES);
}

function roundUp(n: number, step: number): number {
  return Math.ceil(n / step) * step;
}

export interface UploadedObject {
  ETag?: string | undefined;
  VersionId?: string | undefined;
}

/** Longest the AbortMultipartUpload of a failed upload is waited for (the lifecycle rule cleans up after). */
const ABORT_MS = 30_000;

/** Starts a multipart upload with SHA-256 part checksums; its UploadId. */
export async function createMultipart(
  s3: S3Client,
  params: PartUploadParams,
  signal: AbortSignal,
): Promise<string> {
  const created = await s3.send(
    new CreateMultipartUploadCommand({ ...params, ChecksumAlgorithm: "SHA256" }),
    {
      abortSignal: signal,
    },
  );
  if (!created.UploadId) throw new Error("S3 answered CreateMultipartUpload without an UploadId");
  return created.UploadId;
}

/** Completes a multipart upload with its parts, put in order here. */
export async function completeMultipart(
  s3: S3Client,
  params: PartUploadParams,
  uploadId: string | undefined,
  parts: CompletedPart[],
  signal: AbortSignal,
): Promise<UploadedObject> {
  parts.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
  const done = await s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: params.Bucket,
      Key: params.Key,
      UploadId: uploadId,
      MultipartUpload: { Parts: parts },
    }),
    { abortSignal: signal },
  );
  return { ETag: done.ETag, VersionId: done.VersionId };
}

/** Aborts a failed multipart upload, if one was started; bounded, and its failure ignored. */
export async function abortMultipart(
  s3: S3Client,
  params: PartUploadParams,
  uploadId: string | undefined,
): Promise<void> {
  if (uploadId === undefined) return;
  await s3
    .send(
      new AbortMultipartUploadCommand({ Bucket: params.Bucket, Key: params.Key, UploadId: uploadId }),
      // Bounded: an S3 that answers nothing must not hold the copy for the socket timeout.
      { abortSignal: AbortSignal.timeout(ABORT_MS) },
    )
    .catch(() => undefined);
}

/** S3 refuses multipart uploads of more parts. */
const MAX_PARTS = 10_000;

/**
 * A young-generation collection (a scavenge, about a millisecond), or nothing where unavailable.
 * Every socket read of a download is a new 64 KiB buffer that dies young, but its JS object is tiny,
 * so the young generation takes long to fill and the buffers' memory is reclaimed only by the full
 * collections V8 starts each time tens of MB of external memory piled up. One scavenge per part
 * frees the part's reads at once: measured on a 512 MiB window, peak RSS 201 -> 163 MiB and the
 * copier's CPU 3.1 -> 2.2 s (fewer full collections). `gc` is exposed to a separate context only.
 */
export const collectYoungGarbage: () => void = (() => {
  const gc = exposedGc();
  return gc ? () => gc({ type: "minor" }) : () => undefined;
})();

/**
 * A full collection (mark-compact, tens of milliseconds), or nothing where unavailable. A buffer
 * still in use at two scavenges (a read waiting for its socket write) is moved to the old
 * generation, where only a full collection frees it: see spool-upload.ts FULL_COLLECT_EVERY_BYTES.
 */
export const collectAllGarbage: () => void = (() => {
  const gc = exposedGc();
  return gc ? () => gc({ type: "major" }) : () => undefined;
})();

function exposedGc(): ((o: { type: "minor" | "major" }) => void) | undefined {
  try {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as unknown;
    setFlagsFromString("--no-expose-gc");
    if (typeof gc === "function") return gc as (o: { type: "minor" | "major" }) => void;
  } catch {
    // not V8's gc: leave collections to V8
  }
  return undefined;
}

/** A part's checksum value: SHA-256, base64 (the header S3 verifies) and hex (the payload hash). */
function digests(hash: Hash): { base64: string; hex: string } {
  const d = hash.digest();
  return { base64: d.toString("base64"), hex: d.toString("hex") };
}

/**
 * Sets SigV4's payload hash to the SHA-256 already computed for the body's checksum, so that the
 * signer does not hash (or, for a spooled file, read) the body again (it takes the header when present).
 */
export function withPayloadHash<T extends { middlewareStack: { add: (...args: never[]) => unknown } }>(
  command: T,
  hex: string,
): T {
  type Build = (args: { request: { headers?: Record<string, string> } }) => Promise<unknown>;
  (command.middlewareStack.add as (mw: (next: Build) => Build, o: object) => void)(
    (next) => (args) => {
      if (args.request.headers) args.request.headers["x-amz-content-sha256"] = hex;
      return next(args);
    },
    { step: "build", priority: "low", name: "flussonicBackupPayloadHash" },
  );
  return command;
}

/**
 * First buffers of small objects (below a part: a small window's whole body) kept for the next
 * upload, at most POOL_BYTES of them: a fleet of small windows reuses one buffer per copy running
 * instead of allocating a new one per window, which the C allocator keeps after V8 frees it.
 */
const pool: Buffer[] = [];
const POOL_BYTES = 16 * MiB;

/** A pooled buffer of at least `bytes` and at most `most`, else a new one of `bytes`. */
function pooledBuffer(bytes: number, most: number): Buffer {
  const i = pool.findIndex((b) => b.length >= bytes && b.length <= most);
  return i >= 0 ? pool.splice(i, 1)[0]! : Buffer.allocUnsafeSlow(bytes);
}

function poolBuffer(buffer: Buffer): void {
  const held = pool.reduce((n, b) => n + b.length, 0);
  if (held + buffer.length <= POOL_BYTES) pool.push(buffer);
}

export class PartUpload {
  readonly #s3: S3Client;
  readonly #params: PartUploadParams;
  readonly #partSize: number;
  readonly #queueSize: number;
  readonly #firstBufferBytes: number;
  /** Aborts the S3 requests under way (`abort()`). */
  readonly #abort = new AbortController();
  readonly #free: Buffer[] = [];
  readonly #parts: CompletedPart[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  #uploadId: string | undefined;
  /** The one part's bytes when the object went up as a single PutObject (for `expectedEtag`). */
  #single: Buffer | undefined;
  /** The small object's first buffer, from the pool and back to it at `release`. */
  #pooled: Buffer | undefined;
  #failure: unknown;
  /** Requests sent to S3 (all PUT-class: CreateMultipartUpload, UploadPart, Complete, PutObject). */
  #requests = 0;

  constructor(s3: S3Client, params: PartUploadParams, o: PartUploadOptions) {
    this.#s3 = s3;
    this.#params = params;
    this.#partSize = o.partSize;
    this.#queueSize = Math.max(0, o.queueSize);
    this.#firstBufferBytes = Math.min(o.partSize, Math.max(1, o.firstBufferBytes ?? o.partSize));
  }

  /**
   * Streams `body` into the object. Rejects with the body's error (as thrown) or S3's; the multipart
   * upload is aborted before it rejects.
   */
  async upload(body: AsyncIterable<Uint8Array>): Promise<UploadedObject> {
    if (this.#firstBufferBytes < this.#partSize) {
      this.#pooled = pooledBuffer(this.#firstBufferBytes, this.#partSize - 1);
    }
    let buffer = this.#pooled ?? this.#buffer();
    let fill = 0;
    let hash = createHash("sha256");
    try {
      for await (const chunk of body) {
        let at = 0;
        while (at < chunk.length) {
          if (fill === buffer.length && fill < this.#partSize) {
            // Larger than expected: the first buffer grows to a whole part, its bytes copied once.
            const grown = Buffer.allocUnsafeSlow(this.#partSize);
            buffer.copy(grown, 0, 0, fill);
            buffer = grown;
            this.#pooled = undefined;
          }
          if (fill === this.#partSize) {
            // A full part and more to come: it goes up as a part of a multipart upload.
            await this.#send(buffer, fill, hash);
            buffer = await this.#nextBuffer();
            fill = 0;
            hash = createHash("sha256");
          }
          const n = Math.min(chunk.length - at, buffer.length - fill);
          const piece = chunk.subarray(at, at + n);
          buffer.set(piece, fill);
          hash.update(piece);
          fill += n;
          at += n;
        }
      }
      if (this.#uploadId === undefined && this.#parts.length === 0 && this.#inFlight.size === 0) {
        return await this.#putSingle(buffer, fill, hash);
      }
      if (fill > 0) await this.#send(buffer, fill, hash);
      await this.#settle();
      this.#requests++;
      return await completeMultipart(this.#s3, this.#params, this.#uploadId, this.#parts, this.#abort.signal);
    } catch (error) {
      await Promise.allSettled(this.#inFlight);
      await this.#abortMultipart();
      throw this.#failure ?? error;
    }
  }

  /**
   * Gives a small object's buffer back for the next upload: call once the upload and any use of
   * `expectedEtag` are over (its bytes are then overwritten).
   */
  release(): void {
    if (this.#pooled === undefined || this.#inFlight.size > 0) return;
    if (this.#single?.buffer === this.#pooled.buffer) this.#single = undefined;
    poolBuffer(this.#pooled);
    this.#pooled = undefined;
  }

  /** PUT-class requests this upload sent (aborts are free and not counted). */
  get requests(): number {
    return this.#requests;
  }

  /** Stops the S3 requests under way: `upload()` then aborts the multipart upload and rejects. */
  abort(): void {
    this.#abort.abort();
  }

  /**
   * The ETag S3 gives the object these parts make once completed: the MD5 of the one part for a
   * single PutObject, else the MD5 of the parts' ETags (the MD5s S3 answered for each part) and
   * "-N". Undefined while a part's ETag is missing.
   */
  expectedEtag(): string | undefined {
    if (this.#single) return `"${createHash("md5").update(this.#single).digest("hex")}"`;
    if (this.#parts.length === 0 || this.#parts.some((p) => !/^"?[0-9a-f]{32}"?$/i.test(p.ETag ?? ""))) {
      return undefined;
    }
    const md5s = this.#parts.map((p) => Buffer.from(p.ETag!.replaceAll('"', ""), "hex"));
    return `"${createHash("md5").update(Buffer.concat(md5s)).digest("hex")}-${this.#parts.length}"`;
  }

  async #putSingle(buffer: Buffer, fill: number, hash: Hash): Promise<UploadedObject> {
    const part = buffer.subarray(0, fill);
    const sum = digests(hash);
    const put = withPayloadHash(
      new PutObjectCommand({
        ...this.#params,
        Body: part,
        ContentLength: fill,
        ChecksumAlgorithm: "SHA256",
        ChecksumSHA256: sum.base64,
      }),
      sum.hex,
    );
    this.#single = part;
    this.#requests++;
    const res = await this.#s3.send(put, { abortSignal: this.#abort.signal });
    return { ETag: res.ETag, VersionId: res.VersionId };
  }

  /** Starts uploading a part (creating the multipart upload first); waits while the queue is full. */
  async #send(buffer: Buffer, fill: number, hash: Hash): Promise<void> {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#uploadId === undefined) {
      this.#requests++;
      this.#uploadId = await createMultipart(this.#s3, this.#params, this.#abort.signal);
    }
    const partNumber = this.#parts.length + this.#inFlight.size + 1;
    if (partNumber > MAX_PARTS) {
      throw new Error(`more than ${MAX_PARTS} parts of ${this.#partSize} bytes: raise the part size`);
    }
    // The reads that filled this part are garbage now: see collectYoungGarbage.
    collectYoungGarbage();
    const sum = digests(hash);
    const command = withPayloadHash(
      new UploadPartCommand({
        Bucket: this.#params.Bucket,
        Key: this.#params.Key,
        UploadId: this.#uploadId,
        PartNumber: partNumber,
        Body: buffer.subarray(0, fill),
        ContentLength: fill,
        ChecksumAlgorithm: "SHA256",
        ChecksumSHA256: sum.base64,
      }),
      sum.hex,
    );
    this.#requests++;
    const task: Promise<void> = this.#s3
      .send(command, { abortSignal: this.#abort.signal })
      .then((res) => {
        if (!res.ETag) throw new Error(`S3 answered part ${partNumber} without an ETag`);
        this.#parts.push({
          PartNumber: partNumber,
          ETag: res.ETag,
          ChecksumSHA256: res.ChecksumSHA256 ?? sum.base64,
        });
        this.#free.push(buffer);
      })
      .catch((error: unknown) => {
        this.#failure ??= error;
        // The other parts need not go on: stop them, the upload is aborted.
        this.#abort.abort();
      })
      .finally(() => this.#inFlight.delete(task));
    this.#inFlight.add(task);
  }

  /** A buffer to fill next: a free one, else a new one while fewer than queueSize + 1 exist. */
  async #nextBuffer(): Promise<Buffer> {
    while (this.#free.length === 0 && this.#inFlight.size > 0 && this.#inFlight.size >= this.#queueSize) {
      await Promise.race(this.#inFlight);
      if (this.#failure !== undefined) throw this.#failure;
    }
    return this.#buffer();
  }

  #buffer(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.#partSize);
  }

  async #settle(): Promise<void> {
    await Promise.all(this.#inFlight);
    if (this.#failure !== undefined) throw this.#failure;
  }

  async #abortMultipart(): Promise<void> {
    await abortMultipart(this.#s3, this.#params, this.#uploadId);
  }
}
