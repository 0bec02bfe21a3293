/**
 * Flussonic's admin API as the backup uses it: requests with the source's credentials (Basic,
 * Bearer, or a play token as `?token=`), JSON answers checked against the shapes the client reads,
 * and the stream list (cursor pages) and stream info.
 */

import type { Dispatcher } from "undici";
import { z } from "zod";
import type { SourceCredentials } from "../config/config.ts";
import { MalformedAnswerError, SetupError } from "../domain/errors.ts";
import { Pool } from "../shared/undici-pool.ts";
import { type DvrDepth, dvrDepthOf } from "./dvr-depth.ts";
import { networkError, type RequestKind, statusError } from "./flussonic-errors.ts";

export const API = "/streamer/api/v3";
export const PAGE_LIMIT = 500;
/** A stream or range list longer than this many pages is refused as a broken cursor loop. */
export const MAX_PAGES = 10_000;

/** What the backup needs to know of one stream with a DVR archive. */
export interface DvrStream extends DvrDepth {
  name: string;
  /** Average archive bitrate (bits per second) when the server reports bytes and duration. */
  bitrateBps: number | undefined;
}

/** One origin of a source (its admin API, or where archive downloads go) with its connection pool. */
export interface Endpoint {
  pool: Pool;
  /** Scheme, host and port of the configured URL (never its user info). */
  origin: string;
  /** Path prefix of the configured URL (a reverse proxy may serve Flussonic under a folder). */
  basePath: string;
}

export function endpoint(url: string, options: Pool.Options): Endpoint {
  const u = new URL(url);
  return { pool: new Pool(u.origin, options), origin: u.origin, basePath: u.pathname.replace(/\/+$/, "") };
}

/** A stream name as a playback path prefix: `/` kept, every segment percent-encoded. */
export function streamPath(name: string): string {
  return name.split("/").map(encodeURIComponent).join("/");
}

/** The requests of one source: its name (for messages) and credentials (for every request). */
export class FlussonicApi {
  readonly sourceName: string;
  readonly #credentials: SourceCredentials;

  constructor(sourceName: string, credentials: SourceCredentials) {
    this.sourceName = sourceName;
    this.#credentials = credentials;
  }

  get authType(): SourceCredentials["type"] {
    return this.#credentials.type;
  }

  /** A GET with the source's credentials; network failures become BackupErrors. */
  async request(
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
      throw this.networkError(error, what);
    }
  }

  /** A JSON answer of `shape`; any other answer is the BackupError it means. */
  async getJson<T>(
    ep: Endpoint,
    path: string,
    shape: z.ZodType<T>,
    what: string,
    kind: RequestKind = "api",
    /** What a 404 means here, when it is known (default: told apart by asking the stream list). */
    notFound?: string,
  ): Promise<T> {
    // JSON asked for by name: paths/stream/streams.yml also offers OpenMetrics and text, and a
    // router may read `*/*` as "any of them".
    const res = await this.request(ep, path, what, undefined, { accept: "application/json" });
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => undefined);
      if (res.statusCode === 404 && notFound !== undefined) {
        throw new SetupError(`source ${this.sourceName}: ${what}: HTTP 404, ${notFound}`);
      }
      if (res.statusCode === 404) {
        // A 404 from the admin API either names a stream the source does not have, or a base URL
        // where no Flussonic admin API answers (a path such as /flussonic appended to `url`): the
        // stream list tells them apart (itself, or one more request only after such a failure).
        if (kind === "api" && !(await this.#adminApiAnswers(ep, what))) {
          throw new SetupError(
            `source ${this.sourceName}: ${what}: HTTP 404, no Flussonic admin API at ${ep.origin}${ep.basePath}${API} (the base URL is wrong)`,
          );
        }
        throw new SetupError(`source ${this.sourceName}: ${what}: HTTP 404, unknown to the source`);
      }
      throw this.statusError(res.statusCode, res.headers, what, kind);
    }
    let text: string;
    try {
      text = await res.body.text();
    } catch (error) {
      throw this.networkError(error, what);
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

  statusError(
    status: number,
    headers: Record<string, string | string[] | undefined>,
    what: string,
    kind: RequestKind,
  ) {
    return statusError(this.sourceName, this.#credentials.type, status, headers, what, kind);
  }

  networkError(error: unknown, what: string) {
    return networkError(this.sourceName, error, what);
  }

  /** Whether the admin API's stream list answers at the configured base URL (after a 404). */
  async #adminApiAnswers(ep: Endpoint, what: string): Promise<boolean> {
    if (what === "stream list") return false;
    try {
      const res = await this.request(ep, `${API}/streams?limit=1`, "stream list", undefined, {
        accept: "application/json",
      });
      await res.body.dump().catch(() => undefined);
      return res.statusCode !== 404;
    } catch {
      // Unreachable now: say what the first answer said.
      return true;
    }
  }
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
export const streamShape = z.looseObject({
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
 * Every stream with a DVR archive in a stream list of `path` (all cursor pages): the admin API's
 * `/streams` of a media server, or Central's `/streamers/{hostname}/streams`.
 */
export async function listDvrStreams(
  api: FlussonicApi,
  ep: Endpoint,
  path = `${API}/streams`,
  what = "stream list",
): Promise<DvrStream[]> {
  const out: DvrStream[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const query = new URLSearchParams({ select: STREAM_LIST_SELECT, limit: String(PAGE_LIMIT) });
    if (cursor) query.set("cursor", cursor);
    const body = await api.getJson(ep, `${path}?${query}`, streamListShape, what);
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
  throw new MalformedAnswerError(`source ${api.sourceName}: ${what} did not end after ${MAX_PAGES} pages`);
}

/** One stream's DVR facts from the admin API; SetupError when the source does not know it. */
export async function dvrStream(api: FlussonicApi, ep: Endpoint, name: string): Promise<DvrStream> {
  const stream = await api.getJson(
    ep,
    `${API}/streams/${encodeURIComponent(name)}`,
    streamShape,
    `stream "${name}"`,
  );
  return toDvrStream(stream);
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
