/**
 * The playback handler (issue 11 §2): answers Flussonic's DVR playback URLs from the backup.
 * Pure request in, response out: S3 reads, URL signing, the clock and the token keys are
 * injected, so the same handler runs behind `flussonic-backup serve` and, later, in AWS.
 *
 * Routes, relative to where the handler is mounted (`basePath`, default ""):
 *   /{source}/{stream...}/{file}   (stream names may contain "/"; the file is the last segment)
 * Files: index-{from}-{dur}.m3u8, archive-{from}-{dur}.m3u8 (and .fmp4.m3u8), timeshift_rel-{s}.m3u8,
 * timeshift_abs-{from}.m3u8, archive-{from}-{dur}.mp4, recording_status.json, ranges.json.
 */
import type { BackupConfig } from "../config.ts";
import type { ByteRange, FragmentIndexReader } from "../domain/fragment-index.ts";

/** An HTTP request as the handler sees it (the server parses the URL). */
export interface PlaybackRequest {
  /** "GET", "HEAD", … (HEAD is answered like GET without a body). */
  method: string;
  /** URL path, percent-encoded as received, without the query, e.g. "/streamer1/cam1/index-1700000000-600.m3u8". */
  path: string;
  /** Query parameters (first value of each), e.g. { token: "…" }. */
  query: Record<string, string | undefined>;
  /** Request headers, lower-case names. */
  headers: Record<string, string | undefined>;
}

/** The handler's answer; `body` undefined for HEAD, redirects and empty answers. */
export interface PlaybackResponse {
  status: number;
  /** Header names as sent ("Content-Type", "Location", "Cache-Control", …). */
  headers: Record<string, string>;
  body: string | Uint8Array | AsyncIterable<Uint8Array> | undefined;
}

export type PlaybackHandler = (req: PlaybackRequest) => Promise<PlaybackResponse>;

/** What the handler needs from the outside. Nothing in it is local-only. */
export interface PlaybackDeps {
  /** The parsed configuration: sources, their streams and retention. */
  config: BackupConfig;
  /** The fragment index (functions/adapters/fragment-index-store.ts over S3, or in memory in tests). */
  index: FragmentIndexReader;
  /**
   * Bytes of a stored object (a window's S3 key), the whole object or one byte range: a ranged
   * GetObject body, read as a stream (used by `archive-….mp4`).
   */
  readObject(key: string, range?: ByteRange): Promise<AsyncIterable<Uint8Array>>;
  /**
   * The URI a player fetches a stored object from (a window's S3 key): a presigned S3 GET URL, or
   * a URL of the local server's media route that honours `Range`. Playlists address pieces of it
   * with EXT-X-BYTERANGE / MAP BYTERANGE, so it is called once per window, not per segment.
   */
  mediaUrl(key: string): string | Promise<string>;
  /** Unix milliseconds now (injected so tests drive time-shift playlists with their own clock). */
  now(): number;
  /**
   * HMAC keys that sign playback tokens, current first then previous ones (rotation): a token
   * signed with any of them is accepted, new ones are signed with the first. `undefined` turns
   * token checks off (only `serve --no-auth` on a loopback host does that).
   */
  tokenKeys: readonly string[] | undefined;
  /** Path prefix the handler is mounted under, e.g. "/play" ("" by default). */
  basePath?: string;
}

/** The playback handler. Stub: every request is answered 501 until the handler lands. */
export function createPlaybackHandler(_deps: PlaybackDeps): PlaybackHandler {
  return async () => ({
    status: 501,
    headers: { "Content-Type": "text/plain; charset=utf-8" },
    body: "playback is not implemented yet\n",
  });
}
