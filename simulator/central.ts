/**
 * A Flussonic Central (or Watcher) stand-in: the server list (`GET /streamer/api/v3/streamers`,
 * `/streamers/{hostname}`) and each server's streams (`/streamers/{hostname}/streams`) as
 * central.yml in flussonic/openapi-demo gives them, over simulated media servers that can be added
 * and removed while it runs. It fails as Central can: 5xx answers, a server's stream list refused
 * (403 "streamer unauthorized"), paged lists, and servers listed at an address nobody answers.
 */
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { type FlussonicSimulator, selectFields } from "./simulator.ts";

/** One media server as Central knows it. */
export interface CentralServer {
  hostname: string;
  /** The simulated media server behind it (its URL is the `api_url`, unless `apiUrl` says otherwise). */
  sim: FlussonicSimulator;
  /** `api_url` Central gives (default: the simulator's URL); e.g. an address nobody answers. */
  apiUrl?: string;
  /** Node role (default "streamer"; "vision" and "identification" nodes hold no archive to copy). */
  role?: "streamer" | "vision" | "identification";
  /** The cluster key Central returns with the server (a secret). */
  clusterKey?: string;
}

export interface CentralFaults {
  /** The next N requests are answered with `errorStatus`. */
  failNext?: number;
  /** Status of injected errors (default 503). */
  errorStatus?: number;
  /** Which requests the faults hit: the server list, the stream lists, or all (default). */
  target?: "streamers" | "streams" | "all";
  /** This server's stream list answers 403 ("Streamer unathorized" in streamer_streams.yml). */
  refuseStreamsOf?: string;
}

export interface CentralSimulatorOptions {
  port?: number;
  host?: string;
  /** Largest page of the lists (default 100, `limit` honoured up to it on stream lists). */
  pageSize?: number;
  /** Bearer token Central asks for (central.yml: bearerAuth); none: open. */
  bearer?: string;
}

const API = "/streamer/api/v3";

export class CentralSimulator {
  readonly requests: { path: string; status: number }[] = [];
  readonly #servers = new Map<string, CentralServer>();
  readonly #options: CentralSimulatorOptions;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #faults: CentralFaults = {};
  #port = 0;

  private constructor(options: CentralSimulatorOptions) {
    this.#options = options;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch(() => res.destroy());
    });
    this.#server.on("connection", (socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
    });
  }

  static async start(options: CentralSimulatorOptions = {}): Promise<CentralSimulator> {
    const c = new CentralSimulator(options);
    c.#server.listen(options.port ?? 0, options.host ?? "127.0.0.1");
    await once(c.#server, "listening");
    c.#port = (c.#server.address() as AddressInfo).port;
    return c;
  }

  get url(): string {
    return `http://${this.#options.host ?? "127.0.0.1"}:${this.#port}`;
  }

  /** A server joins the cluster (or its entry changes). */
  addServer(server: CentralServer): void {
    this.#servers.set(server.hostname, server);
  }

  /** A server leaves the cluster: Central no longer lists it. */
  removeServer(hostname: string): void {
    this.#servers.delete(hostname);
  }

  /** Replaces the faults (an empty object clears them). */
  setFaults(faults: CentralFaults): void {
    this.#faults = { ...faults };
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://central");
    res.on("close", () =>
      this.requests.push({ path: `${url.pathname}${url.search}`, status: res.statusCode }),
    );
    if (req.method !== "GET") return this.#error(res, 405, "method not allowed");
    if (this.#options.bearer && req.headers.authorization !== `Bearer ${this.#options.bearer}`) {
      return this.#error(res, 401, "unauthorized");
    }
    const path = url.pathname;
    if (path === `${API}/episodes`) return this.#episodeList(url, res);
    if (!path.startsWith(`${API}/streamers`)) return this.#error(res, 404, "not found");
    const rest = path.slice(`${API}/streamers`.length);
    const streams = /^\/([^/]+)\/streams$/.exec(rest);
    const kind = streams ? "streams" : "streamers";
    const f = this.#faults;
    if ((f.target ?? "all") === "all" || f.target === kind) {
      if (f.failNext && f.failNext > 0) {
        f.failNext--;
        return this.#error(res, f.errorStatus ?? 503, "injected");
      }
    }
    if (rest === "" || rest === "/") return this.#streamerList(url, res);
    if (streams) {
      const hostname = decodeURIComponent(streams[1]!);
      const server = this.#servers.get(hostname);
      if (!server) return this.#error(res, 404, `streamer ${hostname} not found`);
      if (f.refuseStreamsOf === hostname) return this.#error(res, 403, "Streamer unathorized");
      const all = server.sim.streamConfigs().sort((a, b) => String(a.name).localeCompare(String(b.name)));
      const page = this.#page(all, url);
      const select = url.searchParams.get("select");
      return this.#json(res, 200, {
        streams: page.items.map((s) => selectFields(s, select)),
        estimated_count: all.length,
        next: page.next,
        prev: page.prev,
      });
    }
    const one = /^\/([^/]+)$/.exec(rest);
    const server = one ? this.#servers.get(decodeURIComponent(one[1]!)) : undefined;
    if (!server) return this.#error(res, 404, "streamer not found");
    return this.#json(res, 200, this.#entry(server));
  }

  /**
   * episodes_list (paths/central/episodes.yml): every server's episodes, `media` the stream's
   * name, in pages; a server's `episodesFault` breaks the whole list, as Central's own failure.
   */
  #episodeList(url: URL, res: ServerResponse): void {
    const servers = [...this.#servers.values()].sort((a, b) => a.hostname.localeCompare(b.hostname));
    for (const s of servers) if (s.sim.answerEpisodesFault(res)) return;
    const all = servers.flatMap((s) => s.sim.episodes()).sort((a, b) => a.episode_id - b.episode_id);
    const page = this.#page(all, url);
    this.#json(res, 200, { episodes: page.items, next: page.next, prev: page.prev });
  }

  /** components/schemas/central/streamer_node.yml: peer_config fields, `role`, required `cluster_key`. */
  #entry(s: CentralServer): Record<string, unknown> {
    const url = s.apiUrl ?? s.sim.url;
    return {
      hostname: s.hostname,
      role: s.role ?? "streamer",
      api_url: url,
      private_payload_url: url,
      public_payload_url: url,
      cluster_key: s.clusterKey ?? "sim-cluster-key",
      stats: { hostname: s.hostname },
    };
  }

  #streamerList(url: URL, res: ServerResponse): void {
    const all = [...this.#servers.values()].sort((a, b) => a.hostname.localeCompare(b.hostname));
    const page = this.#page(all, url);
    this.#json(res, 200, {
      streamers: page.items.map((s) => this.#entry(s)),
      estimated_count: all.length,
      next: page.next,
      prev: page.prev,
    });
  }

  #page<T>(items: T[], url: URL): { items: T[]; next: string | null; prev: string | null } {
    const limit = Math.min(
      Number(url.searchParams.get("limit") ?? 100) || 100,
      this.#options.pageSize ?? Number.POSITIVE_INFINITY,
    );
    const cursor = url.searchParams.get("cursor");
    // Opaque cursors with '+', '/' or '=' as real ones have: the client must URL-encode them.
    const offset = cursor ? Number(Buffer.from(cursor, "base64").toString("latin1").slice(3)) : 0;
    const encode = (n: number) => Buffer.from(`>>?${n}`, "latin1").toString("base64");
    return {
      items: items.slice(offset, offset + limit),
      next: offset + limit < items.length ? encode(offset + limit) : null,
      prev: offset > 0 ? encode(Math.max(0, offset - limit)) : null,
    };
  }

  #json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  }

  /** components/schemas/error_response.yml: `{errors: [{status, title}]}`. */
  #error(res: ServerResponse, status: number, title: string): void {
    this.#json(res, status, { errors: [{ status: String(status), title }] });
  }
}
