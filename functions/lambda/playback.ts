/**
 * Lambda entry of playback in AWS (infra/playback-distribution.ts): a function URL (IAM auth,
 * reached only through CloudFront's origin access control) in front of the pure playback handler
 * (functions/playback/handler.ts). It parses the function-URL event, calls the handler and maps
 * its answer; the media bytes never pass through it, they come from the bucket through CloudFront
 * (`/_media/{key}`), addressed by CloudFront signed URLs (media-url.ts).
 *
 * Besides the playback URLs it answers what the page needs (the same page as `serve`):
 * `/` (the page), `/_assets/{page.js|page.css|hls.min.js}` (copied next to the bundle at synth)
 * and `/_api/streams.json?token=` (the coverage listing).
 *
 * Environment (set by the stack): BACKUP_CONFIG (the runtime config), PLAYBACK_TOKEN_SECRET (the
 * Secrets Manager secret with the token keys, "current,previous"), MEDIA_SIGNING_SECRET (the
 * CloudFront key pair's private key), MEDIA_KEY_PAIR_ID, MEDIA_URL_TTL_SECONDS.
 */
import { join } from "node:path";
import { Logger } from "@aws-lambda-powertools/logger";
import { SecretsProvider } from "@aws-lambda-powertools/parameters/secrets";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import type { LambdaFunctionURLEvent } from "aws-lambda";

/** What a function URL answers (the structured form). */
type LambdaFunctionURLResult = {
  statusCode: number;
  headers?: Record<string, string>;
  body?: string;
  isBase64Encoded?: boolean;
};

import { type BackupConfig, parseConfig } from "../config/config.ts";
import { ffmpegCandidates, lazyJpegDecoder } from "../playback/frame-decoder.ts";
import { createPlaybackHandler, type PlaybackHandler, type PlaybackResponse } from "../playback/handler.ts";
import { listCoverage } from "../playback/listing.ts";
import { cloudFrontMediaUrl, PLAYBACK_HOST_HEADER, viewerHost } from "../playback/media-url.ts";
import { type PageAsset, readPageAssets } from "../playback/page-assets.ts";
import { backupPath, parsePlaybackPath } from "../playback/routes.ts";
import { parseTokenKeys, tokenId, tokenProblem } from "../playback/token.ts";
import { BackupStore } from "../store/backup-store.ts";
import { FragmentIndexStore } from "../store/fragment-index-store.ts";
import { S3ImageCache } from "../store/image-cache.ts";

const logger = new Logger({ serviceName: "flussonic-backup-playback" });

/**
 * A buffered Lambda answer carries at most 6 MB, base64 included: a joined `archive-….mp4` larger
 * than this is refused with the alternatives (one stored window is a redirect, not a join).
 */
export const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/** How long a container keeps the secrets before reading them again (a rotation is seen within it). */
const SECRET_MAX_AGE_SECONDS = 300;

interface PlaybackEnvironment {
  config: BackupConfig;
  /** The request path in the backup's form (Flussonic's URLs of the origin group's server, mapped). */
  path(rawPath: string): string;
  store: BackupStore;
  handler(tokenKeys: readonly string[], signingKey: string, host: string): PlaybackHandler;
  secrets(): Promise<{ tokenKeys: string[]; signingKey: string }>;
}

let cached: Promise<PlaybackEnvironment> | undefined;

function environment(env: NodeJS.ProcessEnv = process.env): Promise<PlaybackEnvironment> {
  cached ??= Promise.resolve()
    .then(() => build(env))
    .catch((error: unknown) => {
      cached = undefined;
      throw error;
    });
  return cached;
}

function build(env: NodeJS.ProcessEnv): PlaybackEnvironment {
  const config = parseConfig(env.BACKUP_CONFIG ?? "", "BACKUP_CONFIG");
  const tokenSecret = required(env, "PLAYBACK_TOKEN_SECRET");
  const signingSecret = required(env, "MEDIA_SIGNING_SECRET");
  const keyPairId = required(env, "MEDIA_KEY_PAIR_ID");
  const ttlSeconds = Number(env.MEDIA_URL_TTL_SECONDS ?? 7200);
  const s3 = new S3Client({
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  const store = new BackupStore(s3, config.bucket, config.prefix);
  const index = new FragmentIndexStore(store);
  const imageCache = new S3ImageCache(s3, config.bucket, config.prefix);
  const decodeJpeg = lazyJpegDecoder(() =>
    ffmpegCandidates({
      FFMPEG_PATH: env.FFMPEG_PATH ?? join(env.LAMBDA_TASK_ROOT ?? ".", "playback-page", "ffmpeg"),
    }),
  );
  const provider = new SecretsProvider();
  const read = async (secret: string, what: string): Promise<string> => {
    let value: unknown;
    try {
      value = await provider.get(secret, { maxAge: SECRET_MAX_AGE_SECONDS });
    } catch (error) {
      throw new Error(
        `cannot read the ${what} from Secrets Manager secret ${secret}: ${error instanceof Error ? error.name : "unreadable"}`,
      );
    }
    if (typeof value !== "string" || value.trim() === "") {
      throw new Error(`Secrets Manager secret ${secret} (the ${what}) is empty or binary`);
    }
    return value.trim();
  };
  // The origin group's Flussonic server (PLAYBACK_UPSTREAM_SOURCE, set by the stack with
  // deployment.playback.upstream): its own URLs reach this function when it fails.
  const upstreamSource = env.PLAYBACK_UPSTREAM_SOURCE;
  const sourceNames = new Set(config.sources.map((s) => s.name));
  return {
    config,
    store,
    path: (rawPath) => (upstreamSource ? backupPath(rawPath, sourceNames, upstreamSource) : rawPath),
    async secrets() {
      const [tokens, signingKey] = await Promise.all([
        read(tokenSecret, "playback token keys"),
        read(signingSecret, "media URL signing key"),
      ]);
      return { tokenKeys: parseTokenKeys(`secret ${tokenSecret}`, tokens), signingKey };
    },
    handler: (tokenKeys, signingKey, host) =>
      createPlaybackHandler({
        config,
        index,
        readObject: async (key, range) => {
          const res = await s3.send(
            new GetObjectCommand({
              Bucket: config.bucket,
              Key: key,
              ...(range ? { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : {}),
            }),
          );
          return res.Body as AsyncIterable<Uint8Array>;
        },
        mediaUrl: (key, access) =>
          cloudFrontMediaUrl({
            key,
            prefix: config.prefix,
            access,
            host,
            keyPairId,
            privateKey: signingKey,
            ttlSeconds,
            nowSeconds: Math.floor(Date.now() / 1000),
          }),
        now: () => Date.now(),
        tokenKeys,
        // JPEG previews: the ffmpeg copied beside the bundle (infra/playback-distribution.ts), or
        // FFMPEG_PATH (frame-decoder.ts); none: 501.
        decodeJpeg,
        imageCache,
      }),
  };
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (!v) throw new Error(`${name} is not set: the playback function runs only as the stack deploys it`);
  return v;
}

export const handler = async (event: LambdaFunctionURLEvent): Promise<LambdaFunctionURLResult> => {
  const env = await environment();
  const method = event.requestContext?.http?.method ?? "GET";
  const path = env.path(event.rawPath || "/");
  const query: Record<string, string | undefined> = {};
  for (const [k, v] of new URLSearchParams(event.rawQueryString ?? "")) if (!(k in query)) query[k] = v;
  const headers: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(event.headers ?? {})) headers[k.toLowerCase()] = v;

  const page = pageAnswer(method, path);
  if (page) return page;
  const { tokenKeys, signingKey } = await env.secrets();
  // The viewer's host, copied by the distribution's viewer-request function (the origin request
  // to the function URL replaces Host): the signed media URLs are valid for that host only.
  const host = viewerHost(headers[PLAYBACK_HOST_HEADER]);
  const result =
    path === "/_api/streams.json"
      ? await streamsJson(env, tokenKeys, query.token)
      : !host
        ? text(
            500,
            `the request carries no viewer host (header ${PLAYBACK_HOST_HEADER}): the function signs media URLs only behind the stack's CloudFront distribution`,
          )
        : await toResult(await env.handler(tokenKeys, signingKey, host)({ method, path, query, headers }));
  logger.info(
    "playback request",
    requestLogFields(method, path, headers.range, query.token, result.statusCode),
  );
  return result;
};

/**
 * What one call logs, for "who watched what" (docs/playback.md): the stream and range asked for, the HTTP
 * Range, the answer's status and the token's id, a fingerprint that tells tokens apart; never the
 * token nor any other query string.
 */
export function requestLogFields(
  method: string,
  path: string,
  range: string | undefined,
  token: string | undefined,
  status: number,
): Record<string, string | number> {
  const route = parsePlaybackPath(path);
  const file = route.ok ? route.file : undefined;
  return {
    method,
    ...(route.ok ? { source: route.source, stream: route.stream, kind: file!.kind } : { path }),
    ...(file && "from" in file ? { from: file.from } : {}),
    ...(file && "duration" in file ? { duration: file.duration } : {}),
    ...(file && "seconds" in file ? { seconds: file.seconds } : {}),
    ...(range ? { range } : {}),
    status,
    ...(token ? { tokenId: tokenId(token) } : {}),
  };
}

/** The handler's answer as a function-URL result: binary bodies base64, CloudFront cache times. */
export async function toResult(a: PlaybackResponse): Promise<LambdaFunctionURLResult> {
  const headers = { ...a.headers };
  headers["Cache-Control"] = cdnCacheControl(headers["Cache-Control"], headers["Content-Type"]);
  const body = a.body;
  if (body === undefined) return { statusCode: a.status, headers };
  if (typeof body === "string") return { statusCode: a.status, headers, body };
  if (body instanceof Uint8Array) {
    return {
      statusCode: a.status,
      headers,
      body: Buffer.from(body).toString("base64"),
      isBase64Encoded: true,
    };
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > MAX_BUFFERED_BYTES) {
      return text(
        413,
        `the joined export is larger than the ${MAX_BUFFERED_BYTES / 1024 / 1024} MiB a Lambda answer can carry: ask for shorter ranges, for archive-{from}-{duration}.mp4 of exactly one stored window (a redirect to the media), or play the playlist`,
      );
    }
    chunks.push(chunk);
  }
  return {
    statusCode: a.status,
    headers,
    body: Buffer.concat(chunks).toString("base64"),
    isBase64Encoded: true,
  };
}

/**
 * Cache-Control for CloudFront (its cache key holds the token, so a cached answer is served only
 * to the same token): the handler's `private` VOD playlists become shareable for their max-age;
 * live and time-shift playlists (`no-cache`) are kept one second, so that many viewers of one
 * delayed channel cost one invocation per second; everything else is passed on.
 */
export function cdnCacheControl(value: string | undefined, contentType: string | undefined): string {
  if (!value) return "no-store";
  if (/mpegurl/i.test(contentType ?? "")) {
    if (value === "no-cache") return "max-age=1";
    const m = /^private,\s*max-age=(\d+)$/.exec(value);
    if (m) return `max-age=${m[1]}`;
  }
  return value;
}

async function streamsJson(
  env: PlaybackEnvironment,
  tokenKeys: readonly string[],
  token: string | undefined,
): Promise<LambdaFunctionURLResult> {
  const nowSeconds = Math.floor(Date.now() / 1000);
  const check = (source: string, stream: string) =>
    tokenProblem(token, tokenKeys, { source, stream }, nowSeconds);
  const json = (status: number, value: unknown): LambdaFunctionURLResult => ({
    statusCode: status,
    headers: { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store" },
    body: `${JSON.stringify(value)}\n`,
  });
  if (!token) return json(403, { auth: true, error: check("", "") });
  let refused: string | undefined;
  const listing = await listCoverage(env.config, env.store, nowSeconds, (source, stream) => {
    const problem = check(source, stream);
    refused ??= problem;
    return problem === undefined;
  });
  if (refused !== undefined && listing.sources.every((s) => s.streams.length === 0)) {
    return json(403, { auth: true, error: refused });
  }
  return json(200, { auth: true, ...listing });
}

let assets: Map<string, PageAsset> | undefined;

/** The page and its assets, copied beside the bundle (`playback-page/`) by the stack's bundling. */
function pageAssets(): Map<string, PageAsset> {
  if (assets) return assets;
  const dir = join(import.meta.dirname, "playback-page");
  const page = readPageAssets(dir, join(dir, "hls.min.js"));
  const html = { type: "text/html; charset=utf-8", body: page.html };
  assets = new Map([
    ["/", html],
    ["/index.html", html],
  ]);
  for (const [name, asset] of page.files) assets.set(`/_assets/${name}`, asset);
  return assets;
}

function pageAnswer(method: string, path: string): LambdaFunctionURLResult | undefined {
  if (path !== "/" && path !== "/index.html" && !path.startsWith("/_assets/")) return undefined;
  if (method !== "GET" && method !== "HEAD") {
    const refused = text(405, `${method} is not allowed: the page answers GET and HEAD`);
    return { ...refused, headers: { ...refused.headers, Allow: "GET, HEAD" } };
  }
  const asset = pageAssets().get(path);
  if (!asset) return text(404, "no such asset");
  return {
    statusCode: 200,
    headers: {
      "Content-Type": asset.type,
      // The page is small and changes with a deploy; the assets are cached at the edge for an hour.
      "Cache-Control": path.startsWith("/_assets/") ? "max-age=3600" : "max-age=60",
      "Content-Length": String(asset.body.length),
    },
    ...(method === "HEAD" ? {} : { body: asset.body.toString("base64"), isBase64Encoded: true }),
  };
}

function text(status: number, message: string): LambdaFunctionURLResult {
  return {
    statusCode: status,
    headers: { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" },
    body: `${message}\n`,
  };
}
