/**
 * A fleet behind Flussonic Central (or Watcher, which runs on Central): the servers Central lists
 * (`GET /streamer/api/v3/streamers`) and each server's streams (`/streamers/{hostname}/streams`)
 * make one source whose streams are named `<hostname>/<stream>`. Each server is read with its own
 * FlussonicClient at the address Central gives, under its own cap (copies at once, bandwidth).
 */
import { z } from "zod";
import type { ArchiveFormat, SourceConfig, SourceCredentials } from "../config/config.ts";
import { Secret, serverCaps } from "../config/config.ts";
import { inClear } from "../config/url.ts";
import { BackupError, MalformedAnswerError, RetryableError, SetupError } from "../domain/errors.ts";
import type { ArchiveRange } from "../domain/ranges.ts";
import { forEachLimited } from "../shared/for-each-limited.ts";
import type { ArchiveBody, WindowPacing } from "./archive-reads.ts";
import { centralEpisodes, type SourceEpisode, urlEpisodes } from "./episodes.ts";
import { type ArchiveSource, FlussonicClient, type ListingGap } from "./flussonic.ts";
import {
  API,
  type DvrStream,
  type Endpoint,
  endpoint,
  FlussonicApi,
  listDvrStreams,
  MAX_PAGES,
} from "./flussonic-api.ts";
import { type Throttle, TokenBucket } from "./throttle.ts";

/** components/schemas/central/streamer_node.yml (peer_config.yml): the fields read. */
const streamerShape = z.looseObject({
  hostname: z.string(),
  role: z.string().nullish(),
  api_url: z.string().nullish(),
  private_payload_url: z.string().nullish(),
  cluster_key: z.string().nullish(),
});
const streamerListShape = z.looseObject({
  streamers: z.array(streamerShape),
  next: z.string().nullish(),
});
type Streamer = z.infer<typeof streamerShape>;

/** A server's address and how to reach it. */
interface Server {
  hostname: string;
  apiUrl: string;
  archiveUrl: string;
  client: FlussonicClient;
  throttle: TokenBucket;
  slots: Slots;
  /** Until when (ms) the server is taken as unreachable, and why: its other streams fail fast. */
  down?: { untilMs: number; error: BackupError };
}

/** Servers whose stream lists are asked of Central at once. */
const SERVERS_LISTED_AT_ONCE = 8;

/** How long a server that could not be connected to is not asked again (its other streams fail fast). */
const UNREACHABLE_MS = 30_000;

export interface CentralClientOptions {
  /**
   * Each copy is held to its share of the server's bandwidth (`maxBandwidthMbps / maxConcurrentCopies`)
   * instead of the process sharing the server's whole cap (Lambda: one copy per process).
   */
  capPerCopy?: boolean;
  /** Milliseconds (tests move time). */
  nowMs?: () => number;
}

/** The client of a `kind: "central"` source. */
export class CentralClient implements ArchiveSource {
  readonly sourceName: string;
  readonly #source: SourceConfig;
  readonly #central: Endpoint;
  readonly #http: FlussonicApi;
  readonly #credentials: SourceCredentials;
  readonly #options: CentralClientOptions;
  readonly #servers = new Map<string, Server>();
  /** Clients of servers whose address changed (copies may still read through them). */
  readonly #moved: FlussonicClient[] = [];
  #gaps: ListingGap[] = [];

  constructor(source: SourceConfig, credentials: SourceCredentials, options: CentralClientOptions = {}) {
    this.sourceName = source.name;
    this.#source = source;
    this.#credentials = credentials;
    this.#options = options;
    this.#http = new FlussonicApi(source.name, credentials);
    this.#central = endpoint(source.url, {
      connections: 4,
      connectTimeout: source.timeouts.connectSeconds * 1000,
      headersTimeout: source.timeouts.headersSeconds * 1000,
      bodyTimeout: source.timeouts.bodyIdleSeconds * 1000,
      keepAliveTimeout: 10_000,
    });
  }

  /** Servers Central listed whose streams could not be listed in the last listDvrStreams. */
  listingGaps(): ListingGap[] {
    return this.#gaps;
  }

  /**
   * Every stream with a DVR archive on every media server Central lists (role "streamer"), named
   * `<hostname>/<stream>`. A server whose stream list fails is left out and named in listingGaps();
   * a failure of Central's server list fails the whole listing (nothing is taken as removed).
   */
  async listDvrStreams(): Promise<DvrStream[]> {
    const streamers = await this.#listStreamers();
    const out: DvrStream[] = [];
    const gaps: ListingGap[] = [];
    const media = streamers.filter((s) => !s.role || s.role === "streamer");
    await forEachLimited(media, SERVERS_LISTED_AT_ONCE, async (s) => {
      const problem = hostnameProblem(s.hostname);
      if (problem) {
        gaps.push({
          server: s.hostname,
          error: new MalformedAnswerError(`source ${this.sourceName}: Central lists a server ${problem}`),
        });
        return;
      }
      try {
        this.#remember(s);
        const streams = await listDvrStreams(
          this.#http,
          this.#central,
          `${API}/streamers/${encodeURIComponent(s.hostname)}/streams`,
          `stream list of server ${s.hostname} (from Central)`,
        );
        for (const stream of streams) out.push({ ...stream, name: `${s.hostname}/${stream.name}` });
      } catch (error) {
        gaps.push({ server: s.hostname, error: asBackupError(error) });
      }
    });
    this.#gaps = gaps.sort((a, b) => (a.server < b.server ? -1 : a.server > b.server ? 1 : 0));
    return out;
  }

  /** Central's episodes (or the configured episodes URL's) on `streams`. */
  async listEpisodes(streams: readonly string[]): Promise<SourceEpisode[]> {
    const url = this.#source.episodes?.url;
    if (!url) return centralEpisodes(this.#http, this.#central, streams);
    const ep = endpoint(url, { connections: 4, connectTimeout: this.#source.timeouts.connectSeconds * 1000 });
    try {
      return await urlEpisodes(this.#http, ep, streams);
    } finally {
      await ep.pool.close();
    }
  }

  async dvrStream(name: string): Promise<DvrStream> {
    const { server, stream } = await this.#route(name);
    const info = await this.#guard(server, () => server.client.dvrStream(stream));
    return { ...info, name };
  }

  async recordedRanges(name: string, span: { from: number; to: number }): Promise<ArchiveRange[]> {
    const { server, stream } = await this.#route(name);
    return this.#guard(server, () => server.client.recordedRanges(stream, span));
  }

  /**
   * Opens a window on its server, within the server's cap: at most `eachServer.maxConcurrentCopies`
   * open at once in this process (the slot is held until the body ends or is destroyed), every byte
   * paid to the server's bandwidth as well as to the caller's (the source's total).
   */
  async openWindow(
    name: string,
    from: number,
    duration: number,
    format: ArchiveFormat,
    signal?: AbortSignal,
    pacing?: WindowPacing,
  ): Promise<ArchiveBody> {
    const { server, stream } = await this.#route(name);
    const release = await server.slots.acquire(signal);
    try {
      const both = pacing
        ? { ...pacing, throttle: bothThrottles(pacing.throttle, server.throttle) }
        : undefined;
      const opened = await this.#guard(server, () =>
        server.client.openWindow(stream, from, duration, format, signal, both),
      );
      opened.body.once("close", release);
      return opened;
    } catch (error) {
      release();
      throw error;
    }
  }

  async close(): Promise<void> {
    if (this.#central.pool.closed) return;
    await Promise.all([
      this.#central.pool.close(),
      ...[...this.#servers.values()].map((s) => s.client.close()),
      ...this.#moved.map((c) => c.close()),
    ]);
  }

  /** Central's server list, every page (the spec declares no paging here, but the answer may carry `next`). */
  async #listStreamers(): Promise<Streamer[]> {
    const out: Streamer[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const query = cursor ? `?${new URLSearchParams({ cursor })}` : "";
      const body = await this.#http.getJson(
        this.#central,
        `${API}/streamers${query}`,
        streamerListShape,
        "server list (Central)",
      );
      out.push(...body.streamers);
      if (!body.next) return out;
      cursor = body.next;
    }
    throw new MalformedAnswerError(
      `source ${this.sourceName}: server list (Central) did not end after ${MAX_PAGES} pages`,
    );
  }

  /** The server of `<hostname>/<stream>`: known from a listing, else asked of Central (`/streamers/{hostname}`). */
  async #route(name: string): Promise<{ server: Server; stream: string }> {
    const cut = name.indexOf("/");
    if (cut <= 0 || cut === name.length - 1) {
      throw new SetupError(
        `source ${this.sourceName}: stream "${name}" names no server: a central source's streams are "<server hostname>/<stream>"`,
      );
    }
    const hostname = name.slice(0, cut);
    const stream = name.slice(cut + 1);
    let server = this.#servers.get(hostname);
    if (!server) {
      const found = await this.#http.getJson(
        this.#central,
        `${API}/streamers/${encodeURIComponent(hostname)}`,
        streamerShape,
        `server ${hostname} (Central)`,
        "api",
        `Central does not list this server (removed from the cluster, or renamed), so stream "${stream}" of it cannot be read`,
      );
      server = this.#remember({ ...found, hostname });
    }
    return { server, stream };
  }

  /** Keeps (or updates) a server Central listed: its client at the address Central gives. */
  #remember(s: Streamer): Server {
    const apiUrl = s.api_url ?? undefined;
    if (!apiUrl || !/^https?:\/\//.test(apiUrl)) {
      throw new MalformedAnswerError(
        `source ${this.sourceName}: Central gives server ${s.hostname} no http(s) api_url (got ${JSON.stringify(s.api_url ?? null)}), so it cannot be read`,
      );
    }
    const payload = s.private_payload_url ?? undefined;
    const archiveUrl = payload && /^https?:\/\//.test(payload) ? payload : apiUrl;
    const known = this.#servers.get(s.hostname);
    if (known && known.apiUrl === apiUrl && known.archiveUrl === archiveUrl) return known;
    const caps = serverCaps(this.#source);
    if (caps.auth === "cluster_key" && !s.cluster_key) {
      throw new SetupError(
        `source ${this.sourceName}: Central gives server ${s.hostname} no cluster_key, which eachServer.auth "cluster_key" asks it with: give the server a cluster key in Central, or set eachServer.auth to "central"`,
      );
    }
    const credentials: SourceCredentials =
      caps.auth === "cluster_key" && s.cluster_key
        ? { type: "bearer", token: new Secret(s.cluster_key) }
        : this.#credentials;
    // The config check refuses credentials over http:// for the URLs it can see; these come from Central.
    const clear = [apiUrl, archiveUrl].find((u) => inClear(u));
    if (credentials.type !== "none" && clear && !this.#source.allowCredentialsOverHttp) {
      throw new SetupError(
        `source ${this.sourceName}: Central gives server ${s.hostname} the address ${shown(clear)}, where the ${credentials.type} credentials would go in clear: give the servers https:// addresses in Central, or set allowCredentialsOverHttp of source ${this.sourceName} to true to accept that anyone on the path can read them`,
      );
    }
    // Moved: copies running keep the old client; it is closed with the rest.
    if (known) this.#moved.push(known.client);
    const bytesPerSecond = (caps.maxBandwidthMbps * 1_000_000) / 8;
    const server: Server = {
      hostname: s.hostname,
      apiUrl,
      archiveUrl,
      client: new FlussonicClient(
        {
          ...this.#source,
          kind: "server",
          url: apiUrl,
          archiveUrl: archiveUrl === apiUrl ? undefined : archiveUrl,
          maxConcurrentCopies: caps.maxConcurrentCopies,
          maxBandwidthMbps: caps.maxBandwidthMbps,
        },
        credentials,
      ),
      throttle: new TokenBucket(
        this.#options.capPerCopy ? bytesPerSecond / caps.maxConcurrentCopies : bytesPerSecond,
      ),
      slots: new Slots(caps.maxConcurrentCopies),
    };
    this.#servers.set(s.hostname, server);
    return server;
  }

  /**
   * Runs a request to a server; a server that cannot be connected to (refused, timeout, no such
   * host) is taken as unreachable for a while, so that its other streams fail at once with the
   * same sentence instead of each waiting for its own timeout.
   */
  async #guard<T>(server: Server, call: () => Promise<T>): Promise<T> {
    const now = this.#now();
    if (server.down && server.down.untilMs > now) throw server.down.error;
    try {
      const result = await call();
      server.down = undefined;
      return result;
    } catch (error) {
      const e = asBackupError(error);
      if (e instanceof RetryableError && e.status === undefined && !/aborted$/.test(e.message)) {
        server.down = {
          untilMs: now + UNREACHABLE_MS,
          error: new RetryableError(
            `source ${this.sourceName}: server ${server.hostname} (listed by Central) is unreachable at ${shown(server.apiUrl)}: ${e.message}`,
            { cause: e },
          ),
        };
        throw server.down.error;
      }
      throw e;
    }
  }

  #now(): number {
    return this.#options.nowMs?.() ?? Date.now();
  }
}

/** A URL as messages show it: never its user info (a password may be there). */
function shown(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname.replace(/\/$/, "")}`;
}

/** Why a hostname Central gives cannot name a stream folder, or undefined. */
function hostnameProblem(hostname: string): string | undefined {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (hostname === "" || hostname === "." || hostname === ".." || /[/\u0000-\u001f\u007f]/.test(hostname)) {
    return `with the hostname ${JSON.stringify(hostname)}, which cannot name its streams' folder (empty, "/", "." or control characters)`;
  }
  return undefined;
}

function asBackupError(error: unknown): BackupError {
  if (error instanceof BackupError) return error;
  return new RetryableError(error instanceof Error ? error.message : String(error), { cause: error });
}

/** Pays every byte to two throttles: the source's total and the server's own. */
function bothThrottles(total: Throttle, server: Throttle): Throttle {
  const rates = [total.bytesPerSecond, server.bytesPerSecond].filter((r): r is number => r !== undefined);
  return {
    async take(bytes, signal) {
      // Both at once: the wait is the longer of the two, never their sum.
      await Promise.all([total.take(bytes, signal), server.take(bytes, signal)]);
    },
    refund(bytes) {
      total.refund?.(bytes);
      server.refund?.(bytes);
    },
    async spaceBurst(bytes, signal) {
      const landed = await Promise.all([
        total.spaceBurst?.(bytes, signal),
        server.spaceBurst?.(bytes, signal),
      ]);
      return () => {
        for (const l of landed) l?.();
      };
    },
    ...(rates.length > 0 ? { bytesPerSecond: Math.min(...rates) } : {}),
  };
}

/** At most `limit` holders at once; the others wait in order. */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(limit: number) {
    this.#free = limit;
  }

  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.#free > 0) this.#free--;
    else {
      await new Promise<void>((resolve, reject) => {
        const go = () => {
          signal?.removeEventListener("abort", abort);
          resolve();
        };
        const abort = () => {
          const i = this.#waiting.indexOf(go);
          if (i >= 0) this.#waiting.splice(i, 1);
          reject(signal?.reason ?? new Error("aborted"));
        };
        signal?.addEventListener("abort", abort, { once: true });
        this.#waiting.push(go);
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    };
  }
}
