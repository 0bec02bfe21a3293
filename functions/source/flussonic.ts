/**
 * The Flussonic adapter: lists DVR streams, reads a stream's recorded ranges and opens archive
 * windows as byte streams. Translates every HTTP failure into the BackupError hierarchy.
 * One undici pool per origin of a source, shared by all calls.
 */
import { Readable } from "node:stream";
import { type Dispatcher, Pool, errors as undiciErrors } from "undici";
import { z } from "zod";
import type { ArchiveFormat, SourceConfig, SourceCredentials } from "../config/config.ts";
import {
  BackupError,
  MalformedAnswerError,
  RetryableError,
  SetupError,
  WindowGoneError,
} from "../domain/errors.ts";
import { type ArchiveRange, clipRanges, normalizeRanges } from "../domain/ranges.ts";
import { KERNEL_BURST_BYTES } from "../domain/windows.ts";
import { type DvrDepth, dvrDepthOf } from "./dvr-depth.ts";
import type { Throttle } from "./throttle.ts";

const API = "/streamer/api/v3";
const PAGE_LIMIT = 500;
/** A stream or range list longer than this many pages is refused as a broken cursor loop. */
const MAX_PAGES = 10_000;

/** What the backup needs to know of one stream with a DVR archive. */
export interface DvrStream extends DvrDepth {
  name: string;
  /** Average archive bitrate (bits per second) when the server reports bytes and duration. */
  bitrateBps: number | undefined;
}

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

export interface FlussonicClientOptions {
  /** Extra connections kept per origin (default: enough for the source's copy cap plus index calls). */
  connections?: number;
}

// Shapes: only what we use is checked; everything else may change between Flussonic releases.
// The strict shapes of the spec are in ../domain/flussonic-contract.ts (each citing its spec
// file); these accept them and the other shapes servers are known to send, and tests check that
// every answer the contract allows parses here.
const dvrInfoShape = z.looseObject({
  from: z.number().nullish(),
  depth: z.number().nullish(),
  duration: z.number().nullish(),
  bytes: z.number().nullish(),
});
/** components/schemas/stream/stream_config.yml: the fields read (see flussonic-contract.ts streamConfig). */
const streamShape = z.looseObject({
  name: z.string(),
  named_by: z.string().nullish(),
  dvr: z.looseObject({}).nullish(),
  stats: z.looseObject({ dvr_info: dvrInfoShape.nullish(), remote: z.boolean().nullish() }).nullish(),
});
const streamListShape = z.looseObject({
  streams: z.array(streamShape),
  next: z.string().nullish(),
});
/**
 * The fields of a stream the list asks for (`select`, paths/stream/streams.yml): what
 * listDvrStreams and toDvrStream read. `stats.dvr_info.from` is required in dvr_info, so a stream
 * with DVR info keeps a `dvr_info` object in the answer.
 */
export const STREAM_LIST_SELECT = [
  "name",
  "named_by",
  "dvr",
  "stats.remote",
  "stats.dvr_info.from",
  "stats.dvr_info.bytes",
  "stats.dvr_info.duration",
].join(",");
/**
 * A recorded range in any generation: `{from, duration}` in seconds (components/schemas/dvr/
 * dvr_range.yml, both required there), `{opened_at, closed_at}` in milliseconds (newer servers,
 * optional extras), or both at once.
 */
const rangeShape = z
  .looseObject({
    from: z.number().optional(),
    duration: z.number().nonnegative().optional(),
    opened_at: z.number().optional(),
    closed_at: z.number().nullish(),
  })
  .refine((r) => (r.from !== undefined && r.duration !== undefined) || r.opened_at !== undefined, {
    error: "expected {from, duration} in seconds or {opened_at, closed_at} in milliseconds",
  });
const rangeListShape = z.looseObject({
  ranges: z.array(rangeShape),
  next: z.string().nullish(),
});
type RangeFields = z.infer<typeof rangeShape>;
const secondsRange = z.looseObject({ from: z.number(), duration: z.number().nonnegative() });
/**
 * `recording_status.json` in either shape: the spec's one `dvr_info` object
 * (paths/playback/recording-status.yml, components/schemas/dvr/dvr_info.yml: `ranges` of
 * {from, duration} seconds), or the older documentation page's array `[{stream, ranges}]`.
 */
const recordingStatusShape = z.union(
  [
    z.looseObject({ ranges: z.array(secondsRange) }),
    z.array(z.looseObject({ stream: z.string().optional(), ranges: z.array(secondsRange) })),
    // Newer servers: dvr_info without `ranges` (the description go-flussonic is generated from
    // marks it deprecated, "replaced with ranges_list", to be deleted at 24.09): see ranges.json.
    z.looseObject({ from: z.number(), ranges: z.undefined().optional() }),
  ],
  {
    error:
      "expected a dvr_info object {from, depth, ranges: [{from, duration}]} or an array [{stream, ranges: [{from, duration}]}]",
  },
);

/**
 * The ranges of a stream in a `recording_status.json` answer of either shape (unix seconds);
 * undefined when the answer is a dvr_info without ranges (newer servers: ask ranges.json).
 */
export function recordingStatusRanges(data: unknown, name: string): ArchiveRange[] | undefined {
  const parsed = recordingStatusShape.safeParse(data);
  if (!parsed.success) return undefined;
  const body = parsed.data;
  const ranges = Array.isArray(body)
    ? ((body.find((e) => e.stream === undefined || e.stream === name) ?? body[0])?.ranges ?? [])
    : body.ranges;
  return ranges?.map((r) => wholeSeconds(r.from, r.from + r.duration));
}

/**
 * The ranges of one page of `dvr/ranges` (unix seconds). `from`/`duration` are preferred when a
 * range has them (the spec's required fields); `opened_at`/`closed_at` (ms) are read only where they
 * are missing. Only the stream's last range may be open (no `closed_at`): it ends at `openEnd`
 * (the span's end). A range before the last without an end is refused (undefined and its index):
 * taking it as open would erase every gap after it.
 */
export function rangeListRanges(
  ranges: RangeFields[],
  isLastPage: boolean,
  openEnd: number,
): { ranges: ArchiveRange[] } | { openAt: number } {
  const out: ArchiveRange[] = [];
  for (const [i, r] of ranges.entries()) {
    if (r.from !== undefined && r.duration !== undefined) {
      out.push(wholeSeconds(r.from, r.from + r.duration));
    } else if (r.opened_at !== undefined) {
      // Milliseconds to whole seconds: see wholeSeconds.
      if (r.closed_at == null && !(isLastPage && i === ranges.length - 1)) return { openAt: i };
      const closed = r.closed_at ?? openEnd * 1000;
      out.push(wholeSeconds(r.opened_at / 1000, closed / 1000));
    }
  }
  return { ranges: out };
}

/** Client of one Flussonic source. */
export class FlussonicClient {
  readonly sourceName: string;
  readonly #api: Endpoint;
  readonly #archive: Endpoint;
  readonly #credentials: SourceCredentials;
  readonly #indexMode: "api" | "playback";
  /** The config field exports are read from: `archiveUrl` when set, else `url`. */
  readonly #archiveField: "archiveUrl" | "url";
  /** Whether archive windows can be read in verified Range slices (learnt from the answers). */
  #ranges: "unknown" | "yes" | "no" = "unknown";
  /** Copies of this source at once (they share one throttle in the local runtime). */
  readonly #copies: number;
  /** Archive bytes per second of each stream's last window read whole (what to pay up front). */
  readonly #bytesPerSecond = new Map<string, number>();

  constructor(source: SourceConfig, credentials: SourceCredentials, options: FlussonicClientOptions = {}) {
    this.sourceName = source.name;
    this.#credentials = credentials;
    this.#copies = Math.max(1, source.maxConcurrentCopies);
    this.#indexMode =
      source.index === "auto" ? (credentials.type === "token" ? "playback" : "api") : source.index;
    const poolOptions = {
      connections: options.connections ?? source.maxConcurrentCopies + 4,
      connectTimeout: source.timeouts.connectSeconds * 1000,
      headersTimeout: source.timeouts.headersSeconds * 1000,
      bodyTimeout: source.timeouts.bodyIdleSeconds * 1000,
      keepAliveTimeout: 10_000,
    };
    this.#api = endpoint(source.url, poolOptions);
    this.#archive = source.archiveUrl ? endpoint(source.archiveUrl, poolOptions) : this.#api;
    this.#archiveField = source.archiveUrl ? "archiveUrl" : "url";
  }

  /** Every stream of the source that has a DVR archive (admin API, all pages). */
  async listDvrStreams(): Promise<DvrStream[]> {
    const out: DvrStream[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const query = new URLSearchParams({ select: STREAM_LIST_SELECT, limit: String(PAGE_LIMIT) });
      if (cursor) query.set("cursor", cursor);
      const body = await this.#getJson(this.#api, `${API}/streams?${query}`, streamListShape, "stream list");
      for (const stream of body.streams) {
        // The list also holds streams of other servers (named_by "remote", components/schemas/
        // stream/named_by.yml; the older stats.remote): their archive is the peer's, not this
        // source's, and is never pulled through it.
        if (stream.named_by === "remote" || stream.stats?.remote === true) continue;
        if (stream.dvr || stream.stats?.dvr_info) out.push(toDvrStream(stream));
      }
      if (!body.next) return out;
      cursor = body.next;
    }
    throw new MalformedAnswerError(
      `source ${this.sourceName}: stream list did not end after ${MAX_PAGES} pages`,
    );
  }

  /** One stream's DVR facts; SetupError when the source does not know the stream. */
  async dvrStream(name: string): Promise<DvrStream> {
    if (this.#indexMode === "playback") return { name, bitrateBps: undefined };
    const stream = await this.#getJson(
      this.#api,
      `${API}/streams/${encodeURIComponent(name)}`,
      streamShape,
      `stream "${name}"`,
    );
    return toDvrStream(stream);
  }

  /**
   * Recorded ranges of a stream overlapping `[span.from, span.to)`, in unix seconds, half-open,
   * sorted and merged, clipped to the span. An open (still recording) last range ends at `span.to`.
   */
  async recordedRanges(name: string, span: { from: number; to: number }): Promise<ArchiveRange[]> {
    const ranges =
      this.#indexMode === "api" ? await this.#apiRanges(name, span) : await this.#playbackRanges(name, span);
    return clipRanges(normalizeRanges(ranges), span.from, span.to);
  }

  async #apiRanges(name: string, span: { from: number; to: number }): Promise<ArchiveRange[]> {
    const out: ArchiveRange[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const query = new URLSearchParams({ limit: String(PAGE_LIMIT) });
      if (cursor) query.set("cursor", cursor);
      const body = await this.#getJson(
        this.#api,
        `${API}/streams/${encodeURIComponent(name)}/dvr/ranges?${query}`,
        rangeListShape,
        `ranges of stream "${name}"`,
      );
      const got = rangeListRanges(body.ranges, !body.next, span.to);
      if ("openAt" in got) {
        throw new MalformedAnswerError(
          `source ${this.sourceName}: ranges of stream "${name}": range ${got.openAt} of page ${page + 1} has opened_at but no closed_at (nor from/duration) and is not the last range: only the last range may still be recording`,
        );
      }
      out.push(...got.ranges);
      if (!body.next) return out;
      cursor = body.next;
    }
    throw new MalformedAnswerError(
      `source ${this.sourceName}: ranges of "${name}" did not end after ${MAX_PAGES} pages`,
    );
  }

  /**
   * `recording_status.json` on the playback side. The spec's answer is one dvr_info object and
   * declares no query parameters; the older documented form is an array and takes
   * `from`/`to`/`request=ranges`, which are still sent (a server that ignores them answers every
   * range, and the caller clips to the span).
   */
  async #playbackRanges(name: string, span: { from: number; to: number }): Promise<ArchiveRange[]> {
    const query = new URLSearchParams({ from: String(span.from), to: String(span.to), request: "ranges" });
    const what = `recording status of stream "${name}"`;
    const body = await this.#getJson(
      this.#api,
      `/${streamPath(name)}/recording_status.json?${query}`,
      recordingStatusShape,
      what,
      "playback",
    );
    const ranges = recordingStatusRanges(body, name);
    if (ranges) return ranges;
    // A dvr_info without ranges (newer servers): `ranges.json`, what Flussonic's DVR player asks
    // (not in openapi-demo): `closed_at_gte`/`opened_at_lte` in ms, ranges in either generation.
    const rangesQuery = new URLSearchParams({
      closed_at_gte: String(span.from * 1000),
      opened_at_lte: String(span.to * 1000),
    });
    const list = await this.#getJson(
      this.#api,
      `/${streamPath(name)}/ranges.json?${rangesQuery}`,
      rangeListShape,
      `ranges.json of stream "${name}" (its recording_status.json has no ranges)`,
      "playback",
    );
    const got = rangeListRanges(list.ranges, true, span.to);
    if ("openAt" in got) {
      throw new MalformedAnswerError(
        `source ${this.sourceName}: ranges.json of stream "${name}": range ${got.openAt} has no end and is not the last range`,
      );
    }
    return got.ranges;
  }

  /**
   * Opens `[from, from + duration)` of a stream as a byte stream (fragmented MP4 or MPEG-TS), never
   * buffered. 404 means retention already deleted the window (WindowGoneError).
   *
   * With `pacing` the body is paced against the source's throttle, and every byte is paid for once,
   * before the source is asked to send it, so what the source sends never runs ahead of what was
   * paid by more than one request's worth:
   * - a source that answers `Range` with 206, a `Content-Range` total and a strong `ETag` is read in
   *   slices of a quarter second at one copy's share of the throttle's rate (SLICE_SECONDS), each
   *   paid before it is asked for, each
   *   sent with `If-Range` and checked to continue the same export (offset, total, ETag): a slice of
   *   another export is refused (RetryableError), never joined. A connection lost mid-slice, or an
   *   idle connection the source dropped, resumes from the last byte received.
   * - any other source (200 to a `Range`, no strong ETag: a re-muxed export may change its bytes
   *   under the same Last-Modified) gets one request. What the kernels take of it before the first
   *   read (`receiveWindowBytes`, or the whole window when it is expected to be at most
   *   UPFRONT_MAX_BYTES) is paid before asking; then each read pays for the bytes it lets the source
   *   send (see `paced`), and what a shorter body did not use is refunded. The expected size comes
   *   from `expectedBytes`, else the stream's last window, else the server's stream info.
   *   Large payments are made in slices, so that the other copies sharing the throttle go on.
   *   Windows smaller than the kernels' buffers still arrive in one burst each: the planner keeps
   *   them short for such sources (windowLengthFor).
   * What the source answered is remembered for the next windows.
   */
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
      return { ...(await this.#wholeBody(res, asked)), headersMs };
    }
    const { throttle } = pacing;
    // The window's expected size: the caller's, else what the stream's last window gave. A stream
    // not seen yet: its bitrate from the media server's stream info, asked once (0: unknown).
    if (!this.#bytesPerSecond.has(name) && !pacing.expectedBytes) {
      const info = await this.dvrStream(name).catch(() => undefined);
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
    const slice = sliceBytes(rate / this.#copies);
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
      };
    };
    const upfront = Math.min(lead, expected > 0 ? expected : lead);
    if (this.#ranges !== "no") {
      // The first answer may be the whole window (no Range): ask for no more than the kernels take.
      const firstSlice = Math.min(slice, upfront);
      await prepay(firstSlice);
      const { res, headersMs } = await this.#archiveRequest(path, what, signal, {
        range: `bytes=0-${firstSlice - 1}`,
      });
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
          };
        }
        // Pieces that cannot be told from another export's are never joined: one request instead.
        await res.body.dump().catch(() => undefined);
        this.#ranges = "no";
        await prepay(upfront - firstSlice);
        const again = await this.#archiveRequest(path, what, signal);
        return whole(again.res, upfront, headersMs);
      }
      if (res.statusCode === 200) this.#ranges = "no";
      // 200: the whole window comes; the kernels take a receive window of it now, whatever we read.
      return whole(res, firstSlice, headersMs);
    }
    // No ranges: a request is a burst of what the kernels take before the first read; pay first.
    await prepay(upfront);
    const { res, headersMs } = await this.#archiveRequest(path, what, signal);
    return whole(res, upfront, headersMs);
  }

  async #archiveRequest(path: string, what: string, signal?: AbortSignal, headers?: Record<string, string>) {
    const asked = performance.now();
    const res = await this.#request(this.#archive, path, what, signal, headers);
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
    return this.#statusError(res.statusCode, res.headers, asked.what, "playback");
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
    const where = `source ${this.sourceName}: ${asked.what}: HTTP 404`;
    const url = `${this.#archive.origin}${this.#archive.basePath}${asked.path}`;
    let held: ArchiveRange[];
    try {
      held = await this.recordedRanges(asked.name, { from: asked.from, to: asked.from + asked.duration });
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
      `${where} from ${url}, but the stream's ranges still hold ${seconds} s of the window: check sources[].${this.#archiveField} of source "${this.sourceName}" (the export URL prefix), or whether the stream is loaded on the server`,
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
    const where = `source ${this.sourceName}: ${what}`;
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
          if (lost !== undefined) throw this.#networkError(lost, what);
          throw new RetryableError(`${where}: range answers stopped at byte ${offset} of ${total}`);
        }
        res.body.destroy();
        res = undefined;
      }
    } finally {
      res?.body.destroy();
    }
  }

  /** Closes the connection pools. */
  /** Closes the connection pools; calling it again does nothing. */
  async close(): Promise<void> {
    if (this.#api.pool.closed) return;
    await Promise.all([
      this.#api.pool.close(),
      this.#archive === this.#api ? undefined : this.#archive.pool.close(),
    ]);
  }

  /** Whether the admin API's stream list answers at the configured base URL (after a 404). */
  async #adminApiAnswers(what: string): Promise<boolean> {
    if (what === "stream list") return false;
    try {
      const res = await this.#request(this.#api, `${API}/streams?limit=1`, "stream list", undefined, {
        accept: "application/json",
      });
      await res.body.dump().catch(() => undefined);
      return res.statusCode !== 404;
    } catch {
      // Unreachable now: say what the first answer said.
      return true;
    }
  }

  async #getJson<T>(
    ep: Endpoint,
    path: string,
    shape: z.ZodType<T>,
    what: string,
    kind: "api" | "playback" = "api",
  ): Promise<T> {
    // JSON asked for by name: paths/stream/streams.yml also offers OpenMetrics and text, and a
    // router may read `*/*` as "any of them".
    const res = await this.#request(ep, path, what, undefined, { accept: "application/json" });
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => undefined);
      if (res.statusCode === 404) {
        // A 404 from the admin API either names a stream the source does not have, or a base URL
        // where no Flussonic admin API answers (a path such as /flussonic appended to `url`): the
        // stream list tells them apart (itself, or one more request only after such a failure).
        if (kind === "api" && !(await this.#adminApiAnswers(what))) {
          throw new SetupError(
            `source ${this.sourceName}: ${what}: HTTP 404, no Flussonic admin API at ${ep.origin}${ep.basePath}${API} (the base URL is wrong)`,
          );
        }
        throw new SetupError(`source ${this.sourceName}: ${what}: HTTP 404, unknown to the source`);
      }
      throw this.#statusError(res.statusCode, res.headers, what, kind);
    }
    let text: string;
    try {
      text = await res.body.text();
    } catch (error) {
      throw this.#networkError(error, what);
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      throw new MalformedAnswerError(
        `source ${this.sourceName}: ${what}: answer is not JSON (starts with ${JSON.stringify(text.slice(0, 40))})`,
      );
    }
    const parsed = shape.safeParse(data);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const at = issue?.path.length ? issue.path.map(String).join(".") : "(top level)";
      throw new MalformedAnswerError(
        `source ${this.sourceName}: ${what}: unexpected answer shape at ${at}: ${issue?.message ?? "invalid"}`,
      );
    }
    return parsed.data;
  }

  async #request(
    ep: Endpoint,
    path: string,
    what: string,
    signal?: AbortSignal,
    extra: Record<string, string> = {},
  ): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = { accept: "*/*", "user-agent": "flussonic-backup", ...extra };
    let fullPath = ep.basePath + path;
    const c = this.#credentials;
    if (c.type === "basic") {
      headers.authorization = `Basic ${Buffer.from(`${c.username}:${c.password.reveal()}`).toString("base64")}`;
    } else if (c.type === "bearer") {
      headers.authorization = `Bearer ${c.token.reveal()}`;
    } else if (c.type === "token") {
      fullPath += `${fullPath.includes("?") ? "&" : "?"}token=${encodeURIComponent(c.token.reveal())}`;
    }
    try {
      return await ep.pool.request({ method: "GET", path: fullPath, headers, signal: signal ?? null });
    } catch (error) {
      throw this.#networkError(error, what);
    }
  }

  #statusError(
    status: number,
    headers: Record<string, string | string[] | undefined>,
    what: string,
    kind: "api" | "playback",
  ): BackupError {
    const where = `source ${this.sourceName}: ${what}: HTTP ${status}`;
    const auth = this.#credentials.type;
    if (status === 403 && kind === "playback" && (auth === "basic" || auth === "bearer")) {
      // The admin login (edit_auth) is what the spec describes for the admin API; a stream
      // protected by play auth (view_auth, an auth backend) may refuse it on playback URLs.
      return new SetupError(
        `${where}, refused by the stream's play auth (view_auth or an auth backend), which the admin login (auth.type "${auth}") does not pass: give this source a play token (auth.type "token") or let the backup's address through the play auth`,
      );
    }
    if (status === 403 && kind === "playback" && auth === "token") {
      return new SetupError(
        `${where}, the play token was refused by the stream's play auth: check the source's auth.tokenEnv / auth.tokenSecret`,
      );
    }
    if (status === 401 || status === 403) {
      return new SetupError(`${where}, access refused: check the source's auth settings and secret`);
    }
    if (status === 429 || status >= 500) {
      const retryAfterSeconds = parseRetryAfter(headers["retry-after"]);
      return new RetryableError(
        `${where}${retryAfterSeconds === undefined ? "" : `, retry after ${retryAfterSeconds}s`}`,
        {
          status,
          retryAfterSeconds,
        },
      );
    }
    return new SetupError(`${where}, request refused`);
  }

  #networkError(error: unknown, what: string): BackupError {
    if (error instanceof BackupError) return error;
    if (error instanceof Error && error.name === "AbortError") {
      return new RetryableError(`source ${this.sourceName}: ${what}: aborted`, { cause: error });
    }
    return new RetryableError(`source ${this.sourceName}: ${what}: ${describeNetworkError(error)}`, {
      cause: error,
    });
  }
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

interface Endpoint {
  pool: Pool;
  /** Scheme, host and port of the configured URL (never its user info). */
  origin: string;
  /** Path prefix of the configured URL (a reverse proxy may serve Flussonic under a folder). */
  basePath: string;
}

function endpoint(url: string, options: Pool.Options): Endpoint {
  const u = new URL(url);
  return { pool: new Pool(u.origin, options), origin: u.origin, basePath: u.pathname.replace(/\/+$/, "") };
}

/** A stream name as a playback path prefix: `/` kept, every segment percent-encoded. */
export function streamPath(name: string): string {
  return name.split("/").map(encodeURIComponent).join("/");
}

/**
 * A recorded range in whole seconds: the start rounded down (the window from that second holds the
 * part recorded), the end rounded down too, so a range closed at x.4 s ends at x: the planner never
 * counts second x as copied while it is only partly recorded. If the range goes on, the next window
 * starts at x and holds that second whole; if it stays closed, less than a second at its end is not
 * copied. Ranges split inside a second still touch and merge.
 */
function wholeSeconds(from: number, to: number): ArchiveRange {
  return { from: Math.floor(from), to: Math.floor(to) };
}

function toDvrStream(stream: z.infer<typeof streamShape>): DvrStream {
  const info = stream.stats?.dvr_info;
  const bytes = info?.bytes ?? undefined;
  const duration = info?.duration ?? undefined;
  return {
    name: stream.name,
    bitrateBps: bytes && duration && duration > 0 ? Math.round((bytes * 8) / duration) : undefined,
    ...dvrDepthOf(stream),
  };
}

/** `Retry-After` in seconds: delta-seconds or an HTTP date. */
export function parseRetryAfter(
  value: string | string[] | undefined,
  nowMs = Date.now(),
): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === "") return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim());
  const date = Date.parse(v);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - nowMs) / 1000));
}

function describeNetworkError(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  if (error instanceof undiciErrors.ConnectTimeoutError) return "connect timeout";
  if (error instanceof undiciErrors.HeadersTimeoutError)
    return "no response headers in time (headers timeout)";
  if (error instanceof undiciErrors.BodyTimeoutError) return "body stalled (idle timeout)";
  if (code === "ECONNREFUSED") return "connection refused (ECONNREFUSED)";
  if (code === "ECONNRESET") return "connection reset (ECONNRESET)";
  if (code === "ENOTFOUND") return "host not found (ENOTFOUND)";
  const message = error instanceof Error ? error.message : String(error);
  return typeof code === "string" ? `${message} (${code})` : message;
}
