/**
 * One object spooled to local disk on its way into S3, so that memory stays flat whatever its size
 * and the number of PUT-class requests is the fewest S3 allows:
 *
 * - an object expected to fit `singleMaxBytes` is written to one spool file while it downloads and
 *   then stored with ONE PutObject carrying the SHA-256 of the whole object (which the caller
 *   computes anyway for its record): S3 verifies it, and the same value is the SigV4 payload hash,
 *   so the bytes are hashed once. A reference window (150 MB) is one request instead of about 14
 *   (CreateMultipartUpload, a dozen parts, Complete);
 * - a larger one goes up as a multipart upload of large parts (`partSize`, 64 MiB by default), each
 *   part its own spool file, hashed as it is written, uploaded from disk while the download goes on
 *   and removed once S3 has it: the disk holds at most `queueSize + 1` parts;
 * - an object that turns out larger than expected keeps its first spool file as part 1 (hashed by
 *   reading it back, the one extra pass of that rare case) and continues in parts.
 *
 * A part read from disk is a stream, which the SDK does not retry (it cannot rewind it): each
 * request is tried again here with a fresh read of its file, with the SDK's standard back-off
 * (lean-s3.ts sendWithRetries). A full disk is a RetryableError saying so (the copy is retried, and
 * the spool is removed first). Spool files are removed on every path (`dispose`), and files left by
 * a process that died (a copier killed mid-copy) are removed by the next process before its first
 * spool (`sweepStaleSpool`).
 */
import { createHash, type Hash, randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { type FileHandle, mkdir, open, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline, type Readable, Transform } from "node:stream";
import { type CompletedPart, PutObjectCommand, type S3Client, UploadPartCommand } from "@aws-sdk/client-s3";
import { RetryableError } from "../domain/errors.ts";
import { resolve, sendWithRetries } from "./lean-s3.ts";
import {
  abortMultipart,
  collectAllGarbage,
  collectYoungGarbage,
  completeMultipart,
  createMultipart,
  MIN_PART_BYTES,
  type PartUploadParams,
  type UploadedObject,
  withPayloadHash,
} from "./part-upload.ts";

const MiB = 1024 * 1024;
/** Part size of a spooled multipart upload (parts cost disk, not memory: large parts, few requests). */
export const SPOOL_PART_BYTES = 64 * MiB;
/** Parts of a spooled multipart upload going up at once while the next one is written. */
export const SPOOL_QUEUE_SIZE = 2;
/** S3's largest PutObject (and part). */
const MAX_PUT_BYTES = 5 * 1024 * MiB;
/** S3 refuses multipart uploads of more parts. */
const MAX_PARTS = 10_000;
/** Room left over an estimated size (bitrate x duration) so that a body a little larger stays one PUT. */
const ESTIMATE_MARGIN = 1.1;
const SPOOL_SUFFIX = ".spool";
/**
 * Bytes spooled (or read back) between young-generation collections: each socket read of the
 * download and each read of the spool is a new buffer that dies young, freed late without them
 * (see part-upload.ts collectYoungGarbage). Every 8 MiB left up to 3 x 8 MiB of dead buffers (the
 * download and two parts going up) in malloc's heap: `run --once` on a 1 GiB window peaked 7-21 MiB
 * higher than every 2 MiB, and used about twice the CPU (9-11 s against 4.3-4.9 s, load 6-12).
 */
const COLLECT_EVERY_BYTES = 2 * MiB;
/**
 * Bytes spooled and read back (all uploads of the process together) between full collections,
 * which take the place of a young one then. Some buffers outlive two scavenges (a read waiting for
 * its socket write, a chunk for its disk write) and are moved to the old generation, which V8
 * collects late: `run --once` on a 1 GiB window held up to 18 MiB of such buffers in its first
 * seconds. Measured there (two runs each, load 11-12): peak RSS 121-123 MiB against 137-139 MiB,
 * CPU user +0.6 s (about 16 full collections per GiB copied).
 */
const FULL_COLLECT_EVERY_BYTES = 128 * MiB;
let sinceFullCollect = 0;

/** A young-generation collection after COLLECT_EVERY_BYTES of `bytes`, a full one now and then. */
function collectAfter(bytes: number): void {
  sinceFullCollect += bytes;
  if (sinceFullCollect >= FULL_COLLECT_EVERY_BYTES) {
    sinceFullCollect = 0;
    collectAllGarbage();
  } else {
    collectYoungGarbage();
  }
}

/** The spool directory: under the OS temp directory (/tmp in Lambda). */
export function defaultSpoolDir(): string {
  return join(tmpdir(), "flussonic-backup-spool");
}

export interface SpoolUploadOptions {
  /** Directory of the spool files (created when missing). */
  dir: string;
  /** An object expected up to this size is spooled whole and stored with one PutObject. */
  singleMaxBytes: number;
  /** Part size of a larger object (default SPOOL_PART_BYTES). */
  partSize?: number;
  /** Parts uploading at once while the next is written (default SPOOL_QUEUE_SIZE). */
  queueSize?: number;
  /** The object's expected size (the server's Content-Length, or an estimate), when known. */
  expectedBytes?: number | undefined;
  /** `expectedBytes` is the server's Content-Length (no margin needed). */
  exact?: boolean;
  /**
   * The SHA-256 of the whole body, asked once after the body ended (the caller hashes every byte for
   * its record anyway): the single PutObject's checksum and payload hash.
   */
  wholeSha256: () => Buffer;
}

const sweeps = new Map<string, Promise<void>>();

/**
 * Removes, once per process and directory, the spool files of processes that are gone: a copier
 * killed mid-copy (SIGKILL, a Lambda timeout or out-of-memory) leaves its files behind. A file is
 * named after the process that wrote it; it is stale when that process no longer runs, or when it
 * carries this process's own id (a process before this one had it: this one has written none yet).
 */
export function sweepStaleSpool(dir: string): Promise<void> {
  let sweep = sweeps.get(dir);
  if (!sweep) {
    sweep = (async () => {
      await mkdir(dir, { recursive: true });
      const names = await readdir(dir).catch(() => [] as string[]);
      await Promise.all(
        names
          .filter((n) => n.endsWith(SPOOL_SUFFIX))
          .filter((n) => !running(Number(n.split("-")[0])))
          .map((n) => rm(join(dir, n), { force: true }).catch(() => undefined)),
      );
    })();
    sweeps.set(dir, sweep);
  }
  return sweep;
}

function running(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** One spool file: a whole object, or one part of a multipart upload. */
interface Piece {
  path: string;
  file: FileHandle | undefined;
  size: number;
  /** Most bytes this piece takes before the next one starts. */
  limit: number;
  /** Hashed as written (a part); undefined: hashed when it turns out to be a part (read back). */
  hash: Hash | undefined;
}

export class SpoolUpload {
  readonly #s3: S3Client;
  readonly #params: PartUploadParams;
  readonly #o: SpoolUploadOptions;
  readonly #partSize: number;
  readonly #queueSize: number;
  readonly #firstLimit: number;
  readonly #abort = new AbortController();
  readonly #parts: CompletedPart[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  /** Spool files not removed yet. */
  readonly #pieces = new Set<Piece>();
  #uploadId: string | undefined;
  #partNumber = 0;
  #failure: unknown;
  #requests = 0;
  /** The object's one spool file when it went up as a single PutObject (for `expectedEtag`). */
  #single: Piece | undefined;
  /** Bytes written to the spool. */
  #bytes = 0;
  /** `#bytes` at the last young-generation collection. */
  #collectedAt = 0;

  constructor(s3: S3Client, params: PartUploadParams, o: SpoolUploadOptions) {
    this.#s3 = s3;
    this.#params = params;
    this.#o = o;
    this.#queueSize = Math.max(1, o.queueSize ?? SPOOL_QUEUE_SIZE);
    const singleMax = Math.max(MIN_PART_BYTES, Math.min(MAX_PUT_BYTES, o.singleMaxBytes));
    const part = Math.max(MIN_PART_BYTES, o.partSize ?? SPOOL_PART_BYTES);
    const expected = o.expectedBytes;
    const want =
      expected !== undefined && Number.isFinite(expected) && expected > 0
        ? Math.ceil(expected * (o.exact ? 1 : ESTIMATE_MARGIN))
        : undefined;
    if (want === undefined || want <= singleMax) {
      // Spooled whole: one PutObject, unless the body outgrows the threshold after all.
      this.#firstLimit = singleMax;
      this.#partSize = part;
    } else {
      // Parts evened out over the expected size, so that the last one is not a sliver.
      const parts = Math.min(MAX_PARTS, Math.ceil(want / part));
      this.#partSize = Math.max(MIN_PART_BYTES, Math.ceil(Math.ceil(want / parts) / MiB) * MiB);
      this.#firstLimit = this.#partSize;
    }
  }

  /** PUT-class requests this upload sent (aborts are free and not counted). */
  get requests(): number {
    return this.#requests;
  }

  /** Spool files this upload holds now (0 once disposed). */
  get spoolFiles(): number {
    return this.#pieces.size;
  }

  /** Stops the S3 requests under way: `upload()` then aborts the multipart upload and rejects. */
  abort(): void {
    this.#abort.abort();
  }

  /**
   * Spools `body` and stores it. Rejects with the body's error (as thrown) or S3's, after aborting
   * the multipart upload; the spool files are left for `expectedEtag` until `dispose`.
   */
  async upload(body: AsyncIterable<Uint8Array>): Promise<UploadedObject> {
    await sweepStaleSpool(this.#o.dir);
    let piece = await this.#newPiece(this.#firstLimit, false);
    try {
      for await (const chunk of body) {
        let at = 0;
        while (at < chunk.length) {
          if (piece.size === piece.limit) {
            // A full piece and more to come: it goes up as a part while the next is written.
            await this.#sendPart(piece);
            piece = await this.#newPiece(this.#partSize, true);
          }
          const n = Math.min(chunk.length - at, piece.limit - piece.size);
          await this.#write(piece, chunk.subarray(at, at + n));
          at += n;
        }
      }
      if (this.#uploadId === undefined && this.#partNumber === 0) {
        return await this.#putSingle(piece);
      }
      if (piece.size > 0) await this.#sendPart(piece);
      else await this.#remove(piece);
      await Promise.all(this.#inFlight);
      if (this.#failure !== undefined) throw this.#failure;
      this.#requests++;
      return await completeMultipart(this.#s3, this.#params, this.#uploadId, this.#parts, this.#abort.signal);
    } catch (error) {
      // The first failure is the cause: the parts stopped below fail with "aborted".
      const cause = this.#failure ?? error;
      this.#abort.abort();
      await Promise.allSettled(this.#inFlight);
      await this.#abortMultipart();
      throw cause;
    }
  }

  /**
   * The ETag S3 gives the object: the MD5 of the spooled object for a single PutObject (read back
   * from the spool, which `dispose` has not removed yet), else the MD5 of the parts' ETags and "-N".
   * Undefined when it cannot be known.
   */
  async expectedEtag(): Promise<string | undefined> {
    if (this.#single) {
      if (!this.#pieces.has(this.#single)) return undefined;
      return `"${(await hashFile(this.#single.path, "md5")).toString("hex")}"`;
    }
    if (this.#parts.length === 0 || this.#parts.some((p) => !/^"?[0-9a-f]{32}"?$/i.test(p.ETag ?? ""))) {
      return undefined;
    }
    const md5s = this.#parts.map((p) => Buffer.from(p.ETag!.replaceAll('"', ""), "hex"));
    return `"${createHash("md5").update(Buffer.concat(md5s)).digest("hex")}-${this.#parts.length}"`;
  }

  /** Removes every spool file of this upload (call it in a `finally`). */
  async dispose(): Promise<void> {
    await Promise.allSettled(this.#inFlight);
    await Promise.all([...this.#pieces].map((p) => this.#remove(p)));
  }

  async #newPiece(limit: number, hashed: boolean): Promise<Piece> {
    const path = join(this.#o.dir, `${process.pid}-${randomUUID()}${SPOOL_SUFFIX}`);
    const piece: Piece = {
      path,
      file: undefined,
      size: 0,
      limit,
      hash: hashed ? createHash("sha256") : undefined,
    };
    this.#pieces.add(piece);
    try {
      piece.file = await open(path, "wx", 0o600);
    } catch (error) {
      throw this.#diskError(error, "create a spool file");
    }
    return piece;
  }

  async #write(piece: Piece, bytes: Uint8Array): Promise<void> {
    if (this.#failure !== undefined) throw this.#failure;
    let done = 0;
    try {
      while (done < bytes.length) {
        const { bytesWritten } = await piece.file!.write(bytes, done, bytes.length - done);
        done += bytesWritten;
      }
    } catch (error) {
      throw this.#diskError(error, "write the spool");
    }
    piece.hash?.update(bytes);
    piece.size += bytes.length;
    this.#bytes += bytes.length;
    if (this.#bytes - this.#collectedAt >= COLLECT_EVERY_BYTES) {
      collectAfter(this.#bytes - this.#collectedAt);
      this.#collectedAt = this.#bytes;
    }
  }

  /** A disk failure as a sentence: a full disk is retried (after the spool is removed). */
  #diskError(error: unknown, what: string): Error {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOSPC" || code === "EDQUOT") {
      return new RetryableError(
        `the copier's spool in ${this.#o.dir} is full after ${this.#bytes} bytes of ${this.#params.Key} (could not ${what}): free disk space there, give the copier more (Lambda: ephemeralStorageSize), or lower spoolMiB so that larger windows go up in parts; the copy is retried`,
        { cause: error },
      );
    }
    return new RetryableError(
      `could not ${what} in ${this.#o.dir} for ${this.#params.Key}: ${(error as Error).message}`,
      { cause: error },
    );
  }

  async #close(piece: Piece): Promise<void> {
    const file = piece.file;
    piece.file = undefined;
    await file?.close().catch(() => undefined);
  }

  async #remove(piece: Piece): Promise<void> {
    await this.#close(piece);
    await rm(piece.path, { force: true }).catch(() => undefined);
    this.#pieces.delete(piece);
  }

  async #putSingle(piece: Piece): Promise<UploadedObject> {
    await this.#close(piece);
    const sum = this.#o.wholeSha256();
    this.#single = piece;
    const res = await this.#sendFile(
      piece,
      sum.toString("hex"),
      (body) =>
        new PutObjectCommand({
          ...this.#params,
          Body: body,
          ContentLength: piece.size,
          ChecksumAlgorithm: "SHA256",
          ChecksumSHA256: sum.toString("base64"),
        }),
    );
    return { ETag: res.ETag, VersionId: res.VersionId };
  }

  /** Starts uploading a full piece as the next part (creating the upload first); waits while the queue is full. */
  async #sendPart(piece: Piece): Promise<void> {
    if (this.#failure !== undefined) throw this.#failure;
    await this.#close(piece);
    if (this.#uploadId === undefined) {
      this.#requests++;
      this.#uploadId = await createMultipart(this.#s3, this.#params, this.#abort.signal);
    }
    const partNumber = ++this.#partNumber;
    if (partNumber > MAX_PARTS) {
      throw new Error(`more than ${MAX_PARTS} parts of ${this.#partSize} bytes: raise the part size`);
    }
    let digest: Buffer;
    if (piece.hash) {
      digest = piece.hash.digest();
    } else {
      // The first piece, spooled to be one PutObject, outgrew the threshold: read back and hashed.
      digest = await hashFile(piece.path, "sha256");
    }
    const base64 = digest.toString("base64");
    const uploadId = this.#uploadId;
    const task: Promise<void> = this.#sendFile(
      piece,
      digest.toString("hex"),
      (body) =>
        new UploadPartCommand({
          Bucket: this.#params.Bucket,
          Key: this.#params.Key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
          ContentLength: piece.size,
          ChecksumAlgorithm: "SHA256",
          ChecksumSHA256: base64,
        }),
    )
      .then(async (res) => {
        if (!res.ETag) throw new Error(`S3 answered part ${partNumber} without an ETag`);
        this.#parts.push({
          PartNumber: partNumber,
          ETag: res.ETag,
          ChecksumSHA256: res.ChecksumSHA256 ?? base64,
        });
        await this.#remove(piece);
      })
      .catch((error: unknown) => {
        this.#failure ??= error;
        // The other parts need not go on: stop them, the upload is aborted.
        this.#abort.abort();
      })
      .finally(() => this.#inFlight.delete(task));
    this.#inFlight.add(task);
    while (this.#inFlight.size >= this.#queueSize) {
      await Promise.race(this.#inFlight);
      if (this.#failure !== undefined) throw this.#failure;
    }
  }

  /**
   * One request whose body is a spool file, tried again (a fresh read of the file each time) as the
   * SDK's standard retry would: the SDK itself does not retry a streamed body.
   */
  async #sendFile(
    piece: Piece,
    payloadHashHex: string,
    command: (body: Readable) => Stackable,
  ): Promise<Sent> {
    const maxAttempts = Math.max(1, Number((await resolve(this.#s3.config.maxAttempts)) ?? 3));
    const answer = await sendWithRetries<{ status: number; date: undefined; out?: Sent; error?: Error }>({
      maxAttempts,
      once: async () => {
        this.#requests++;
        const body = collecting(createReadStream(piece.path, { highWaterMark: 256 * 1024 }));
        try {
          const cmd = quiet(withPayloadHash(command(body), payloadHashHex));
          const out = (await this.#s3.send(cmd as never, { abortSignal: this.#abort.signal })) as Sent;
          return { status: 200, date: undefined, out };
        } catch (error) {
          const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
          if (typeof status === "number" && status >= 300)
            return { status, date: undefined, error: error as Error };
          throw error;
        } finally {
          body.destroy();
        }
      },
      answered: (r) => r.error === undefined,
      failure: (r) => r.error!,
      clock: { offsetMs: 0 },
      // The SDK's credential provider refreshes an expired token itself.
      forgetCredentials: () => undefined,
    });
    return answer.out ?? {};
  }

  async #abortMultipart(): Promise<void> {
    await abortMultipart(this.#s3, this.#params, this.#uploadId);
  }
}

/**
 * The file's reads handed on as they are (no copy), with a young-generation collection every
 * COLLECT_EVERY_BYTES: each read is a new buffer whose memory V8 would otherwise free only when tens
 * of MB of them piled up (measured: a 200 MiB window's copier peaked 32 MiB higher spooled than from
 * memory buffers before this).
 */
function collecting(file: Readable): Readable {
  let since = 0;
  const counted = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      since += chunk.length;
      if (since >= COLLECT_EVERY_BYTES) {
        collectAfter(since);
        since = 0;
      }
      done(null, chunk);
    },
  });
  return pipeline(file, counted, () => undefined);
}

/** A spool file's digest, read through one reused 1 MiB buffer (no garbage per read). */
async function hashFile(path: string, algorithm: "sha256" | "md5"): Promise<Buffer> {
  const hash = createHash(algorithm);
  const file = await open(path, "r");
  try {
    const buffer = Buffer.allocUnsafeSlow(MiB);
    for (;;) {
      const { bytesRead } = await file.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
    }
  } finally {
    await file.close();
  }
  return hash.digest();
}

/** What S3 answers a PutObject or UploadPart with (what is used of it). */
interface Sent {
  ETag?: string | undefined;
  VersionId?: string | undefined;
  ChecksumSHA256?: string | undefined;
}

type Handler = (args: { request: { headers?: Record<string, string> } }) => Promise<unknown>;
type Stackable = { middlewareStack: { add: (...args: never[]) => unknown } };

const SILENT = { debug() {}, info() {}, warn() {}, error() {}, trace() {} };

/**
 * The SDK warns on the console ("non-retryable streaming request") whenever a streamed request
 * fails: here it is retried (sendFile), so the warning is not the user's business.
 */
function quiet<T extends Stackable>(command: T): T {
  (
    command.middlewareStack.add as (
      mw: (next: Handler, context: { logger?: unknown }) => Handler,
      o: object,
    ) => void
  )(
    (next, context) => {
      const logger = context.logger as { constructor?: { name?: string } } | undefined;
      if (!logger || logger.constructor?.name === "NoOpLogger") context.logger = SILENT;
      return next;
    },
    { step: "initialize", priority: "high", name: "flussonicBackupQuietStreaming" },
  );
  return command;
}
