/**
 * A Flussonic Media Server stand-in for development, tests, the demo and benchmarks. It serves
 * the endpoints the backup relies on (see docs/design.md, "Flussonic endpoints") from a deterministic
 * simulated archive, measures what a real source would feel (concurrent downloads, bytes per
 * second) and injects the faults a real one shows (errors, Retry-After, slow, cut and stalled
 * bodies, resets, refused connections, broken index answers, 401 after a password change).
 */
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { TimeRange } from "../functions/domain/ranges.ts";
import {
  generateStreams,
  prng,
  recordedAt,
  recordedSeconds,
  type SimStream,
  type SimStreamSpec,
  toSimStream,
} from "./archive-model.ts";
import { type SimFormat, variantChunk, windowBytes, windowChunks } from "./content.ts";
import { DownloadMeter } from "./meter.ts";
import { loadRealMedia, type RealMedia, realWindowBytes, realWindowChunks } from "./real-media.ts";

export interface SimAuth {
  /** Admin API login (`edit_auth`). */
  basic?: { username: string; password: string };
  /** Admin API bearer token. */
  bearer?: string;
  /** Play token accepted as `?token=` on playback URLs. */
  playToken?: string;
  /**
   * Play auth (view_auth or an auth backend) on playback URLs (exports, recording_status.json):
   * then only the play token opens them, and an admin login (Basic/Bearer) gets 403, as a stream
   * protected by play auth may answer. Default false: the admin login opens playback URLs too.
   */
  playAuth?: boolean;
}

export interface SimFaults {
  /** Which requests the faults hit: archive downloads (default), index calls, or all. */
  target?: "archive" | "index" | "all";
  /** Fraction of targeted requests answered with `errorStatus`. */
  errorRate?: number;
  /** The next N targeted requests are answered with `errorStatus`. */
  failNext?: number;
  /** Status of injected errors (default 503). */
  errorStatus?: number;
  /** `Retry-After` seconds sent with injected errors. */
  retryAfterSeconds?: number;
  /** Delay before the response headers. */
  latencyMs?: number;
  /** Body pace in bytes per second (a slow source). */
  bodyBytesPerSecond?: number;
  /** Fraction of archive downloads hit by the body faults below (default 1). */
  bodyFaultRate?: number;
  /** Only the next N archive downloads are hit by the body faults below (overrides the rate). */
  bodyFaultNext?: number;
  /** Destroys the connection after this many body bytes. */
  resetAfterBytes?: number;
  /** Ends the body early, cleanly, after this many bytes. */
  truncateAfterBytes?: number;
  /**
   * Ends the body early, cleanly, after this many whole fragments (MP4: the init segment and N
   * `moof`+`mdat` pairs; MPEG-TS: N seconds of whole packets): framing is intact, only the media
   * stops short, as an export that stops early does. Without Content-Length (the default) nothing
   * but the media time shows it.
   */
  truncateAfterFragments?: number;
  /** Stops sending after this many bytes and keeps the connection open. */
  stallAfterBytes?: number;
  /** Broken index answers: invalid JSON, or valid JSON of the wrong shape. */
  indexFault?: "bad-json" | "wrong-shape";
  /** The episodes URL (and Central's episode list) answers 503, invalid JSON, or the wrong shape. */
  episodesFault?: "error" | "bad-json" | "wrong-shape";
}

/**
 * An episode (components/schemas/episodes/episode_base.yml in flussonic/openapi-demo): times in
 * ms, `closed_at` absent while it is open.
 */
export interface SimEpisode {
  episode_id: number;
  /** The stream's name on this server. */
  media: string;
  opened_at: number;
  updated_at: number;
  closed_at?: number;
}

/** Where the simulator serves an episodes URL (paths/config/external-episodes.yml). */
export const EPISODES_PATH = "/config-external/episodes";

export interface SimulatorOptions {
  port?: number;
  host?: string;
  /** A number of generated streams (`cam1`...), or explicit streams. Default 3. */
  streams?: number | SimStreamSpec[];
  /** Archive depth of generated streams and default source retention, in days (default 1). */
  days?: number;
  /** Average bitrate of generated streams (default 64 kbit/s). */
  bitrateBps?: number;
  seed?: number;
  /** The clock, unix seconds (default: the real time). */
  now?: () => number;
  auth?: SimAuth;
  /**
   * Range fields of the admin API's dvr/ranges: `{from, duration}` in seconds (the OpenAPI's
   * dvr_range, default), `{opened_at, closed_at}` in milliseconds only, or both at once (newer servers).
   */
  rangeFields?: "seconds" | "milliseconds" | "both";
  /** Closed ranges leave out `closed_at` (a server that sends it on none): only `from`/`duration` tell their end. */
  omitClosedAt?: boolean;
  /**
   * Answer shapes: `spec` (default) as the OpenAPI says (recording_status.json one `dvr_info`
   * object, no query parameters; error bodies `{errors: [{status, title}]}`; TS exports
   * `video/mpeg`; `dvr.dvr_replicate`), or `docs`: the older documentation pages' shapes
   * (recording_status.json an array honouring `from`/`to`; `{error}` bodies; `video/mp2t`; `dvr.replicate`).
   */
  shape?: "spec" | "docs";
  /**
   * Whether recording_status.json's dvr_info holds `ranges` (default true). Newer servers may not:
   * the description the `flussonic/go-flussonic` SDK is generated from marks `dvr_info.ranges`
   * deprecated ("replaced with ranges_list", to be deleted at 24.09). Then `ranges.json` (what
   * Flussonic's DVR player asks, `closed_at_gte`/`opened_at_lte` in ms) answers the ranges.
   */
  recordingStatusRanges?: boolean;
  /** Streams of other servers in the stream list (`named_by: remote`, with DVR info of the peer's archive). Default 0. */
  remoteStreams?: number;
  /**
   * What a stream list asked with `Accept: *\/*` gets: JSON (default) or, as a router that reads
   * `*\/*` as "any" may pick, the OpenMetrics text the endpoint also offers.
   */
  anyAccept?: "json" | "openmetrics";
  /** Largest page the list endpoints return, whatever `limit` asks (default: no cap, `limit` honoured; 100 without `limit`). */
  pageSize?: number;
  /** Streams without a DVR archive added to the list (default 1). */
  liveOnlyStreams?: number;
  /** Send Content-Length with archive bodies (default false: chunked, as Flussonic's is unknown). */
  sendContentLength?: boolean;
  faults?: SimFaults;
  /**
   * Archive content: `synthetic` (default) box- and packet-shaped bytes that are cheap at any
   * bitrate but not decodable; `real`: a real H.264/AAC clip generated once with ffmpeg (see
   * real-media.ts), one second per fragment, for checks with ffprobe. Real media ignores the bitrate.
   */
  media?: "synthetic" | "real";
  /**
   * Bodies differ per request, as from a source that re-muxes each export: a `free` box after the
   * MP4 init segment (a null packet first in MPEG-TS) holding a request counter. Same size every
   * time; `body()` then gives the bytes of variant 0, which no request serves.
   */
  varyBytesPerRequest?: boolean;
  /**
   * Answer `Range: bytes=a-b` on archive windows with 206, `Content-Range` and `Accept-Ranges:
   * bytes` (default false: whether Flussonic does on archive-*.mp4 is unknown). Each export has an
   * ETag (per request with `varyBytesPerRequest`, whose bytes differ); `If-Range` with another
   * ETag gets the whole new export (200), as HTTP says.
   */
  ranges?: boolean | { etag?: boolean };
  /** Closes a connection when a write has waited this long for the client to read (a send timeout). */
  sendTimeoutMs?: number;
  /** Closes kept-alive connections idle for this long (default 5000 ms). */
  keepAliveTimeoutMs?: number;
}

export interface SimRequest {
  method: string;
  /** Path and query, with any `token=` value redacted. */
  path: string;
  status: number;
  kind: "archive" | "index" | "other";
  /** When the request arrived and when its response ended (performance.now() ms). */
  startedAt: number;
  endedAt: number;
}

/** Playlists of the archive (real media only): VOD ranges and the delayed live form. */
const HLS_PLAYLIST = /^\/(.+)\/(?:(?:index|archive)-(\d+)-(\d+)|timeshift_rel-(\d+))(?:\.fmp4)?\.m3u8$/;
/** A segment of those playlists: its start (UTC) and length in ms, as Flussonic names them. */
const HLS_SEGMENT = /^\/(.+)\/(\d{4})\/(\d\d)\/(\d\d)\/(\d\d)\/(\d\d)\/(\d\d)-(\d{5})\.m4s$/;
const HLS_SEGMENT_SECONDS = 6;
const API = "/streamer/api/v3";

export class FlussonicSimulator {
  readonly meter = new DownloadMeter();
  readonly requests: SimRequest[] = [];
  /** Requests received and not answered yet (tests: a planner run is under way now). */
  inFlight = 0;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #streams = new Map<string, SimStream>();
  readonly #options: SimulatorOptions;
  readonly #now: () => number;
  readonly #random: () => number;
  #auth: SimAuth;
  #faults: SimFaults;
  #port = 0;
  #host: string;
  #realMedia: RealMedia | undefined;
  #variant = 0;
  #episodes: SimEpisode[] = [];
  /** Streams served from another server (`named_by: remote`): listed, not recorded here. */
  readonly #remote = new Set<string>();

  private constructor(options: SimulatorOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000));
    this.#random = prng((options.seed ?? 1) ^ 0x5eed);
    this.#auth = options.auth ?? {};
    this.#faults = options.faults ?? {};
    this.#host = options.host ?? "127.0.0.1";
    const days = options.days ?? 1;
    const now = this.#now();
    const specs =
      typeof options.streams === "object"
        ? options.streams
        : generateStreams(options.streams ?? 3, days, now, options.seed ?? 1, options.bitrateBps);
    for (const spec of specs) this.#streams.set(spec.name, toSimStream(spec, days, now));
    for (let i = 1; i <= (options.liveOnlyStreams ?? 1); i++) {
      const name = `live-only-${i}`;
      this.#streams.set(name, toSimStream({ name, dvr: false }, days, now));
    }
    for (let i = 1; i <= (options.remoteStreams ?? 0); i++) {
      const name = `peer-cam${i}`;
      const spec = { name, ranges: [{ from: now - 3600, to: Number.POSITIVE_INFINITY }] };
      this.#remote.add(name);
      this.#streams.set(name, toSimStream(spec, days, now));
    }
    this.#server = createServer({ keepAliveTimeout: options.keepAliveTimeoutMs ?? 5000 }, (req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) this.#error(res, 500, String(error));
        else res.destroy();
      });
    });
    this.#server.on("connection", (socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
    });
  }

  static async start(options: SimulatorOptions = {}): Promise<FlussonicSimulator> {
    const sim = new FlussonicSimulator(options);
    if (options.media === "real") sim.#realMedia = await loadRealMedia();
    await sim.#listen(options.port ?? 0);
    return sim;
  }

  get url(): string {
    return `http://${this.#host}:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  /** Every stream with a DVR archive on this server (remote streams are not). */
  streams(): SimStream[] {
    return [...this.#streams.values()].filter((s) => s.dvr && !this.#remote.has(s.name));
  }

  /**
   * The streams as a Flussonic Central holds them for this server (`/streamers/{hostname}/streams`:
   * stream_config `name` and `dvr`, no runtime `stats`); remote streams are not this server's.
   */
  streamConfigs(): Record<string, unknown>[] {
    return [...this.#streams.values()]
      .filter((s) => !this.#remote.has(s.name))
      .map((s) => {
        const { stats: _stats, ...config } = this.#streamEntry(s);
        return config;
      });
  }

  /** What a stream has recorded now (whole seconds, within its depth). */
  rangesOf(name: string): TimeRange[] {
    return recordedAt(this.#stream(name), this.#now()).ranges;
  }

  /** The exact bytes the simulator serves for a window (what a correct backup must hold). */
  body(name: string, from: number, duration: number, format: SimFormat): Buffer {
    const stream = this.#stream(name);
    const seconds = recordedSeconds(stream, this.#now(), from, duration);
    return Buffer.concat([...this.#windowChunks(stream, seconds, format, 0)]);
  }

  *#windowChunks(s: SimStream, seconds: TimeRange[], format: SimFormat, variant: number): Iterable<Buffer> {
    const chunks = this.#realMedia
      ? realWindowChunks(this.#realMedia, seconds, format)
      : windowChunks(s.name, s.bitrateBps, seconds, format);
    if (!this.#options.varyBytesPerRequest) {
      yield* chunks;
      return;
    }
    // MP4: after the init segment (the first chunk of both kinds of content); TS: first.
    let first = format === "mp4";
    if (!first) yield variantChunk(format, variant);
    for (const chunk of chunks) {
      yield chunk;
      if (first) yield variantChunk(format, variant);
      first = false;
    }
  }

  #windowSize(s: SimStream, seconds: TimeRange[], format: SimFormat): number {
    const size = this.#realMedia
      ? realWindowBytes(this.#realMedia, seconds, format)
      : windowBytes(s.name, s.bitrateBps, seconds, format);
    return size + (this.#options.varyBytesPerRequest ? variantChunk(format, 0).length : 0);
  }

  /** Replaces the faults (an empty object clears them). */
  /** Replaces the episodes (an episode updated, closed, or deleted at the source). */
  setEpisodes(episodes: readonly SimEpisode[]): void {
    this.#episodes = episodes.map((e) => ({ ...e }));
  }

  episodes(): SimEpisode[] {
    return this.#episodes.map((e) => ({ ...e }));
  }

  /** The episodes fault in force, answered on `res` (true), or false to answer normally. */
  answerEpisodesFault(res: ServerResponse): boolean {
    const fault = this.#faults.episodesFault;
    if (!fault) return false;
    if (fault === "error") this.#error(res, 503, "injected");
    else if (fault === "bad-json") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"episodes": [ {"opened_at": 16');
    } else this.#json(res, 200, { episodes: "none today", items: [{ opened: "yesterday" }] });
    return true;
  }

  setFaults(faults: SimFaults): void {
    this.#faults = { ...faults };
  }

  /** Changes the accepted credentials (e.g. a password change on the media server). */
  setAuth(auth: SimAuth): void {
    this.#auth = auth;
  }

  /** Stops accepting connections and drops open ones: clients see "connection refused". */
  async pauseListening(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }

  async resumeListening(): Promise<void> {
    await this.#listen(this.#port);
  }

  async close(): Promise<void> {
    if (this.#server.listening) await this.pauseListening();
    this.meter.close();
  }

  async #listen(port: number): Promise<void> {
    this.#server.listen(port, this.#host);
    await once(this.#server, "listening");
    this.#port = (this.#server.address() as AddressInfo).port;
  }

  #stream(name: string): SimStream {
    const s = this.#streams.get(name);
    if (!s) throw new Error(`simulator: no stream "${name}"`);
    return s;
  }

  /** external_episodes_list: the episodes of the streams `name` lists, without id or media. */
  #externalEpisodes(url: URL, res: ServerResponse): void {
    if (this.answerEpisodesFault(res)) return;
    const names = url.searchParams.get("name");
    if (!names) {
      this.#error(res, 400, "name is required");
      return;
    }
    const wanted = new Set(names.split(","));
    const episodes = this.#episodes
      .filter((e) => wanted.has(e.media))
      .map((e) => ({
        opened_at: e.opened_at,
        updated_at: e.updated_at,
        ...(e.closed_at !== undefined ? { closed_at: e.closed_at } : {}),
      }));
    this.#json(res, 200, { episodes });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://sim");
    const kind: SimRequest["kind"] = /\/archive-\d+-\d+\.(mp4|ts)$/.test(url.pathname)
      ? "archive"
      : url.pathname.startsWith(`${API}/`) ||
          url.pathname.endsWith("/recording_status.json") ||
          url.pathname.endsWith("/ranges.json")
        ? "index"
        : "other";
    const startedAt = performance.now();
    this.inFlight++;
    res.on("close", () => {
      this.inFlight--;
      this.requests.push({
        startedAt,
        endedAt: performance.now(),
        method: req.method ?? "GET",
        path: `${url.pathname}${url.search.replace(/([?&]token=)[^&]*/g, "$1***")}`,
        status: res.statusCode,
        kind,
      });
    });
    if (req.method !== "GET") return this.#error(res, 405, "method not allowed");
    const auth = this.#authorized(req, url, kind);
    if (auth === "forbidden") return this.#error(res, 403, "play auth refused this request");
    if (!auth) {
      res.setHeader("www-authenticate", 'Basic realm="Flussonic"');
      return this.#error(res, 401, "unauthorized");
    }
    if (url.pathname === EPISODES_PATH) return this.#externalEpisodes(url, res);
    const f = this.#faults;
    const targeted = f.target === "all" || (f.target ?? "archive") === kind;
    if (targeted && f.latencyMs) await sleep(f.latencyMs);
    if (targeted && this.#injectError()) {
      if (f.retryAfterSeconds !== undefined) res.setHeader("retry-after", String(f.retryAfterSeconds));
      return this.#error(res, f.errorStatus ?? 503, "injected");
    }
    if (kind === "index" && targeted && f.indexFault) {
      if (f.indexFault === "bad-json") {
        res.writeHead(200, { "content-type": "application/json" });
        res.end('{"streams": [ {"name": "cam1", ');
        return;
      }
      return this.#json(res, 200, { items: "not what you expected", ranges: [{ start: "yesterday" }] });
    }
    if (kind === "archive") return this.#archive(url, res, req);
    if (url.pathname === `${API}/streams`) return this.#streamList(url, req, res);
    if (url.pathname.startsWith(`${API}/streams/`)) {
      const rest = url.pathname.slice(`${API}/streams/`.length);
      if (rest.endsWith("/dvr/ranges")) {
        return this.#ranges(decodeURIComponent(rest.slice(0, -"/dvr/ranges".length)), url, res);
      }
      return this.#streamInfo(decodeURIComponent(rest), res);
    }
    if (url.pathname.endsWith("/ranges.json") && this.#options.recordingStatusRanges === false) {
      this.#rangesJson(decodeStreamPath(url.pathname.slice(1, -"/ranges.json".length)), url, res);
      return;
    }
    const hls = HLS_PLAYLIST.exec(url.pathname);
    if (hls) return this.#hlsPlaylist(hls, res);
    const segment = HLS_SEGMENT.exec(url.pathname);
    if (segment) return this.#hlsSegment(segment, res);
    if (url.pathname.endsWith("/init.mp4") && this.#realMedia) {
      const s = this.#streams.get(decodeStreamPath(url.pathname.slice(1, -"/init.mp4".length)));
      if (!s) return this.#error(res, 404, "no such stream");
      res.writeHead(200, { "content-type": "video/mp4", "content-length": this.#realMedia.mp4.init.length });
      res.end(this.#realMedia.mp4.init);
      return;
    }
    // JPEG previews and thumbnails (jpeg-ondemand.yml, hls-/dash-jpeg-thumbnail.yml): a server
    // without `thumbnails enabled=ondemand` refuses them with 403, as this one does.
    if (
      /(?:\/\d+-preview\.jpg|\/images-\d+x\d+\/(?:seg-\d+-\d+\.hls|dvr-\d+-\d+\.m4v)\.jpg)$/.test(
        url.pathname,
      )
    ) {
      return this.#error(res, 403, "JPEG ondemand is forbidden: thumbnails are not enabled for this stream");
    }
    if (url.pathname.endsWith("/recording_status.json")) {
      return this.#recordingStatus(
        decodeStreamPath(url.pathname.slice(1, -"/recording_status.json".length)),
        url,
        res,
      );
    }
    return this.#error(res, 404, "not found");
  }

  /**
   * HLS of the archive with real media (fMP4): `index|archive-{from}-{dur}.m3u8` (VOD) and
   * `timeshift_rel-{s}.m3u8` (live, delayed: the last minute before now - s). Segments are
   * 6-second runs on a 6-second grid of unix time, named like Flussonic's
   * (`2026/12/07/15/30/06-06000.m4s`: start and milliseconds), after one `init.mp4`; a segment the
   * archive does not hold whole is left out, with a discontinuity after the hole.
   */
  #hlsPlaylist(m: RegExpExecArray, res: ServerResponse): void {
    const s = this.#streams.get(decodeStreamPath(m[1]!));
    if (!s || !this.#realMedia) {
      this.#error(res, 404, "no such stream (HLS needs real media)");
      return;
    }
    const now = this.#now();
    const live = m[4] !== undefined;
    const from = live ? now - Number(m[4]) - 60 : Number(m[2]);
    const to = live ? now - Number(m[4]) : Number(m[2]) + Number(m[3]);
    const starts: number[] = [];
    for (
      let t = Math.ceil(from / HLS_SEGMENT_SECONDS) * HLS_SEGMENT_SECONDS;
      t < to;
      t += HLS_SEGMENT_SECONDS
    ) {
      if (live && t + HLS_SEGMENT_SECONDS > to) break;
      const held = recordedSeconds(s, now, t, HLS_SEGMENT_SECONDS).reduce((n, r) => n + r.to - r.from, 0);
      if (held === HLS_SEGMENT_SECONDS) starts.push(t);
    }
    if (starts.length === 0) {
      this.#error(res, 404, "no archive in this range");
      return;
    }
    const lines = [
      "#EXTM3U",
      "#EXT-X-VERSION:7",
      `#EXT-X-TARGETDURATION:${HLS_SEGMENT_SECONDS}`,
      `#EXT-X-MEDIA-SEQUENCE:${starts[0]! / HLS_SEGMENT_SECONDS}`,
      ...(live ? [] : ["#EXT-X-PLAYLIST-TYPE:VOD"]),
      '#EXT-X-MAP:URI="init.mp4"',
    ];
    for (const [i, t] of starts.entries()) {
      if (i > 0 && t !== starts[i - 1]! + HLS_SEGMENT_SECONDS) lines.push("#EXT-X-DISCONTINUITY");
      const d = new Date(t * 1000).toISOString();
      lines.push(
        `#EXT-X-PROGRAM-DATE-TIME:${d}`,
        `#EXTINF:${HLS_SEGMENT_SECONDS}.000,`,
        `${d.slice(0, 10).replaceAll("-", "/")}/${d.slice(11, 19).replaceAll(":", "/")}-${String(HLS_SEGMENT_SECONDS * 1000).padStart(5, "0")}.m4s`,
      );
    }
    if (!live) lines.push("#EXT-X-ENDLIST");
    const text = `${lines.join("\n")}\n`;
    res.writeHead(200, {
      "content-type": "application/vnd.apple.mpegurl",
      "content-length": Buffer.byteLength(text),
    });
    res.end(text);
  }

  /** One HLS segment: the fragments of its seconds (the archive's own bytes, without the init). */
  #hlsSegment(m: RegExpExecArray, res: ServerResponse): void {
    const s = this.#streams.get(decodeStreamPath(m[1]!));
    const t = Date.UTC(+m[2]!, +m[3]! - 1, +m[4]!, +m[5]!, +m[6]!, +m[7]!) / 1000;
    const seconds = Number(m[8]) / 1000;
    if (!s || !this.#realMedia || !Number.isInteger(seconds)) {
      this.#error(res, 404, "no such segment");
      return;
    }
    const held = recordedSeconds(s, this.#now(), t, seconds);
    if (held.reduce((n, r) => n + r.to - r.from, 0) !== seconds) {
      this.#error(res, 404, "no such segment");
      return;
    }
    const body = Buffer.concat([...realWindowChunks(this.#realMedia, held, "mp4")].slice(1));
    res.writeHead(200, { "content-type": "video/iso.segment", "content-length": body.length });
    res.end(body);
  }

  #injectError(): boolean {
    const f = this.#faults;
    if (f.failNext && f.failNext > 0) {
      f.failNext--;
      return true;
    }
    return f.errorRate !== undefined && this.#random() < f.errorRate;
  }

  /** Whether a request may pass: true, false (401: no or wrong credentials), or "forbidden" (403, play auth). */
  #authorized(req: IncomingMessage, url: URL, kind: SimRequest["kind"]): boolean | "forbidden" {
    const a = this.#auth;
    if (!a.basic && !a.bearer && !a.playToken) return true;
    const playback =
      kind === "archive" ||
      url.pathname.endsWith("/recording_status.json") ||
      url.pathname.endsWith("/ranges.json");
    if (playback && a.playToken && url.searchParams.get("token") === a.playToken) return true;
    const header = req.headers.authorization ?? "";
    let admin = false;
    if (a.basic) {
      const expected = `Basic ${Buffer.from(`${a.basic.username}:${a.basic.password}`).toString("base64")}`;
      if (header === expected) admin = true;
    }
    if (a.bearer && header === `Bearer ${a.bearer}`) admin = true;
    if (playback && a.playAuth) return "forbidden";
    return admin;
  }

  #json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  }

  /**
   * An error answer: spec (components/schemas/error_response.yml) `{errors: [{status, title}]}`,
   * status as a string; the `docs` shape: `{error: title}`.
   */
  #error(res: ServerResponse, status: number, title: string): void {
    const body =
      this.#options.shape === "docs" ? { error: title } : { errors: [{ status: String(status), title }] };
    this.#json(res, status, body);
  }

  #page<T>(items: T[], url: URL): { items: T[]; next: string | null; prev: string | null } {
    // paths/stream/streams.yml: `limit`, default 100, no maximum declared: honoured unless a cap is set.
    const limit = Math.min(
      Number(url.searchParams.get("limit") ?? 100) || 100,
      this.#options.pageSize ?? Number.POSITIVE_INFINITY,
    );
    const cursor = url.searchParams.get("cursor");
    // Opaque cursors holding '/', '+' or '=' as real ones do: the client must URL-encode them.
    const offset = cursor ? Number(Buffer.from(cursor, "base64").toString("latin1").slice(3)) : 0;
    const page = items.slice(offset, offset + limit);
    const encode = (n: number) => Buffer.from(`>>?${n}`, "latin1").toString("base64");
    return {
      items: page,
      next: offset + limit < items.length ? encode(offset + limit) : null,
      prev: offset > 0 ? encode(Math.max(0, offset - limit)) : null,
    };
  }

  /**
   * A stream as the stream list and stream info give it (components/schemas/stream/stream_config.yml
   * fields: `name`, `named_by`, `dvr` with `expiration` and `dvr_replicate`, `stats.dvr_info`).
   */
  #streamEntry(s: SimStream): Record<string, unknown> {
    const remote = this.#remote.has(s.name);
    const replicate = this.#options.shape === "docs" ? { replicate: false } : { dvr_replicate: false };
    return {
      name: s.name,
      static: !remote,
      named_by: remote ? "remote" : "config",
      ...(s.dvr ? { dvr: { root: "/storage", expiration: s.depthSeconds, ...replicate } } : {}),
      stats: {
        alive: true,
        ...(remote ? { remote: true } : {}),
        ...(s.dvr && recordedAt(s, this.#now()).ranges.length ? { dvr_info: this.#dvrInfo(s) } : {}),
      },
    };
  }

  /**
   * A stream's `dvr_info` (components/schemas/dvr/dvr_info.yml): `from` (first recorded second),
   * `depth` (start of the first range to the end of the last), `ranges` ({from, duration} seconds),
   * `bytes`, `duration` (seconds recorded, gaps excluded).
   */
  #dvrInfo(s: SimStream): Record<string, unknown> {
    const now = this.#now();
    const { ranges } = recordedAt(s, now);
    const duration = ranges.reduce((sum, r) => sum + (r.to - r.from), 0);
    const from = ranges[0]?.from ?? now;
    return {
      from,
      depth: (ranges.at(-1)?.to ?? from) - from,
      ranges: ranges.map((r) => ({ from: r.from, duration: r.to - r.from })),
      bytes: Math.round((duration * s.bitrateBps) / 8),
      duration,
    };
  }

  #streamList(url: URL, req: IncomingMessage, res: ServerResponse): void {
    const accept = req.headers.accept ?? "*/*";
    if (this.#options.anyAccept === "openmetrics" && !/application\/json/.test(accept)) {
      // paths/stream/streams.yml also offers application/openmetrics-text.
      const text = [...this.#streams.keys()].map((n) => `stream_bitrate{name="${n}"} 0\n`).join("");
      res.writeHead(200, { "content-type": "application/openmetrics-text" });
      res.end(text);
      return;
    }
    const all = [...this.#streams.values()].sort((a, b) => a.name.localeCompare(b.name));
    const page = this.#page(all, url);
    const select = url.searchParams.get("select");
    this.#json(res, 200, {
      streams: page.items.map((s) => selectFields(this.#streamEntry(s), select)),
      estimated_count: all.length,
      next: page.next,
      prev: page.prev,
    });
  }

  #streamInfo(name: string, res: ServerResponse): void {
    const s = this.#streams.get(name);
    if (!s) {
      this.#error(res, 404, `stream ${name} not found`);
      return;
    }
    this.#json(res, 200, this.#streamEntry(s));
  }

  #ranges(name: string, url: URL, res: ServerResponse): void {
    const s = this.#streams.get(name);
    if (!s) {
      this.#error(res, 404, `stream ${name} not found`);
      return;
    }
    const { ranges, open } = recordedAt(s, this.#now());
    const page = this.#page(
      ranges.map((r, i) => ({ r, last: i === ranges.length - 1 })),
      url,
    );
    const fields = this.#options.rangeFields ?? "seconds";
    const omitClosed = this.#options.omitClosedAt === true;
    this.#json(res, 200, {
      ranges: page.items.map(({ r, last }) => ({
        ...(fields !== "milliseconds" ? { from: r.from, duration: r.to - r.from } : {}),
        ...(fields !== "seconds"
          ? { opened_at: r.from * 1000, ...((last && open) || omitClosed ? {} : { closed_at: r.to * 1000 }) }
          : {}),
      })),
      estimated_count: ranges.length,
      next: page.next,
      prev: page.prev,
    });
  }

  /**
   * `recording_status.json`. spec (paths/playback/recording-status.yml): one `dvr_info` object, no
   * query parameters. docs: an array `[{stream, ranges}]`, `from`/`to` honoured.
   */
  #recordingStatus(name: string, url: URL, res: ServerResponse): void {
    const s = this.#streams.get(name);
    if (!s) {
      this.#error(res, 404, `stream ${name} not found`);
      return;
    }
    if (this.#options.shape !== "docs") {
      const { ranges, ...rest } = this.#dvrInfo(s);
      this.#json(res, 200, this.#options.recordingStatusRanges === false ? rest : { ...rest, ranges });
      return;
    }
    const now = this.#now();
    const from = Number(url.searchParams.get("from") ?? 0);
    const toParam = url.searchParams.get("to");
    const to = !toParam || toParam === "now" ? now : Number(toParam);
    const ranges = recordedAt(s, now)
      .ranges.map((r) => ({ from: Math.max(r.from, from), to: Math.min(r.to, to) }))
      .filter((r) => r.to > r.from);
    this.#json(res, 200, [
      { stream: s.name, ranges: ranges.map((r) => ({ from: r.from, duration: r.to - r.from })) },
    ]);
  }

  /**
   * `ranges.json?closed_at_gte=<ms>&opened_at_lte=<ms>` (Flussonic's DVR player; not in
   * openapi-demo): `{ranges: [{opened_at, closed_at}]}` in ms; a range still recording has a
   * `closed_at` near now, as the newer description says of `closed_at`.
   */
  #rangesJson(name: string, url: URL, res: ServerResponse): void {
    const s = this.#streams.get(name);
    if (!s) {
      this.#error(res, 404, `stream ${name} not found`);
      return;
    }
    const gte = Number(url.searchParams.get("closed_at_gte") ?? 0);
    const lte = Number(url.searchParams.get("opened_at_lte") ?? Number.POSITIVE_INFINITY);
    const ranges = recordedAt(s, this.#now())
      .ranges.filter((r) => r.to * 1000 >= gte && r.from * 1000 <= lte)
      .map((r) => ({ opened_at: r.from * 1000, closed_at: r.to * 1000 }));
    this.#json(res, 200, { ranges });
  }

  async #archive(url: URL, res: ServerResponse, req?: IncomingMessage): Promise<void> {
    const m = /^\/(.+)\/archive-(\d+)-(\d+)\.(mp4|ts)$/.exec(url.pathname)!;
    const name = decodeStreamPath(m[1]!);
    const from = Number(m[2]);
    const duration = Number(m[3]);
    const format = m[4] as SimFormat;
    const s = this.#streams.get(name);
    const seconds = s && duration > 0 ? recordedSeconds(s, this.#now(), from, duration) : [];
    if (!s || seconds.length === 0 || this.#remote.has(name)) {
      return this.#error(res, 404, "no archive for this window");
    }

    const f = this.#faults;
    let hit: boolean;
    if (f.bodyFaultNext !== undefined) {
      hit = f.bodyFaultNext > 0;
      if (hit) f.bodyFaultNext--;
    } else {
      hit = f.bodyFaultRate === undefined || this.#random() < f.bodyFaultRate;
    }
    const resetAt = hit ? f.resetAfterBytes : undefined;
    const truncateAt = hit
      ? Math.min(
          f.truncateAfterBytes ?? Infinity,
          f.truncateAfterFragments !== undefined
            ? this.#windowSize(s, firstSeconds(seconds, f.truncateAfterFragments), format)
            : Infinity,
        )
      : undefined;
    const stallAt = hit ? f.stallAfterBytes : undefined;
    const pace = f.bodyBytesPerSecond;
    const size = this.#windowSize(s, seconds, format);
    const variant = this.#options.varyBytesPerRequest ? ++this.#variant : 0;
    const ranges = this.#options.ranges;
    const etag =
      ranges && (ranges === true || ranges.etag !== false)
        ? `"${encodeURIComponent(name)}-${from}-${duration}-${format}-${variant}"`
        : undefined;
    // A Range answer (206) of bytes [first, last], or the whole export (200).
    let slice: { first: number; last: number } | undefined;
    const asked = ranges ? /^bytes=(\d+)-(\d*)$/.exec(req?.headers.range ?? "") : null;
    const ifRange = req?.headers["if-range"];
    if (asked && (ifRange === undefined || ifRange === etag)) {
      const first = Number(asked[1]);
      if (first >= size) {
        res.writeHead(416, { "content-range": `bytes */${size}` });
        res.end();
        return;
      }
      slice = { first, last: Math.min(size - 1, asked[2] ? Number(asked[2]) : size - 1) };
    }

    const socket = res.socket ?? undefined;
    this.meter.started(socket);
    let closed = false;
    res.on("close", () => {
      closed = true;
      this.meter.ended(socket);
    });
    res.writeHead(slice ? 206 : 200, {
      // paths/playback/mp4-export.yml: video/mp4; ts-export.yml: video/mpeg (older servers: video/mp2t).
      "content-type":
        format === "mp4" ? "video/mp4" : this.#options.shape === "docs" ? "video/mp2t" : "video/mpeg",
      ...(ranges ? { "accept-ranges": "bytes" } : {}),
      ...(etag ? { etag } : {}),
      ...(slice
        ? {
            "content-range": `bytes ${slice.first}-${slice.last}/${size}`,
            "content-length": slice.last - slice.first + 1,
          }
        : this.#options.sendContentLength
          ? { "content-length": size }
          : {}),
    });
    const started = performance.now();
    let sent = 0;
    const chunks = slice
      ? sliceOf(this.#windowChunks(s, seconds, format, variant), slice.first, slice.last)
      : this.#windowChunks(s, seconds, format, variant);
    for (let chunk of chunks) {
      if (closed) return;
      const limit = Math.min(resetAt ?? Infinity, truncateAt ?? Infinity, stallAt ?? Infinity);
      if (sent + chunk.length > limit) chunk = chunk.subarray(0, limit - sent);
      if (chunk.length > 0) {
        if (pace) {
          const due = started + ((sent + chunk.length) / pace) * 1000;
          const wait = due - performance.now();
          if (wait > 0) await sleep(wait);
          if (closed) return;
        }
        sent += chunk.length;
        this.meter.sent(chunk.length);
        if (!res.write(chunk)) await drainOrClose(res, this.#options.sendTimeoutMs);
      }
      if (sent === resetAt) {
        res.destroy();
        return;
      }
      if (sent === truncateAt) {
        res.end();
        // With a promised length, the peer sees the connection close short of it.
        if (this.#options.sendContentLength) res.once("finish", () => res.socket?.destroy());
        return;
      }
      if (sent === stallAt) {
        await once(res, "close");
        return;
      }
    }
    res.end();
  }
}

/** The first `n` seconds of `seconds`. */
function firstSeconds(seconds: TimeRange[], n: number): TimeRange[] {
  const out: TimeRange[] = [];
  let left = n;
  for (const r of seconds) {
    if (left <= 0) break;
    const to = Math.min(r.to, r.from + left);
    out.push({ from: r.from, to });
    left -= to - r.from;
  }
  return out;
}

/** Waits until the client has read what was written; after `timeoutMs` the connection is closed. */
function drainOrClose(res: ServerResponse, timeoutMs?: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => res.destroy(), timeoutMs);
    const done = () => {
      clearTimeout(timer);
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

/** Bytes [first, last] of a stream of chunks. */
function* sliceOf(chunks: Iterable<Buffer>, first: number, last: number): Iterable<Buffer> {
  let at = 0;
  for (const chunk of chunks) {
    const end = at + chunk.length;
    if (end > first && at <= last) {
      yield chunk.subarray(Math.max(0, first - at), Math.min(chunk.length, last + 1 - at));
    }
    at = end;
    if (at > last) return;
  }
}

/**
 * Only the `select`ed fields of an entry (paths/stream/streams.yml: comma-separated, nested with
 * dots); every field without `select`.
 */
export function selectFields(entry: Record<string, unknown>, select: string | null): Record<string, unknown> {
  if (!select) return entry;
  const out: Record<string, unknown> = {};
  const nested = new Map<string, string[]>();
  for (const field of select.split(",").map((f) => f.trim())) {
    const [head, ...rest] = field.split(".");
    const value = entry[head!];
    if (value === undefined) continue;
    if (rest.length === 0 || typeof value !== "object" || value === null) out[head!] = value;
    else nested.set(head!, [...(nested.get(head!) ?? []), rest.join(".")]);
  }
  for (const [head, fields] of nested) {
    if (head in out) continue; // the whole field was selected
    out[head] = selectFields(entry[head] as Record<string, unknown>, fields.join(","));
  }
  return out;
}

/** `/live/cam%201` path prefix → stream name `live/cam 1`. */
function decodeStreamPath(path: string): string {
  return path.split("/").map(decodeURIComponent).join("/");
}
