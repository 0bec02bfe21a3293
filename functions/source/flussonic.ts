/**
 * The Flussonic client: lists DVR streams, reads a stream's recorded ranges and opens archive
 * windows as byte streams, translating every HTTP failure into the BackupError hierarchy. One
 * undici pool per origin of a source, shared by all calls. Its parts, each in its own file:
 * flussonic-api.ts (requests with auth, the stream list), flussonic-index.ts (the two index
 * modes), archive-reads.ts (paced and sliced reads with resume), flussonic-errors.ts (error mapping).
 */
import type { ArchiveFormat, SourceConfig, SourceCredentials } from "../config/config.ts";
import type { BackupError } from "../domain/errors.ts";
import { type ArchiveRange, clipRanges, normalizeRanges } from "../domain/ranges.ts";
import { type ArchiveBody, ArchiveReader, type WindowPacing } from "./archive-reads.ts";
import { type SourceEpisode, urlEpisodes } from "./episodes.ts";
import {
  type DvrStream,
  dvrStream,
  type Endpoint,
  endpoint,
  FlussonicApi,
  listDvrStreams,
} from "./flussonic-api.ts";
import { apiRanges, type IndexMode, playbackRanges } from "./flussonic-index.ts";

// What callers imported from here before the client was split keeps working.
export {
  type ArchiveBody,
  parseContentRange,
  RECEIVE_WINDOW_BYTES,
  SLICE_SECONDS,
  type SourceReads,
  sliceBytes,
  type WindowPacing,
} from "./archive-reads.ts";
export { type DvrStream, STREAM_LIST_SELECT, streamPath } from "./flussonic-api.ts";
export { parseRetryAfter } from "./flussonic-errors.ts";
export { rangeListRanges, recordingStatusRanges } from "./flussonic-index.ts";

export interface FlussonicClientOptions {
  /** Extra connections kept per origin (default: enough for the source's copy cap plus index calls). */
  connections?: number;
}

/** What the planner, the copier and status ask of a source (one server, or a fleet behind Central). */
export interface ArchiveSource {
  readonly sourceName: string;
  /** Every stream of the source that has a DVR archive. */
  listDvrStreams(): Promise<DvrStream[]>;
  /** One stream's DVR facts; SetupError when the source does not know the stream. */
  dvrStream(name: string): Promise<DvrStream>;
  /** Recorded ranges of a stream in `[span.from, span.to)`, unix seconds, sorted and merged. */
  recordedRanges(name: string, span: { from: number; to: number }): Promise<ArchiveRange[]>;
  /** Opens an archive window as a byte stream: see FlussonicClient.openWindow. */
  openWindow(
    name: string,
    from: number,
    duration: number,
    format: ArchiveFormat,
    signal?: AbortSignal,
    pacing?: WindowPacing,
  ): Promise<ArchiveBody>;
  /** Closes the connection pools; calling it again does nothing. */
  close(): Promise<void>;
  /**
   * Parts of the source the last listDvrStreams could not list (a server Central lists whose
   * stream list failed): their streams are not gone, only unknown this time.
   */
  listingGaps?(): ListingGap[];
  /**
   * The episodes of `streams` (source.episodes: Central's episode list or the episodes URL);
   * absent or rejecting: episodes cannot be read now.
   */
  listEpisodes?(streams: readonly string[]): Promise<SourceEpisode[]>;
}

/** A server Central lists that the backup could not list the streams of this time. */
export interface ListingGap {
  /** The server's hostname; its streams are `<hostname>/...`. */
  server: string;
  error: BackupError;
}

/** Client of one Flussonic source. */
export class FlussonicClient implements ArchiveSource {
  readonly sourceName: string;
  readonly #http: FlussonicApi;
  readonly #api: Endpoint;
  readonly #archive: Endpoint;
  readonly #indexMode: IndexMode;
  readonly #reads: ArchiveReader;
  readonly #episodes: Endpoint | undefined;

  constructor(source: SourceConfig, credentials: SourceCredentials, options: FlussonicClientOptions = {}) {
    this.sourceName = source.name;
    this.#http = new FlussonicApi(source.name, credentials);
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
    this.#episodes = source.episodes?.url
      ? endpoint(source.episodes.url, { ...poolOptions, connections: 4 })
      : undefined;
    this.#reads = new ArchiveReader({
      api: this.#http,
      archive: this.#archive,
      archiveField: source.archiveUrl ? "archiveUrl" : "url",
      copies: Math.max(1, source.maxConcurrentCopies),
      dvrStream: (name) => this.dvrStream(name),
      recordedRanges: (name, span) => this.recordedRanges(name, span),
    });
  }

  /** Every stream of the source that has a DVR archive (admin API, all pages). */
  listDvrStreams(): Promise<DvrStream[]> {
    return listDvrStreams(this.#http, this.#api);
  }

  /** One stream's DVR facts; SetupError when the source does not know the stream. */
  async dvrStream(name: string): Promise<DvrStream> {
    if (this.#indexMode === "playback") return { name, bitrateBps: undefined };
    return dvrStream(this.#http, this.#api, name);
  }

  /**
   * Recorded ranges of a stream overlapping `[span.from, span.to)`, in unix seconds, half-open,
   * sorted and merged, clipped to the span. An open (still recording) last range ends at `span.to`.
   */
  async recordedRanges(name: string, span: { from: number; to: number }): Promise<ArchiveRange[]> {
    const ranges =
      this.#indexMode === "api"
        ? await apiRanges(this.#http, this.#api, name, span)
        : await playbackRanges(this.#http, this.#api, name, span);
    return clipRanges(normalizeRanges(ranges), span.from, span.to);
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
   *   send (see `paced` in archive-reads.ts), and what a shorter body did not use is refunded. The expected size comes
   *   from `expectedBytes`, else the stream's last window, else the server's stream info.
   *   Large payments are made in slices, so that the other copies sharing the throttle go on.
   *   Windows smaller than the kernels' buffers still arrive in one burst each: the planner keeps
   *   them short for such sources (windowLengthFor).
   * What the source answered is remembered for the next windows.
   */
  openWindow(
    name: string,
    from: number,
    duration: number,
    format: ArchiveFormat,
    signal?: AbortSignal,
    pacing?: WindowPacing,
  ): Promise<ArchiveBody> {
    return this.#reads.openWindow(name, from, duration, format, signal, pacing);
  }

  /** Closes the connection pools; calling it again does nothing. */
  /** The episodes of `streams` from the configured episodes URL (none configured: none). */
  async listEpisodes(streams: readonly string[]): Promise<SourceEpisode[]> {
    return this.#episodes ? urlEpisodes(this.#http, this.#episodes, streams) : [];
  }

  async close(): Promise<void> {
    if (this.#api.pool.closed) return;
    await Promise.all([
      this.#api.pool.close(),
      this.#archive === this.#api ? undefined : this.#archive.pool.close(),
      this.#episodes?.pool.close(),
    ]);
  }
}
