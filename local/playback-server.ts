/**
 * The local playback server behind `flussonic-backup serve`: node:http in front of the pure
 * playback handler (functions/playback/handler.ts), plus what only a local server needs:
 *
 *   GET /                                  the page (functions/playback/page/): timelines and a player
 *   GET /_assets/{page.js|page.css|hls.min.js}  its script, style and hls.js (from node_modules)
 *   GET /_api/streams.json?token=          sources, streams and their backup coverage, for the page
 *   GET /_media/{key}?exp=&sig=            bytes of a stored window object, with HTTP Range
 *   everything else                        the handler: /{source}/{stream...}/{file}?token=
 *
 * The `_` prefix cannot collide with a source (source names start with a letter or digit).
 * Media URLs are signed by this process with a random key of its own and expire after
 * MEDIA_URL_TTL_SECONDS, so `/_media/` is not an open door into the bucket; with auth off they are
 * plain paths. Only window objects (`{prefix}{source}/{stream}/{day}/{HHMMSS}Z-{n}s.{mp4|ts}`) are
 * served, never the backup's own state.
 *
 * Browsers: no CORS by default (the page is same-origin), so a web page on another origin cannot
 * read the backup; origins listed in `corsOrigins` (`serve --cors-origin`) get CORS headers that
 * let their player send `Range` and read `Content-Range` and `Content-Length`. A request whose
 * `Host` is a name other than the bound address, `localhost`, this machine's name or one of
 * `allowedHosts` (`serve --allowed-host`) is refused, so DNS rebinding cannot reach the server.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo, Socket } from "node:net";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { GetObjectCommand, HeadObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import type { BackupConfig } from "../functions/config/config.ts";
import type { ByteRange } from "../functions/domain/fragment-index.ts";
import { parseWindowKeyTail } from "../functions/domain/keys.ts";
import type { PlaybackHandler, PlaybackResponse } from "../functions/playback/handler.ts";
import { listCoverage } from "../functions/playback/listing.ts";
import { type PageAssets, readPageAssets } from "../functions/playback/page-assets.ts";
import type { BackupStore } from "../functions/store/backup-store.ts";
import { hostNameCheck } from "./host-names.ts";
import { forwardOrFailover, type Upstream } from "./upstream-failover.ts";

export { listCoverage, type PageListing, type PageStream } from "../functions/playback/listing.ts";

/**
 * How long a media URL written into a playlist stays valid at least (a paused VOD playlist is not
 * reloaded); expiries are rounded up to the next 10 minutes.
 */
export const MEDIA_URL_TTL_SECONDS = 2 * 3600;

export interface PlaybackServerOptions {
  host: string;
  /** 0: any free port. */
  port: number;
  config: BackupConfig;
  s3: S3Client;
  store: BackupStore;
  /**
   * Builds the playback handler once the server knows how to address media (the handler's
   * `mediaUrl` and `readObject` deps come from `media`).
   */
  createHandler(media: {
    mediaUrl(key: string): string;
    readObject(key: string, range?: ByteRange): Promise<AsyncIterable<Uint8Array>>;
  }): PlaybackHandler;
  /**
   * Why a playback token does not grant a stream (the handler's own check), or undefined when it
   * does; the page's listing shows the streams it grants. Undefined: auth is off (`--no-auth`),
   * everything is listed and media URLs are not signed.
   */
  checkToken:
    | ((token: string | undefined, wanted: { source: string; stream: string }) => string | undefined)
    | undefined;
  /** Origins whose pages may read answers (CORS); `*` any. Default none. */
  corsOrigins?: readonly string[];
  /** Host names accepted in `Host` besides IP addresses, `localhost`, the bound host and this machine's name. */
  allowedHosts?: readonly string[];
  /** Unix milliseconds (tests). */
  now?: () => number;
  /**
   * `serve --upstream`: Flussonic-shaped URLs (`/{stream...}/{file}`, whose first segment is not a
   * configured source) go to this server, and to the backup when it fails (upstream-failover.ts).
   */
  upstream?: Upstream;
}

export interface PlaybackServer {
  /** `http://host:port` as listened on. */
  url: string;
  port: number;
  close(): Promise<void>;
}

const CORS: Record<string, string> = {
  "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
  "Access-Control-Allow-Headers": "Range",
  "Access-Control-Expose-Headers": "Content-Range, Content-Length, Accept-Ranges",
  "Access-Control-Max-Age": "600",
};

const PAGE_DIR = join(import.meta.dirname, "../functions/playback/page");

export async function startPlaybackServer(o: PlaybackServerOptions): Promise<PlaybackServer> {
  const now = o.now ?? (() => Date.now());
  const auth = o.checkToken !== undefined;
  const mediaKey = randomBytes(32);
  const sign = (key: string, exp: number) =>
    createHmac("sha256", mediaKey).update(`${exp}\n${key}`).digest("base64url");
  const mediaUrl = (key: string): string => {
    const path = `/_media/${key.split("/").map(encodeURIComponent).join("/")}`;
    if (!auth) return path;
    // On a 10-minute grid, so a live playlist reloaded every few seconds keeps the same URLs.
    const exp = Math.ceil((Math.floor(now() / 1000) + MEDIA_URL_TTL_SECONDS) / 600) * 600;
    return `${path}?exp=${exp}&sig=${sign(key, exp)}`;
  };
  const readObject = async (key: string, range?: ByteRange): Promise<AsyncIterable<Uint8Array>> => {
    const res = await o.s3.send(
      new GetObjectCommand({
        Bucket: o.config.bucket,
        Key: key,
        ...(range ? { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : {}),
      }),
    );
    return res.Body as Readable;
  };
  const handler = o.createHandler({ mediaUrl, readObject });
  const assets = pageAssets();

  const server: Server = createServer({ keepAliveTimeout: 5000 }, (req, res) => {
    route(req, res).catch((error: unknown) => {
      if (!res.headersSent) {
        send(res, 500, { "Content-Type": "text/plain; charset=utf-8" }, `${describe(error)}\n`);
      } else res.destroy();
    });
  });
  const sockets = new Set<Socket>();
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });

  const sourceNames = new Set(o.config.sources.map((s) => s.name));
  /** Whether a request path starts with a configured source (the backup's own URL form). */
  const isSourcePath = (path: string): boolean => {
    try {
      return sourceNames.has(decodeURIComponent(path.split("/")[1] ?? ""));
    } catch {
      return false;
    }
  };
  const corsOrigins = new Set(o.corsOrigins ?? []);
  const answersTo = hostNameCheck(o.host, o.allowedHosts);

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://local");
    const method = req.method ?? "GET";
    if (!answersTo(req.headers.host)) {
      return send(
        res,
        421,
        TEXT,
        `Host ${JSON.stringify(req.headers.host ?? "")} is not a name this server answers to; add it with --allowed-host\n`,
      );
    }
    const origin = req.headers.origin;
    if (origin && (corsOrigins.has("*") || corsOrigins.has(origin))) {
      for (const [k, v] of Object.entries(CORS)) res.setHeader(k, v);
      res.setHeader("Access-Control-Allow-Origin", corsOrigins.has("*") ? "*" : origin);
    }
    if (corsOrigins.size > 0 && !corsOrigins.has("*")) res.setHeader("Vary", "Origin");
    if (method === "OPTIONS") return send(res, 204, {}, undefined);
    if (method !== "GET" && method !== "HEAD") {
      return send(res, 405, { Allow: "GET, HEAD, OPTIONS", ...TEXT }, "only GET and HEAD are served\n");
    }
    const head = method === "HEAD";
    const path = url.pathname;
    if (path === "/" || path === "/index.html") {
      return send(res, 200, { "Content-Type": "text/html; charset=utf-8", ...NO_STORE }, assets.html);
    }
    if (path.startsWith("/_assets/")) {
      const asset = assets.files.get(path.slice("/_assets/".length));
      if (!asset) return send(res, 404, TEXT, "no such asset\n");
      return send(res, 200, { "Content-Type": asset.type, "Cache-Control": "max-age=300" }, asset.body);
    }
    if (path === "/_api/streams.json") return streamsJson(url, res);
    if (path.startsWith("/_media/")) return media(req, res, url, head);
    const query: Record<string, string | undefined> = {};
    for (const [k, v] of url.searchParams) if (!(k in query)) query[k] = v;
    const headers: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v[0] : v;
    const rawPath = req.url!.split("?")[0]!;
    if (o.upstream && !isSourcePath(rawPath)) {
      const answer = await forwardOrFailover(
        o.upstream,
        { method, path: rawPath, query, headers, search: url.search },
        handler,
      );
      return sendHandlerAnswer(res, answer, head);
    }
    const answer = await handler({ method, path: rawPath, query, headers });
    return sendHandlerAnswer(res, answer, head);
  }

  async function streamsJson(url: URL, res: ServerResponse): Promise<void> {
    const token = url.searchParams.get("token") ?? undefined;
    const check = o.checkToken;
    let refused: string | undefined;
    const allowed = check
      ? (source: string, stream: string) => {
          const problem = check(token, { source, stream });
          refused ??= problem;
          return problem === undefined;
        }
      : undefined;
    const refuse = (reason: string) =>
      send(res, 403, { ...JSON_TYPE, ...NO_STORE }, `${JSON.stringify({ auth: true, error: reason })}\n`);
    if (check && !token) return refuse(check(undefined, { source: "", stream: "" }) ?? "a token is needed");
    const body = await listCoverage(o.config, o.store, Math.floor(now() / 1000), allowed);
    const listed = body.sources.reduce((n, s) => n + s.streams.length, 0);
    if (refused !== undefined && listed === 0) return refuse(refused);
    // The page plays the upstream's source at Flussonic's URLs, which go to the server first.
    const upstream = o.upstream ? { source: o.upstream.source } : undefined;
    return send(res, 200, { ...JSON_TYPE, ...NO_STORE }, `${JSON.stringify({ auth, ...body, upstream })}\n`);
  }

  async function media(req: IncomingMessage, res: ServerResponse, url: URL, head: boolean): Promise<void> {
    const key = url.pathname
      .slice("/_media/".length)
      .split("/")
      .map((s) => {
        try {
          return decodeURIComponent(s);
        } catch {
          return "\u0000";
        }
      })
      .join("/");
    if (!isWindowKey(o.config.prefix, key)) {
      return send(res, 404, TEXT, "not a stored archive window of this backup\n");
    }
    if (auth) {
      const exp = Number(url.searchParams.get("exp"));
      const sig = Buffer.from(url.searchParams.get("sig") ?? "");
      const want = Buffer.from(sign(key, exp));
      if (!Number.isInteger(exp) || sig.length !== want.length || !timingSafeEqual(sig, want)) {
        return send(res, 403, TEXT, "media URL signature is missing or wrong; take URLs from a playlist\n");
      }
      if (exp * 1000 < now()) {
        return send(res, 403, TEXT, "media URL expired; load the playlist again\n");
      }
    }
    const range = parseRange(req.headers.range);
    let got: { Body?: unknown; ContentRange?: string; ContentLength?: number; ETag?: string };
    try {
      const input = { Bucket: o.config.bucket, Key: key, ...(range ? { Range: range } : {}) };
      got = head
        ? await o.s3.send(new HeadObjectCommand(input))
        : await o.s3.send(new GetObjectCommand(input));
    } catch (error) {
      const name = (error as { name?: string }).name;
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (name === "InvalidRange" || status === 416) {
        const size = await objectSize(key).catch(() => undefined);
        return send(
          res,
          416,
          { ...TEXT, ...(size !== undefined ? { "Content-Range": `bytes */${size}` } : {}) },
          `range ${req.headers.range} is outside the object${size !== undefined ? ` (${size} bytes)` : ""}\n`,
        );
      }
      if (name === "NoSuchKey" || name === "NotFound" || status === 404) {
        return send(res, 404, TEXT, "no such archive window in the backup (expired or replaced?)\n");
      }
      return send(res, 502, TEXT, `reading s3://${o.config.bucket}/${key} failed: ${describe(error)}\n`);
    }
    const headers: Record<string, string> = {
      "Content-Type": key.endsWith(".ts") ? "video/mp2t" : "video/mp4",
      "Accept-Ranges": "bytes",
      "Cache-Control": "private, max-age=3600",
    };
    if (got.ContentLength !== undefined) headers["Content-Length"] = String(got.ContentLength);
    if (got.ETag) headers.ETag = got.ETag;
    let status = 200;
    if (range && got.ContentRange) {
      status = 206;
      headers["Content-Range"] = got.ContentRange;
    }
    res.writeHead(status, headers);
    if (head || !got.Body) {
      res.end();
      return;
    }
    await pipeline(got.Body as Readable, res).catch(() => res.destroy());
  }

  async function objectSize(key: string): Promise<number | undefined> {
    const h = await o.s3.send(new HeadObjectCommand({ Bucket: o.config.bucket, Key: key }));
    return h.ContentLength;
  }

  await new Promise<void>((ready, fail) => {
    server.once("error", fail);
    server.listen(o.port, o.host, () => {
      server.off("error", fail);
      ready();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = o.host.includes(":") ? `[${o.host}]` : o.host;
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        server.closeIdleConnections();
        for (const s of sockets) s.destroy();
      }),
  };
}

const TEXT = { "Content-Type": "text/plain; charset=utf-8" };
const JSON_TYPE = { "Content-Type": "application/json; charset=utf-8" };
const NO_STORE = { "Cache-Control": "no-store" };

/** An answer with a known body (Node sends no body to a HEAD request, Content-Length stays the GET's). */
function send(
  res: ServerResponse,
  status: number,
  headers: Record<string, string>,
  body: string | Buffer | undefined,
): void {
  const h: Record<string, string> = { ...headers };
  if (body !== undefined) h["Content-Length"] ??= String(Buffer.byteLength(body));
  res.writeHead(status, h);
  res.end(body);
}

async function sendHandlerAnswer(res: ServerResponse, a: PlaybackResponse, head: boolean): Promise<void> {
  const headers: Record<string, string> = { ...a.headers };
  const body = a.body;
  if (body === undefined || head) {
    res.writeHead(a.status, headers);
    res.end();
    return;
  }
  if (typeof body === "string" || body instanceof Uint8Array) {
    headers["Content-Length"] ??= String(typeof body === "string" ? Buffer.byteLength(body) : body.length);
    res.writeHead(a.status, headers);
    res.end(body);
    return;
  }
  // A streamed body (archive-….mp4) that fails before its first bytes is still answered with a
  // status and the reason; once bytes are sent, a failure can only cut the connection.
  const it = body[Symbol.asyncIterator]();
  let first: IteratorResult<Uint8Array>;
  try {
    first = await it.next();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    send(res, 500, { ...TEXT, ...NO_STORE }, `the export failed before its first byte: ${message}\n`);
    return;
  }
  res.writeHead(a.status, headers);
  async function* rest(): AsyncGenerator<Uint8Array> {
    if (first.done) return;
    yield first.value;
    for (let n = await it.next(); !n.done; n = await it.next()) yield n.value;
  }
  await pipeline(Readable.from(rest(), { objectMode: false }), res).catch(async () => {
    await it.return?.();
    res.destroy();
  });
}

/**
 * One `bytes=` range passed on to S3 as is (`a-b`, `a-`, `-n`); anything else (several ranges,
 * other units, garbage) is ignored and the whole object served, as RFC 9110 allows.
 */
export function parseRange(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] !== "" && m[2] !== "" && Number(m[2]) < Number(m[1])) return undefined;
  return `bytes=${m[1]}-${m[2]}`;
}

/** A window object key of this backup (not its `.backup/` state, not another prefix). */
function isWindowKey(prefix: string, key: string): boolean {
  if (!key.startsWith(prefix)) return false;
  const parts = key.slice(prefix.length).split("/");
  if (
    parts.length !== 4 ||
    parts[0]!.startsWith(".") ||
    parts.some((p) => p === "" || p.includes("\u0000"))
  ) {
    return false;
  }
  return parseWindowKeyTail(`${parts[2]}/${parts[3]}`) !== undefined;
}

/** The page and its assets, read once at start (hls.js from the package's own dist/). */
function pageAssets(): PageAssets {
  const require = createRequire(import.meta.url);
  return readPageAssets(PAGE_DIR, join(require.resolve("hls.js/package.json"), "..", "dist", "hls.min.js"));
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
