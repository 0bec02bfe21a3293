/**
 * `flussonic-backup serve`: plays the backup. A local HTTP server (local/playback-server.ts) in
 * front of the playback handler answers Flussonic's DVR playback URLs under
 * `/{source}/{stream}/…`, serves the stored media with HTTP Range, and `/` is a page with a
 * coverage timeline per stream and a player. The backup is found like `status` and `verify` find
 * it (`--config` with AWS endpoints, `--embedded [dir]`, or `--demo [dir]`).
 */
import { isIP } from "node:net";
import { hostname } from "node:os";
import { join } from "node:path";
import { lazyJpegDecoder } from "../../functions/playback/frame-decoder.ts";
import { createPlaybackHandler } from "../../functions/playback/handler.ts";
import { parseTokenKeys, tokenProblem } from "../../functions/playback/token.ts";
import { FragmentIndexStore } from "../../functions/store/fragment-index-store.ts";
import { S3ImageCache } from "../../functions/store/image-cache.ts";
import { startPlaybackServer } from "../../local/playback-server.ts";
import { type BackupTarget, openBackupTarget, type TargetOptions } from "./backup-target.ts";
import { UsageError } from "./usage-error.ts";

export interface ServeOptions extends TargetOptions {
  host: string;
  port: number;
  /** false with `--no-auth`. */
  auth: boolean;
  /** `--cors-origin` (repeatable or comma-separated): origins whose players may read answers. */
  corsOrigin?: readonly string[];
  /** `--allowed-host` (repeatable or comma-separated): more names accepted in `Host`. */
  allowedHost?: readonly string[];
  /** `--upstream`: the Flussonic server to forward its own playback URLs to while it answers. */
  upstream?: string;
  /** `--upstream-timeout` (ms, default 3000). */
  upstreamTimeoutMs?: number;
  out?: { write(s: string): unknown };
  /** Resolves when the server should stop (default: SIGINT or SIGTERM). */
  until?: Promise<unknown>;
}

/** A host name or address that only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (isIP(h) === 6) return h === "::1" || h === "0:0:0:0:0:0:0:1" || /^::ffff:127\./.test(h);
  return false;
}

export async function serveCommand(o: ServeOptions): Promise<number> {
  const out = o.out ?? process.stdout;
  if (!o.auth && !isLoopbackHost(o.host)) {
    throw new UsageError(
      `--no-auth: refused on --host ${o.host}, which other machines can reach; serve without tokens only on a loopback host (127.0.0.1, ::1, localhost), or drop --no-auth and hand out playback tokens`,
    );
  }
  const corsOrigins = (o.corsOrigin ?? [])
    .flatMap((v) => v.split(","))
    .map((v) => v.trim())
    .filter(Boolean);
  for (const origin of corsOrigins) {
    if (origin !== "*" && originOf(origin) !== origin) {
      throw new UsageError(
        `--cors-origin ${origin}: not an origin; give scheme://host[:port] (e.g. https://player.example), or * for any`,
      );
    }
  }
  const allowedHosts = (o.allowedHost ?? [])
    .flatMap((v) => v.split(","))
    .map((v) => v.trim())
    .filter(Boolean);
  for (const name of allowedHosts) {
    if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(name)) {
      throw new UsageError(`--allowed-host ${name}: not a host name (letters, digits, '.' and '-')`);
    }
  }
  const upstreamUrl = o.upstream === undefined ? undefined : upstreamOrigin(o.upstream);
  const target = await openBackupTarget(o, { flussonic: false });
  try {
    const upstream =
      upstreamUrl === undefined
        ? undefined
        : {
            url: upstreamUrl,
            source: upstreamSource(target.config, upstreamUrl),
            timeoutMs: o.upstreamTimeoutMs ?? 3000,
          };
    const auth = o.auth ? playbackAuth(target.config) : undefined;
    const server = await listenOrExplain(o, () =>
      startPlaybackServer({
        host: o.host,
        port: o.port,
        config: target.config,
        s3: target.s3,
        store: target.store,
        checkToken: auth?.checkToken,
        corsOrigins,
        allowedHosts,
        ...(upstream ? { upstream } : {}),
        createHandler: (media) =>
          createPlaybackHandler({
            config: target.config,
            index: new FragmentIndexStore(target.store),
            readObject: media.readObject,
            mediaUrl: media.mediaUrl,
            now: () => Date.now(),
            tokenKeys: auth?.tokenKeys,
            // JPEG previews and thumbnails decode key frames with ffmpeg (frame-decoder.ts):
            // without one they answer 501 and everything else plays.
            decodeJpeg: lazyJpegDecoder(),
            imageCache: new S3ImageCache(target.s3, target.config.bucket, target.store.prefix),
          }),
      }),
    );
    const shown =
      o.host === "0.0.0.0" || o.host === "::"
        ? server.url.replace(/\/\/[^/]+:/, `//${hostname()}:`)
        : server.url;
    const example = target.config.sources[0]?.name ?? "SOURCE";
    const configArg = `--config ${o.demo ? join(o.demo === true ? ".demo" : o.demo, "config.json") : o.config}`;
    out.write(
      [
        `Serving the backup in bucket "${target.config.bucket}" at ${shown}/`,
        auth
          ? `Playback needs a token: print one with \`npx flussonic-backup playback-token ${configArg} --source ${example}\`, then open ${shown}/?token=<token>`
          : `No tokens (--no-auth, loopback only): open ${shown}/`,
        `Playlists: ${shown}/{source}/{stream}/index-{from}-{duration}.m3u8, timeshift_rel-{seconds}.m3u8, archive-{from}-{duration}.mp4, recording_status.json${auth ? " (each with ?token=)" : ""}`,
        ...(upstream
          ? [
              `Flussonic's URLs: ${shown}/{stream}/{file} is forwarded to ${upstream.url} while it answers, and served from the backup of source "${upstream.source}" when it does not`,
            ]
          : []),
        "Stop with Ctrl-C (SIGINT) or SIGTERM.",
        "",
      ].join("\n"),
    );
    await (o.until ?? untilSignal());
    await server.close();
    out.write("Stopped.\n");
    return 0;
  } finally {
    await target.close();
  }
}

/** The `--upstream` URL without a trailing slash; a usage error when it is not an http(s) base URL. */
function upstreamOrigin(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--upstream ${value}: not a URL; give the Flussonic server as http://host:port`);
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.search || url.hash || url.username) {
    throw new UsageError(
      `--upstream ${value}: give the Flussonic server as http(s)://host:port (a path prefix is allowed; no query, fragment or login)`,
    );
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

/** The configured source the upstream is: the one with its host name, or the only source. */
function upstreamSource(config: BackupTarget["config"], upstream: string): string {
  // By host name: the playback port may differ from the address the backup reads the API at.
  const host = new URL(upstream).hostname;
  const matching = config.sources.filter((s) => {
    try {
      return new URL(s.url).hostname === host;
    } catch {
      return false;
    }
  });
  if (matching.length === 1) return matching[0]!.name;
  if (matching.length === 0 && config.sources.length === 1) return config.sources[0]!.name;
  throw new UsageError(
    `--upstream ${upstream}: ${matching.length === 0 ? "no configured source has this server's address" : "several configured sources have this server's address"} (sources: ${config.sources.map((s) => s.name).join(", ")}); give the URL of one source's server`,
  );
}

/** `scheme://host[:port]` of a URL, or undefined when it is not one. */
function originOf(value: string): string | undefined {
  try {
    const origin = new URL(value).origin;
    return origin === "null" ? undefined : origin;
  } catch {
    return undefined;
  }
}

/** Starting the server; an address in use or not available here becomes one sentence saying what to do. */
async function listenOrExplain<T>(o: ServeOptions, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    const code = (error as { code?: string }).code;
    const where = `${o.host}:${o.port}`;
    if (code === "EADDRINUSE") {
      throw new UsageError(
        `serve: ${where} is already in use by another program; choose another --port (0: any free one)`,
      );
    }
    if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND" || code === "EAI_AGAIN") {
      throw new UsageError(
        `serve: --host ${o.host} is not an address of this machine; give one of its addresses (default 127.0.0.1)`,
      );
    }
    if (code === "EACCES") {
      throw new UsageError(
        `serve: not allowed to listen on ${where} (ports below 1024 need privileges); choose another --port`,
      );
    }
    throw error;
  }
}

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((done) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      done(signal);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}

/**
 * The token keys (the variable `playback.tokenKeysEnv` names) and the page's check of a token
 * against one stream; a usage error saying what to set when there is no usable key.
 */
function playbackAuth(config: BackupTarget["config"]): {
  tokenKeys: string[];
  checkToken(token: string | undefined, wanted: { source: string; stream: string }): string | undefined;
} {
  const variable = config.playback.tokenKeysEnv;
  let tokenKeys: string[];
  try {
    tokenKeys = parseTokenKeys(variable, process.env[variable]);
  } catch (error) {
    throw new UsageError(
      `serve: ${error instanceof Error ? error.message : String(error)}; or, on this machine only, serve with --no-auth`,
    );
  }
  return {
    tokenKeys,
    checkToken: (token, wanted) => tokenProblem(token, tokenKeys, wanted, Math.floor(Date.now() / 1000)),
  };
}
