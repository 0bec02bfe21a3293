/**
 * What the playback handler sees and answers (an HTTP request and response, already parsed by
 * the server in front of it) and what it needs from the outside (`PlaybackDeps`).
 */
import type { BackupConfig } from "../config/config.ts";
import type { ByteRange, FragmentIndexReader } from "../domain/fragment-index.ts";
import type { ImageSize } from "../domain/thumbnails.ts";

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

/** Who asks for a media URL: the playback request's source, stream and token. */
export interface MediaAccess {
  source: string;
  stream: string;
  token?: string | undefined;
}

/** What the handler needs from the outside. Nothing in it is local-only. */
export interface PlaybackDeps {
  /** The parsed configuration: sources, their streams and retention. */
  config: BackupConfig;
  /** The fragment index (functions/store/fragment-index-store.ts over S3, or in memory in tests). */
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
   * `access` is the request's source, stream and token (a local media route may check the token;
   * a presigned URL ignores it). Never log the token.
   */
  mediaUrl(key: string, access?: MediaAccess): string | Promise<string>;
  /** Unix milliseconds now (injected so tests drive time-shift playlists with their own clock). */
  now(): number;
  /**
   * HMAC keys that sign playback tokens, current first then previous ones (rotation): a token
   * signed with any of them is accepted, new ones are signed with the first. `undefined` turns
   * token checks off (only `serve --no-auth` on a loopback host does that).
   */
  tokenKeys: readonly string[] | undefined;
  /**
   * Decodes the first video frame of an MP4 (an init and one fragment) to a JPEG of `size`
   * (frame-decoder.ts: ffmpeg). Absent: the JPEG URLs answer 501 and point to the MP4 preview.
   */
  decodeJpeg?: ((mp4: AsyncIterable<Uint8Array>, size: ImageSize) => Promise<Uint8Array>) | undefined;
  /**
   * Images already decoded, by key frame and size (S3 `.backup/previews/`, keys.ts `previewKey`):
   * read before decoding, written after. Absent: every JPEG is decoded.
   */
  imageCache?: ImageCache | undefined;
  /** Path prefix the handler is mounted under, e.g. "/play" ("" by default). */
  basePath?: string;
}

/** Where decoded key frames are kept (`ms`: the key frame's unix milliseconds). */
export interface ImageCache {
  get(source: string, stream: string, ms: number, size: ImageSize): Promise<Uint8Array | undefined>;
  put(source: string, stream: string, ms: number, size: ImageSize, jpeg: Uint8Array): Promise<void>;
}
