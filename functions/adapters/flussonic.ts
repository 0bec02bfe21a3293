/**
 * The Flussonic adapter: lists DVR streams, reads a stream's recorded ranges and opens archive
 * windows as byte streams. Translates every HTTP failure into the BackupError hierarchy.
 * One undici pool per origin of a source, shared by all calls.
 */
import type { Readable } from "node:stream";
import { Pool, errors as undiciErrors } from "undici";
import { z } from "zod";
import type { ArchiveFormat, SourceConfig, SourceCredentials } from "../config.ts";
import {
  BackupError,
  ConfigurationError,
  MalformedAnswerError,
  RetryableError,
  WindowGoneError,
} from "../domain/errors.ts";
import { type ArchiveRange, clipRanges, normalizeRanges } from "../domain/ranges.ts";

const API = "/streamer/api/v3";
const PAGE_LIMIT = 500;
/** A stream or range list longer than this many pages is refused as a broken cursor loop. */
const MAX_PAGES = 10_000;

/** What the backup needs to know of one stream with a DVR archive. */
export interface DvrStream {
  name: string;
  /** Average archive bitrate (bits per second) when the server reports bytes and duration. */
  bitrateBps: number | undefined;
}

/** An archive window opened for reading. The caller must consume or destroy `body`. */
export interface ArchiveBody {
  body: Readable;
  /** Bytes promised by the server, when it sent Content-Length. */
  contentLength: number | undefined;
}

export interface FlussonicClientOptions {
  /** Extra connections kept per origin (default: enough for the source's copy cap plus index calls). */
  connections?: number;
}

// Shapes: only what we use is checked; everything else may change between Flussonic releases.
const dvrInfoShape = z.looseObject({
  from: z.number().nullish(),
  depth: z.number().nullish(),
  duration: z.number().nullish(),
  bytes: z.number().nullish(),
});
const streamShape = z.looseObject({
  name: z.string(),
  dvr: z.looseObject({}).nullish(),
  stats: z.looseObject({ dvr_info: dvrInfoShape.nullish() }).nullish(),
});
const streamListShape = z.looseObject({
  streams: z.array(streamShape),
  next: z.string().nullish(),
});
/** Both field generations: `{from, duration}` in seconds (older) or `{opened_at, closed_at}` in ms. */
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
const recordingStatusShape = z.array(
  z.looseObject({
    stream: z.string().optional(),
    ranges: z.array(z.looseObject({ from: z.number(), duration: z.number().nonnegative() })),
  }),
);

/** Client of one Flussonic source. */
export class FlussonicClient {
  readonly sourceName: string;
  readonly #api: Endpoint;
  readonly #archive: Endpoint;
  readonly #credentials: SourceCredentials;
  readonly #indexMode: "api" | "playback";

  constructor(source: SourceConfig, credentials: SourceCredentials, options: FlussonicClientOptions = {}) {
    this.sourceName = source.name;
    this.#credentials = credentials;
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
  }

  /** Every stream of the source that has a DVR archive (admin API, all pages). */
  async listDvrStreams(): Promise<DvrStream[]> {
    const out: DvrStream[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const query = new URLSearchParams({ limit: String(PAGE_LIMIT) });
      if (cursor) query.set("cursor", cursor);
      const body = await this.#getJson(this.#api, `${API}/streams?${query}`, streamListShape, "stream list");
      for (const stream of body.streams) {
        if (stream.dvr || stream.stats?.dvr_info) out.push(toDvrStream(stream));
      }
      if (!body.next) return out;
      cursor = body.next;
    }
    throw new MalformedAnswerError(
      `source ${this.sourceName}: stream list did not end after ${MAX_PAGES} pages`,
    );
  }

  /** One stream's DVR facts; ConfigurationError when the source does not know the stream. */
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
      for (const r of body.ranges) {
        if (r.opened_at !== undefined) {
          // Milliseconds to whole seconds: see wholeSeconds. No closed_at: the range is still
          // recording, it ends now (the span's end).
          const closed = r.closed_at ?? span.to * 1000;
          out.push(wholeSeconds(r.opened_at / 1000, closed / 1000));
        } else if (r.from !== undefined && r.duration !== undefined) {
          out.push(wholeSeconds(r.from, r.from + r.duration));
        }
      }
      if (!body.next) return out;
      cursor = body.next;
    }
    throw new MalformedAnswerError(
      `source ${this.sourceName}: ranges of "${name}" did not end after ${MAX_PAGES} pages`,
    );
  }

  async #playbackRanges(name: string, span: { from: number; to: number }): Promise<ArchiveRange[]> {
    const query = new URLSearchParams({ from: String(span.from), to: String(span.to), request: "ranges" });
    const body = await this.#getJson(
      this.#api,
      `/${streamPath(name)}/recording_status.json?${query}`,
      recordingStatusShape,
      `recording status of stream "${name}"`,
    );
    const entry = body.find((e) => e.stream === undefined || e.stream === name) ?? body[0];
    return (entry?.ranges ?? []).map((r) => wholeSeconds(r.from, r.from + r.duration));
  }

  /**
   * Opens `[from, from + duration)` of a stream as a byte stream (fragmented MP4 or MPEG-TS), never
   * buffered. 404 means retention already deleted the window (WindowGoneError).
   */
  async openWindow(
    name: string,
    from: number,
    duration: number,
    format: ArchiveFormat,
    signal?: AbortSignal,
  ): Promise<ArchiveBody> {
    const path = `/${streamPath(name)}/archive-${from}-${duration}.${format}`;
    const what = `archive window ${from}-${duration} of stream "${name}"`;
    const res = await this.#request(this.#archive, path, what, signal);
    if (res.statusCode === 200) {
      const length = Number(res.headers["content-length"]);
      return { body: res.body, contentLength: Number.isFinite(length) ? length : undefined };
    }
    await res.body.dump().catch(() => undefined);
    if (res.statusCode === 404) {
      throw new WindowGoneError(
        `source ${this.sourceName}: ${what}: HTTP 404, no longer on the source (retention)`,
      );
    }
    throw this.#statusError(res.statusCode, res.headers, what);
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

  async #getJson<T>(ep: Endpoint, path: string, shape: z.ZodType<T>, what: string): Promise<T> {
    const res = await this.#request(ep, path, what);
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => undefined);
      if (res.statusCode === 404) {
        throw new ConfigurationError(`source ${this.sourceName}: ${what}: HTTP 404, unknown to the source`);
      }
      throw this.#statusError(res.statusCode, res.headers, what);
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

  async #request(ep: Endpoint, path: string, what: string, signal?: AbortSignal) {
    const headers: Record<string, string> = { accept: "*/*", "user-agent": "flussonic-backup" };
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
  ): BackupError {
    const where = `source ${this.sourceName}: ${what}: HTTP ${status}`;
    if (status === 401 || status === 403) {
      return new ConfigurationError(`${where}, access refused: check the source's auth settings and secret`);
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
    return new ConfigurationError(`${where}, request refused`);
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

interface Endpoint {
  pool: Pool;
  /** Path prefix of the configured URL (a reverse proxy may serve Flussonic under a folder). */
  basePath: string;
}

function endpoint(url: string, options: Pool.Options): Endpoint {
  const u = new URL(url);
  return { pool: new Pool(u.origin, options), basePath: u.pathname.replace(/\/+$/, "") };
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
