/**
 * Archive reads: opens `archive-{from}-{duration}.{mp4|ts}` of a stream as a byte stream, paced
 * against the source's throttle: in verified `Range` slices with resume where the source allows,
 * else one request paid read by read. Also what a 404 on an export means (gone, or a wrong URL).
 */
import { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import type { ArchiveFormat } from "../config/config.ts";
import { BackupError, RetryableError, SetupError, WindowGoneError } from "../domain/errors.ts";
import type { ArchiveRange } from "../domain/ranges.ts";
import { KERNEL_BURST_BYTES } from "../domain/windows.ts";
import { type DvrStream, type Endpoint, type FlussonicApi, streamPath } from "./flussonic-api.ts";
import type { Throttle } from "./throttle.ts";

/** How the source lets a window be read: see ArchiveBody.mode. */
export type SourceReads = "slices" | "whole";

/** An archive window opened for reading. The caller must consume or destroy `body`. */
export interface ArchiveBody {
  body: Readable;
  /** Bytes promised by the server, when it sent Content-Length (or a Content-Range total). */
  contentLength: number | undefined;
  /** Milliseconds from the first request to its answer's headers (the source's latency, no throttle waits). */
  headersMs?: number;
  /**
   * How a paced download was read: "slices" (paced Range requests) or "whole" (one request, the
   * source does not offer Range). Absent when the copy was not paced (Range was not tried).
   */
  mode?: SourceReads;
  /**
   * The window's expected size in bytes, when known before the body is read: Content-Length (or a
   * Content-Range total), else the stream's bitrate x the window's duration (paced reads). The
   * copier sizes its upload parts from it; the body may still differ (it is checked as it comes).
   */
  expectedBytes?: number;
}

/** How an archive download is paced: see FlussonicClient.openWindow. */
export interface WindowPacing {
  /** The source's throttle; every byte of the window is paid for once. */
  throttle: Throttle;
  /** What the kernels take of a response before the first read (default RECEIVE_WINDOW_BYTES). */
  receiveWindowBytes?: number;
  /** The window's expected size in bytes, when the caller knows it (else learned or asked). */
  expectedBytes?: number;
}

/** Pays `bytes` in turns of at most `slice`, so that other copies sharing the throttle go on reading. */
async function takeInSlices(throttle: Throttle, bytes: number, slice: number, signal?: AbortSignal) {
  for (let left = bytes; left > 0; left -= slice) await throttle.take(Math.min(slice, left), signal);
}

/**
 * What a TCP receive window holds when a download starts to be read slowly: measured about 1.2 to
 * 1.5 MB on Linux loopback (benchmarks); on a real network it grows with the path's bandwidth-delay.
 */
export const RECEIVE_WINDOW_BYTES = 1024 * 1024;
/** A Range slice lasts this long at the source's rate: the most the source sends ahead of payment. */
export const SLICE_SECONDS = 0.25;
const MIN_SLICE_BYTES = 16 * 1024;
/** A window up to this size is paid whole before asking: Linux's socket buffers take it at once. */
const UPFRONT_MAX_BYTES = KERNEL_BURST_BYTES;
const MAX_SLICE_BYTES = 16 * 1024 * 1024;
/** Lost connections in a row, without a byte between them, before a sliced download gives up. */
const MAX_RESUMES = 3;

/** Bytes of one Range slice at `bytesPerSecond`. */
export function sliceBytes(bytesPerSecond: number): number {
  return Math.min(MAX_SLICE_BYTES, Math.max(MIN_SLICE_BYTES, Math.round(bytesPerSecond * SLICE_SECONDS)));
}

interface ContentRange {
  start: number;
  /** Inclusive. */
  end: number;
  total: number;
}

/** `bytes a-b/total` (a known total only). */
export function parseContentRange(value: string | string[] | undefined): ContentRange | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  const m = v ? /^bytes (\d+)-(\d+)\/(\d+)$/.exec(v.trim()) : null;
  if (!m) return undefined;
  const r = { start: Number(m[1]), end: Number(m[2]), total: Number(m[3]) };
  return r.start <= r.end && r.end < r.total ? r : undefined;
}

/** A strong ETag (weak ones, `W/"..."`, do not promise identical bytes). */
function strongEtag(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return v && !v.startsWith("W/") ? v : undefined;
}

/**
 * A whole-response body paced by `throttle`. The source sends ahead of what is read by what the
 * kernels and the HTTP client buffer (`lead` bytes), so reading a byte lets it send the byte `lead`
 * further on: each read is paid for the bytes it lets the source send, `read + lead`, up to the
 * body's end (`limit`: its length, else the window's expected size). `prepaid` bytes (the first
 * `lead`, or the whole window when it is smaller) were paid before asking. Paying the lead at the
 * end rather than the start keeps the source from sending two leads at once when the first
 * (already paid) bytes are read at line speed. What was paid and never came is refunded.
 */
function paced(
  body: Readable,
  throttle: Throttle,
  pay: { prepaid: number; lead: number; limit: number | undefined },
  signal?: AbortSignal,
  done?: (bytes: number) => void,
): Readable {
  async function* gen(): AsyncGenerator<Buffer> {
    let paidTo = pay.prepaid;
    let read = 0;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        read += chunk.length;
        const sendable = Math.max(read, Math.min(pay.limit ?? Number.POSITIVE_INFINITY, read + pay.lead));
        if (sendable > paidTo) {
          await throttle.take(sendable - paidTo, signal);
          paidTo = sendable;
        }
        yield chunk;
      }
      // A body shorter than what was paid: the rest was never sent.
      if (paidTo > read) throttle.refund?.(paidTo - read);
      done?.(read);
    } finally {
      body.destroy();
    }
  }
  return Readable.from(gen(), { objectMode: false });
}

/** An archive window asked for: what the error messages name. */
interface WindowAsked {
  what: string;
  name: string;
  from: number;
  duration: number;
  /** Path below the endpoint's base path. */
  path: string;
}

/** What archive reads ask of the rest of the client. */
export interface ArchiveReaderDeps {
  api: FlussonicApi;
  /** Where exports are read. */
  archive: Endpoint;
  /** The config field `archive` comes from: `archiveUrl` when set, else `url`. */
  archiveField: "archiveUrl" | "url";
  /** Copies of this source at once (they share one throttle in the local runtime). */
  copies: number;
  /** A stream's DVR facts (its bitrate, for the expected size of a first window). */
  dvrStream: (name: string) => Promise<DvrStream>;
  /** A stream's recorded ranges (to tell what a 404 on an export means). */
  recordedRanges: (name: string, span: { from: number; to: number }) => Promise<ArchiveRange[]>;
}

/** The archive reads of one source, with what its answers taught (Range or not, bytes per second). */
export class ArchiveReader {
  readonly #d: ArchiveReaderDeps;
  /** Whether archive windows can be read in verified Range slices (learnt from the answers). */
  #ranges: "unknown" | "yes" | "no" = "unknown";
  /** Archive bytes per second of each stream's last window read whole (what to pay up front). */
  readonly #bytesPerSecond = new Map<string, number>();

  constructor(deps: ArchiveReaderDeps) {
    this.#d = deps;
  }

  get #sourceName(): string {
    return this.#d.api.sourceName;
  }

  /** See FlussonicClient.openWindow. */
  async openWindow(
    name: string,
    from: number,
    duration: number,
    format: ArchiveFormat,
    signal?: AbortSignal,
    pacing?: WindowPacing,
  ): Promise<ArchiveBody> {
    const path = `/${streamPath(name)}/archive-${from}-${duration}.${format}`;
    const what = `archive window ${from}-${duration} of stream "${name}"`;
    const asked: WindowAsked = { what, name, from, duration, path };
    const rate = pacing?.throttle.bytesPerSecond;
    if (!pacing || !rate || !Number.isFinite(rate)) {
      const { res, headersMs } = await this.#archiveRequest(path, what, signal);
      const body = await this.#wholeBody(res, asked);
      return {
        ...body,
        headersMs,
        ...(body.contentLength !== undefined ? { expectedBytes: body.contentLength } : {}),
      };
    }
    const { throttle } = pacing;
    // The window's expected size: the caller's, else what the stream's last window gave. A stream
    // not seen yet: its bitrate from the media server's stream info, asked once (0: unknown).
    if (!this.#bytesPerSecond.has(name) && !pacing.expectedBytes) {
      const info = await this.#d.dvrStream(name).catch(() => undefined);
      this.#bytesPerSecond.set(name, (info?.bitrateBps ?? 0) / 8);
    }
    const learned = Math.round((this.#bytesPerSecond.get(name) ?? 0) * duration);
    const expected = pacing.expectedBytes && pacing.expectedBytes > 0 ? pacing.expectedBytes : learned;
    // One request delivers at once what the kernels take: the receive window, or the whole window
    // when it fits in their buffers. That lead is paid before asking (all of it when the window is
    // expected to fit), and every read then pays for the bytes it lets the source send.
    const lead = Math.max(
      pacing.receiveWindowBytes ?? RECEIVE_WINDOW_BYTES,
      expected <= UPFRONT_MAX_BYTES ? expected : 0,
    );
    const learn = (bytes: number) => this.#bytesPerSecond.set(name, bytes / duration);
    // The local runtime shares one throttle among a source's copies: a slice is a quarter second of
    // one copy's share. Large payments are made slice by slice, so that the other copies' reads
    // take turns with them rather than stall behind one long wait.
    const slice = sliceBytes(rate / this.#d.copies);
    const prepay = (bytes: number) => takeInSlices(throttle, bytes, slice, signal);
    const whole = async (
      res: Dispatcher.ResponseData,
      paid: number,
      headersMs: number,
    ): Promise<ArchiveBody> => {
      const body = await this.#wholeBody(res, asked);
      const limit = body.contentLength ?? (expected > 0 ? expected : undefined);
      const upfront = Math.min(lead, limit ?? lead);
      if (upfront > paid) await prepay(upfront - paid);
      return {
        ...body,
        body: paced(body.body, throttle, { prepaid: Math.max(upfront, paid), lead, limit }, signal, learn),
        headersMs,
        mode: "whole",
        ...(limit !== undefined ? { expectedBytes: limit } : {}),
      };
    };
    const upfront = Math.min(lead, expected > 0 ? expected : lead);
    if (this.#ranges !== "no") {
      // The first answer may be the whole window (no Range): ask for no more than the kernels take.
      const firstSlice = Math.min(slice, upfront);
      await prepay(firstSlice);
      // Not known yet whether the source answers Range (or learnt meanwhile that it does not): the
      // answer may be the whole window at once (copies starting together each ask), so it is spaced
      // as the burst it may be.
      const { res, headersMs } = await this.#archiveRequest(
        path,
        what,
        signal,
        { range: `bytes=0-${firstSlice - 1}` },
        this.#ranges === "yes" ? undefined : { throttle, bytes: upfront },
      );
      if (res.statusCode === 206) {
        const first = parseContentRange(res.headers["content-range"]);
        const etag = strongEtag(res.headers.etag);
        if (first && first.start === 0 && first.end < firstSlice && etag !== undefined) {
          this.#ranges = "yes";
          const body = this.#slices(asked, signal, throttle, slice, firstSlice, etag, first, res);
          return {
            body: Readable.from(body, { objectMode: false }),
            contentLength: first.total,
            headersMs,
            mode: "slices",
            expectedBytes: first.total,
          };
        }
        // Pieces that cannot be told from another export's are never joined: one request instead.
        await res.body.dump().catch(() => undefined);
        this.#ranges = "no";
        await prepay(upfront - firstSlice);
        const again = await this.#archiveRequest(path, what, signal, undefined, { throttle, bytes: upfront });
        return whole(again.res, upfront, headersMs);
      }
      if (res.statusCode === 200) this.#ranges = "no";
      // 200: the whole window comes; the kernels take a receive window of it now, whatever we read.
      return whole(res, firstSlice, headersMs);
    }
    // No ranges: a request is a burst of what the kernels take before the first read; pay first,
    // and let it land no sooner than a second's worth of bursts allows (throttle.ts, spaceBurst).
    await prepay(upfront);
    const { res, headersMs } = await this.#archiveRequest(path, what, signal, undefined, {
      throttle,
      bytes: upfront,
    });
    return whole(res, upfront, headersMs);
  }

  /** One request for an export; `burst`: its answer may land at once, so it is spaced (spaceBurst). */
  async #archiveRequest(
    path: string,
    what: string,
    signal?: AbortSignal,
    headers?: Record<string, string>,
    burst?: { throttle: Throttle; bytes: number },
  ) {
    const landed = await burst?.throttle.spaceBurst?.(burst.bytes, signal);
    try {
      return await this.#request(path, what, signal, headers);
    } finally {
      landed?.();
    }
  }

  async #request(path: string, what: string, signal?: AbortSignal, headers?: Record<string, string>) {
    const asked = performance.now();
    const res = await this.#d.api.request(this.#d.archive, path, what, signal, headers);
    return { res, headersMs: performance.now() - asked };
  }

  /** A 200 answer's body, or the error its status means. */
  async #wholeBody(
    res: Dispatcher.ResponseData,
    asked: WindowAsked,
  ): Promise<{ body: Readable; contentLength: number | undefined }> {
    if (res.statusCode === 200) {
      const length = Number(res.headers["content-length"]);
      return { body: res.body, contentLength: Number.isFinite(length) ? length : undefined };
    }
    throw await this.#archiveError(res, asked);
  }

  async #archiveError(res: Dispatcher.ResponseData, asked: WindowAsked): Promise<BackupError> {
    await res.body.dump().catch(() => undefined);
    if (res.statusCode === 404) return this.#notFound(asked);
    return this.#d.api.statusError(res.statusCode, res.headers, asked.what, "playback");
  }

  /**
   * What a 404 on an export means. The spec declares only 200 for the exports
   * (paths/playback/mp4-export.yml, ts-export.yml), and a wrong `archiveUrl` prefix or a stream not
   * loaded yet answers 404 as well as a window retention deleted. So the stream's ranges are read
   * again: the window is gone (WindowGoneError, dropped) only when none of its seconds is in them,
   * or its first second no longer is (retention deleting it); otherwise the 404 is a failure naming
   * the URL and the config field.
   */
  async #notFound(asked: WindowAsked): Promise<BackupError> {
    const where = `source ${this.#sourceName}: ${asked.what}: HTTP 404`;
    const url = `${this.#d.archive.origin}${this.#d.archive.basePath}${asked.path}`;
    let held: ArchiveRange[];
    try {
      held = await this.#d.recordedRanges(asked.name, { from: asked.from, to: asked.from + asked.duration });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      const message = `${where} from ${url}, and the stream's ranges could not be read to tell whether retention deleted the window: ${reason}`;
      return error instanceof BackupError && !error.retryable
        ? new SetupError(message, { cause: error })
        : new RetryableError(message, { cause: error });
    }
    if (held.length === 0) {
      return new WindowGoneError(
        `${where}, no longer on the source (retention: the stream's ranges no longer hold any of its seconds)`,
      );
    }
    // Windows never start in a gap (the planner cuts them at range starts): a window whose first
    // second is no longer recorded is being deleted by retention now; what is left of it is planned
    // again from the archive's new start.
    if (held[0]!.from > asked.from) {
      return new WindowGoneError(
        `${where}, its start is no longer on the source (retention deletes it now; the stream's archive starts at ${held[0]!.from})`,
      );
    }
    const seconds = held.reduce((sum, r) => sum + (r.to - r.from), 0);
    return new SetupError(
      `${where} from ${url}, but the stream's ranges still hold ${seconds} s of the window: check sources[].${this.#d.archiveField} of source "${this.#sourceName}" (the export URL prefix), or whether the stream is loaded on the server`,
    );
  }

  /**
   * The window's bytes in paced `Range` slices after the first answer: each slice paid before it is
   * asked for, sent with If-Range, and checked to continue the same export; a lost connection
   * resumes from the last byte received (at most MAX_RESUMES times in a row without progress).
   */
  async *#slices(
    asked: WindowAsked,
    signal: AbortSignal | undefined,
    throttle: Throttle,
    slice: number,
    paid: number,
    etag: string,
    first: ContentRange,
    firstRes: Dispatcher.ResponseData,
  ): AsyncGenerator<Buffer> {
    const { total } = first;
    const { path, what } = asked;
    const where = `source ${this.#sourceName}: ${what}`;
    let res: Dispatcher.ResponseData | undefined = firstRes;
    let end = first.end;
    let offset = 0;
    let paidTo = paid;
    let failures = 0;
    // A window smaller than the first slice paid for.
    if (paidTo > total) throttle.refund?.(paidTo - total);
    try {
      while (offset < total) {
        if (!res) {
          const last = Math.min(offset + slice, total) - 1;
          if (last + 1 > paidTo) {
            await throttle.take(last + 1 - paidTo, signal);
            paidTo = last + 1;
          }
          try {
            ({ res } = await this.#archiveRequest(path, what, signal, {
              range: `bytes=${offset}-${last}`,
              "if-range": etag,
            }));
          } catch (error) {
            // An idle connection the source closed, a refused reconnect: try again from here.
            if (signal?.aborted || ++failures > MAX_RESUMES) throw error;
            continue;
          }
          if (res.statusCode === 200 || (res.statusCode === 206 && strongEtag(res.headers.etag) !== etag)) {
            this.#ranges = "no";
            throw new RetryableError(
              `${where}: the source's export changed between two range requests (ETag ${etag} became ${String(res.headers.etag)}), so its pieces were not joined; the window is copied again in one request`,
            );
          }
          if (res.statusCode !== 206) throw await this.#archiveError(res, asked);
          const range = parseContentRange(res.headers["content-range"]);
          if (!range || range.start !== offset || range.end > last || range.total !== total) {
            throw new RetryableError(
              `${where}: range answer "${String(res.headers["content-range"])}" does not continue bytes ${offset}-${last} of ${total}; the window is copied again`,
            );
          }
          end = range.end;
        }
        const at = offset;
        let lost: unknown;
        try {
          for await (const chunk of res.body as AsyncIterable<Buffer>) {
            if (offset + chunk.length > end + 1) {
              throw new RetryableError(`${where}: a range answer sent more than bytes ${at}-${end}`);
            }
            offset += chunk.length;
            yield chunk;
          }
        } catch (error) {
          if (error instanceof BackupError || signal?.aborted) throw error;
          lost = error;
        }
        // A slice cut short (reset, or a clean close before its end): the next request resumes here.
        if (offset > at) failures = 0;
        else if (offset <= end && ++failures > MAX_RESUMES) {
          if (lost !== undefined) throw this.#d.api.networkError(lost, what);
          throw new RetryableError(`${where}: range answers stopped at byte ${offset} of ${total}`);
        }
        res.body.destroy();
        res = undefined;
      }
    } finally {
      res?.body.destroy();
    }
  }
}
