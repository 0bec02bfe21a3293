/**
 * Reads and writes of the small JSON objects of the backup's bookkeeping (manifests, catalogs,
 * records, the control switch) without the AWS SDK's per-request middleware stack: one SigV4-signed
 * request on undici's keep-alive pool (the signature is checked against the SDK's own signer,
 * @smithy/signature-v4, in test/store/lean-s3-signing.test.ts; the emulator does not check
 * signatures, AWS does). The planner reads and writes a manifest per stream on every
 * run; through the SDK each request costs about 0.6 to 0.9 ms of CPU (middleware resolution,
 * endpoint rules, checksum and signing layers, schema serde), directly about 0.15 ms, which is what
 * lets one planning run over 10,000 streams stay within seconds of CPU (bench figure 5).
 *
 * Everything the request needs comes from the S3 client it stands beside, so both say the same:
 * its credentials provider, region, endpoint rules (custom endpoint, path style, FIPS, dual-stack),
 * retry budget (maxAttempts) and socket timeouts. What the SDK would do on failure is done here too:
 * throttling, transient and 5xx answers and network errors are tried again with the SDK's standard
 * back-off, a clock-skew answer corrects the clock once, and what is left is thrown as an
 * S3ServiceException with the HTTP status (callers tell 404 and 412 apart by it, as with the SDK).
 * `forClient` declines (undefined: use the SDK) when the client carries middleware of ours that
 * changes requests (`--no-s3-checksums`, `--no-conditional-writes`) or when the endpoint rules ask
 * for anything but plain SigV4 for S3 (S3 Express, access point ARNs, SigV4a).
 */
import { createHmac, createSecretKey, hash, type KeyObject } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { type S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import type { Dispatcher } from "undici";
import { Pool } from "../shared/undici-pool.ts";

/** An answer of S3 to a GET: the body as text and the object's ETag. */
export interface LeanObject {
  text: string;
  etag: string | undefined;
}

interface Identity {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
  expiration?: Date | undefined;
}

interface Answer {
  status: number;
  body: Buffer;
  etag: string | undefined;
  /** The server's clock (Date header), ms. */
  date: number | undefined;
}

interface Target {
  /** The bucket's base URL, no trailing slash (path style: ends in /bucket). */
  base: URL;
  signingRegion: string;
  maxAttempts: number;
  connectionTimeoutMs: number;
  socketTimeoutMs: number;
}

const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const THROTTLING = new Set([
  "BandwidthLimitExceeded",
  "RequestLimitExceeded",
  "RequestThrottled",
  "RequestThrottledException",
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "TooManyRequestsException",
]);
const TRANSIENT = new Set(["TimeoutError", "RequestTimeout", "RequestTimeoutException"]);
/**
 * The error names the SDK reads as clock skew (InvalidSignatureException: "Signature expired" from the
 * JSON-protocol services, SQS among them).
 */
const CLOCK_SKEW = new Set([
  "AuthFailure",
  "InvalidSignatureException",
  "RequestExpired",
  "RequestInTheFuture",
  "RequestTimeTooSkewed",
  "SignatureDoesNotMatch",
]);
const NETWORK = new Set([
  // undici's codes for a socket closed or silent, a connection not made in time
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);
/** Middleware of local/aws-clients.ts that changes S3 requests: then the SDK does them all. */
const OUR_REQUEST_MIDDLEWARE = /^flussonicBackup/;

export type Resolvable<T> = T | (() => T | Promise<T>) | undefined;
export async function resolve<T>(v: Resolvable<T>): Promise<T | undefined> {
  return typeof v === "function" ? await (v as () => T | Promise<T>)() : v;
}

export class LeanS3 {
  readonly #s3: S3Client;
  readonly #bucket: string;
  #target: Promise<Target> | undefined;
  #identity: Identity | undefined;
  readonly #signingKeys = new SigningKeys("s3");
  /** The server's clock minus ours, ms (corrected once from a clock-skew answer). */
  readonly #clock = { offsetMs: 0 };
  #pool: Pool | undefined;

  private constructor(s3: S3Client, bucket: string) {
    this.#s3 = s3;
    this.#bucket = bucket;
  }

  /** A lean path beside `s3`, or undefined when requests must go through the SDK (see above). */
  static forClient(s3: S3Client, bucket: string): LeanS3 | undefined {
    const stack = (s3 as { middlewareStack?: { identify?: () => string[] } }).middlewareStack;
    const names = stack?.identify?.() ?? [];
    if (names.some((n) => OUR_REQUEST_MIDDLEWARE.test(n))) return undefined;
    const config = (s3 as { config?: { endpointProvider?: unknown } }).config;
    if (typeof config?.endpointProvider !== "function") return undefined;
    return new LeanS3(s3, bucket);
  }

  /** Closes idle sockets (keep-alive ones are unreferenced already: they never hold a process). */
  destroy(): void {
    void this.#pool?.destroy().catch(() => undefined);
    this.#pool = undefined;
  }

  /**
   * The object's text and ETag; undefined when there is none (404). With `ifNoneMatch` (the ETag of
   * a copy the caller holds) a conditional GET: "not modified" when S3 answers 304 (no body sent).
   */
  async get(key: string): Promise<LeanObject | undefined>;
  async get(key: string, ifNoneMatch: string): Promise<LeanObject | undefined | "not modified">;
  async get(key: string, ifNoneMatch?: string): Promise<LeanObject | undefined | "not modified"> {
    const res = await this.#send("GET", key, undefined, ifNoneMatch ? { "if-none-match": ifNoneMatch } : {});
    if (res.status === 404) return undefined;
    if (res.status === 304) return "not modified";
    return { text: res.body.toString("utf8"), etag: res.etag };
  }

  /** As `get`, the body as bytes (an object that is not text: a manifest snapshot). */
  async getBytes(
    key: string,
    ifNoneMatch?: string,
  ): Promise<{ bytes: Buffer; etag: string | undefined } | undefined | "not modified"> {
    const res = await this.#send("GET", key, undefined, ifNoneMatch ? { "if-none-match": ifNoneMatch } : {});
    if (res.status === 404) return undefined;
    if (res.status === 304) return "not modified";
    return { bytes: res.body, etag: res.etag };
  }

  /** Writes an object; `conditions` are If-Match / If-None-Match. Returns its ETag. */
  async put(
    key: string,
    body: string | Uint8Array,
    contentType: string,
    conditions: { ifMatch?: string; ifNoneMatch?: string } = {},
  ): Promise<string | undefined> {
    // Encoded once: hashed twice and sent (each of those would encode a string again).
    const bytes = typeof body === "string" ? Buffer.from(body) : body;
    const headers: Record<string, string> = {
      "content-type": contentType,
      // S3 refuses an upload without Content-MD5 (or a checksum) into a bucket with Object Lock
      // retention; a few microseconds for these small objects.
      "content-md5": hash("md5", bytes, "base64"),
    };
    if (conditions.ifMatch) headers["if-match"] = conditions.ifMatch;
    if (conditions.ifNoneMatch) headers["if-none-match"] = conditions.ifNoneMatch;
    const res = await this.#send("PUT", key, bytes, headers);
    return res.etag;
  }

  /**
   * One page of a listing (ListObjectsV2) of `prefix`: each object's key, size and ETag, and the
   * token of the next page. Parsed here, not by the SDK's XML deserializer, which took about 20 ms
   * of CPU for a page of 1,000 keys (every field of every object, dates parsed); this reads three.
   * Anything but a 200 with a ListBucketResult is an error (never an empty listing).
   */
  async listPage(prefix: string, token?: string, maxKeys?: number): Promise<LeanListPage> {
    const query: [string, string][] = [
      ["list-type", "2"],
      ["prefix", prefix],
    ];
    if (token) query.push(["continuation-token", token]);
    if (maxKeys) query.push(["max-keys", String(maxKeys)]);
    const res = await this.#send("GET", "", undefined, {}, canonicalQuery(query));
    if (res.status !== 200) throw s3Failure(res);
    const page = parseListPage(res.body.toString("utf8"));
    if (!page) {
      throw new S3ServiceException({
        name: "MalformedListing",
        $fault: "server",
        $metadata: { httpStatusCode: res.status },
        message: `the listing of ${prefix} is not a ListBucketResult`,
      });
    }
    return page;
  }

  /**
   * Resolved once: the endpoint by the client's own rules (the same URL the SDK would use for this
   * bucket), its signing region, the retry budget and the socket timeouts.
   */
  #resolveTarget(): Promise<Target> {
    this.#target ??= (async () => {
      const c = this.#s3.config as unknown as Record<string, Resolvable<unknown>> & {
        endpointProvider: (
          params: Record<string, unknown>,
          context?: unknown,
        ) => { url: URL; properties?: { authSchemes?: Record<string, unknown>[] } };
        isCustomEndpoint?: boolean;
        requestHandler?: { configProvider?: Promise<Record<string, unknown>> };
      };
      const region = String(await resolve(c.region));
      // The endpoint given to the client, else one configured for S3 outside the code
      // (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the config file), as the SDK looks them up.
      let endpointUrl: string | undefined;
      if (c.isCustomEndpoint) {
        const custom = (await resolve(c.endpoint)) as {
          protocol: string;
          hostname: string;
          port?: number;
          path: string;
        };
        endpointUrl = `${custom.protocol}//${custom.hostname}${custom.port ? `:${custom.port}` : ""}${custom.path}`;
      } else if (!(await resolve(c.ignoreConfiguredEndpointUrls))) {
        if (typeof c.serviceConfiguredEndpoint === "function") {
          const configured = await resolve(c.serviceConfiguredEndpoint);
          if (configured) endpointUrl = String(configured);
        } else if (process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL) {
          throw new LeanUnsupportedError("an endpoint configured outside the client");
        }
      }
      const params: Record<string, unknown> = {
        Bucket: this.#bucket,
        Region: region,
        UseFIPS: Boolean(await resolve(c.useFipsEndpoint)),
        UseDualStack: Boolean(await resolve(c.useDualstackEndpoint)),
        ForcePathStyle: Boolean(await resolve(c.forcePathStyle)),
        Accelerate: Boolean(await resolve(c.useAccelerateEndpoint)),
        UseGlobalEndpoint: Boolean(await resolve(c.useGlobalEndpoint)),
        UseArnRegion: Boolean(await resolve(c.useArnRegion)),
        DisableMultiRegionAccessPoints: Boolean(await resolve(c.disableMultiregionAccessPoints)),
        DisableS3ExpressSessionAuth: Boolean(await resolve(c.disableS3ExpressSessionAuth)),
        ...(endpointUrl ? { Endpoint: endpointUrl } : {}),
      };
      const endpoint = c.endpointProvider(params, {});
      const scheme = endpoint.properties?.authSchemes?.[0];
      if (scheme && (scheme.name !== "sigv4" || scheme.signingName !== "s3")) {
        throw new LeanUnsupportedError(`endpoint auth scheme ${String(scheme.name)}`);
      }
      const base = new URL(endpoint.url.href.replace(/\/+$/, ""));
      const handler = (await c.requestHandler?.configProvider) ?? {};
      return {
        base,
        signingRegion: String(scheme?.signingRegion ?? region),
        maxAttempts: Math.max(1, Number((await resolve(c.maxAttempts)) ?? 3)),
        connectionTimeoutMs: Number(handler.connectionTimeout ?? 10_000) || 10_000,
        socketTimeoutMs: Number(handler.socketTimeout ?? handler.requestTimeout ?? 0) || 0,
      };
    })();
    return this.#target;
  }

  async #credentials(): Promise<Identity> {
    const id = this.#identity;
    if (id && (!id.expiration || id.expiration.getTime() - Date.now() > 5 * 60_000)) return id;
    const provider = (this.#s3.config as { credentials?: Resolvable<Identity> }).credentials;
    const fresh = await resolve(provider);
    if (!fresh?.accessKeyId || !fresh.secretAccessKey) {
      throw new LeanUnsupportedError("the S3 client has no credentials");
    }
    this.#identity = fresh;
    return fresh;
  }

  async #send(
    method: "GET" | "PUT",
    key: string,
    body: string | Uint8Array | undefined,
    extra: Record<string, string>,
    query = "",
  ): Promise<Answer> {
    const target = await this.#resolveTarget();
    return sendWithRetries({
      maxAttempts: target.maxAttempts,
      once: () => this.#once(target, method, key, body, extra, query),
      answered: (res) => res.status < 300 || (method === "GET" && (res.status === 404 || res.status === 304)),
      failure: s3Failure,
      clock: this.#clock,
      forgetCredentials: () => {
        this.#identity = undefined;
      },
    });
  }

  async #once(
    target: Target,
    method: "GET" | "PUT",
    key: string,
    body: string | Uint8Array | undefined,
    extra: Record<string, string>,
    query: string,
  ): Promise<Answer> {
    const id = await this.#credentials();
    const path = `${target.base.pathname === "/" ? "" : target.base.pathname}/${encodeKey(key)}`;
    const host = target.base.host;
    const now = new Date(Date.now() + this.#clock.offsetMs);
    const amzDate = now.toISOString().replace(/[-:]|\.\d{3}/g, "");
    const day = amzDate.slice(0, 8);
    const headers: Record<string, string> = {};
    for (const [n, v] of signS3Request({
      method,
      path,
      query,
      host,
      body,
      amzDate,
      region: target.signingRegion,
      accessKeyId: id.accessKeyId,
      sessionToken: id.sessionToken,
      signingKey: this.#signingKeys.of(day, target.signingRegion, id.secretAccessKey),
    })) {
      headers[n] = v;
    }
    headers["content-length"] = String(body === undefined ? 0 : Buffer.byteLength(body));
    Object.assign(headers, extra);
    let res: Answered;
    try {
      res = await dispatchRequest(this.#connections(target), {
        method,
        path: query ? `${path}?${query}` : path,
        headers,
        ...(body === undefined ? {} : { body }),
      });
    } catch (error) {
      throw asSdkTimeout(error);
    }
    const header = (name: string) => {
      const v = res.headers[name];
      return Array.isArray(v) ? v.at(-1) : v;
    };
    const date = Date.parse(header("date") ?? "");
    return {
      status: res.statusCode,
      body: res.body,
      etag: header("etag"),
      date: Number.isNaN(date) ? undefined : date,
    };
  }

  #connections(target: Target): Pool {
    this.#pool ??= new Pool(target.base.origin, {
      connect: { timeout: target.connectionTimeoutMs },
      headersTimeout: target.socketTimeoutMs,
      bodyTimeout: target.socketTimeoutMs,
    });
    return this.#pool;
  }
}

interface Answered {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * One request through undici's dispatcher with plain callbacks, the answer's body gathered into one
 * Buffer: its `request` API wraps every answer in a stream, about a third of undici's CPU for these
 * small answers. Errors (a socket closed, the pool's timeouts) reject as with `request`.
 */
function dispatchRequest(pool: Dispatcher, options: Dispatcher.DispatchOptions): Promise<Answered> {
  return new Promise((resolve, reject) => {
    let statusCode = 0;
    let headers: IncomingHttpHeaders = {};
    let chunks: Buffer[] = [];
    pool.dispatch(options, {
      onRequestStart() {},
      onResponseStart(_controller, status, answered) {
        // Called again after an informational (1xx) answer: the last one is the answer.
        statusCode = status;
        headers = answered;
        chunks = [];
      },
      onResponseData(_controller, chunk) {
        chunks.push(chunk);
      },
      onResponseEnd() {
        resolve({ statusCode, headers, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) });
      },
      onResponseError(_controller, error) {
        reject(error);
      },
    });
  });
}

/**
 * SigV4 signing key of a service for a day (YYYYMMDD) and region, as a KeyObject (an HMAC keyed by a
 * KeyObject costs a quarter of the CPU of one keyed by a Buffer).
 */
export function sigV4SigningKey(secret: string, day: string, region: string, service: string): KeyObject {
  const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data).digest();
  return createSecretKey(hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), service), "aws4_request"));
}

/** SigV4 signing key of S3 for a day (YYYYMMDD) and region. */
export function s3SigningKey(secret: string, day: string, region: string): KeyObject {
  return sigV4SigningKey(secret, day, region, "s3");
}

/** A service's signing key, derived once and kept for its day, region and secret. */
export class SigningKeys {
  readonly #service: string;
  #kept: { day: string; region: string; secret: string; key: KeyObject } | undefined;

  constructor(service: string) {
    this.#service = service;
  }

  of(day: string, region: string, secret: string): KeyObject {
    const k = this.#kept;
    if (k && k.day === day && k.region === region && k.secret === secret) return k.key;
    const key = sigV4SigningKey(secret, day, region, this.#service);
    this.#kept = { day, region, secret, key };
    return key;
  }
}

/**
 * Signs a request (SigV4, payload hash signed): `headers` are the signed headers, lower-case and in
 * name order; they come back with the authorization header added. `amzDate` is YYYYMMDDTHHMMSSZ.
 */
export function signSigV4(r: {
  method: string;
  path: string;
  /** The canonical query string; none by default. */
  query?: string | undefined;
  headers: [string, string][];
  payloadHash: string;
  amzDate: string;
  region: string;
  service: string;
  accessKeyId: string;
  signingKey: KeyObject;
}): [string, string][] {
  const signed = r.headers;
  const names = signed.map(([n]) => n).join(";");
  const canonical = `${r.method}\n${r.path}\n${r.query ?? ""}\n${signed.map(([n, v]) => `${n}:${v.trim()}\n`).join("")}\n${names}\n${r.payloadHash}`;
  const scope = `${r.amzDate.slice(0, 8)}/${r.region}/${r.service}/aws4_request`;
  const toSign = `AWS4-HMAC-SHA256\n${r.amzDate}\n${scope}\n${hash("sha256", canonical, "hex")}`;
  const signature = createHmac("sha256", r.signingKey).update(toSign).digest("hex");
  signed.push([
    "authorization",
    `AWS4-HMAC-SHA256 Credential=${r.accessKeyId}/${scope}, SignedHeaders=${names}, Signature=${signature}`,
  ]);
  return signed;
}

/**
 * The signed headers of an S3 request (SigV4, payload hash signed, the query string canonical; S3 paths are
 * encoded once, as `encodeKey` does): host, x-amz-content-sha256, x-amz-date, the session token when
 * there is one, and authorization. `amzDate` is YYYYMMDDTHHMMSSZ.
 */
export function signS3Request(r: {
  method: string;
  path: string;
  /** The canonical query string (canonicalQuery), sent as it is; none by default. */
  query?: string;
  host: string;
  body: string | Uint8Array | undefined;
  amzDate: string;
  region: string;
  accessKeyId: string;
  sessionToken?: string | undefined;
  signingKey: KeyObject;
}): [string, string][] {
  const payloadHash = r.body?.length ? hash("sha256", r.body, "hex") : EMPTY_SHA256;
  const signed: [string, string][] = [
    ["host", r.host],
    ["x-amz-content-sha256", payloadHash],
    ["x-amz-date", r.amzDate],
  ];
  if (r.sessionToken) signed.push(["x-amz-security-token", r.sessionToken]);
  return signSigV4({ ...r, headers: signed, payloadHash, service: "s3" });
}

/** One page of a listing: the objects (key, size, ETag as listed) and the next page's token. */
export interface LeanListPage {
  objects: { key: string; size: number; etag?: string }[];
  next: string | undefined;
}

/**
 * A SigV4 canonical query string, which is also sent as it is: parameters sorted by name, names and
 * values RFC 3986-encoded (everything but unreserved characters).
 */
export function canonicalQuery(params: readonly [string, string][]): string {
  const enc = (v: string) =>
    encodeURIComponent(v).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return params
    .map(([k, v]) => [enc(k), enc(v)] as const)
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
}

/**
 * A ListObjectsV2 answer's objects (key, size, ETag) and next token, or undefined when the body is
 * not a ListBucketResult. Text is XML-unescaped (S3 writes an ETag's quotes as `&quot;`).
 */
export function parseListPage(xml: string): LeanListPage | undefined {
  if (!/<ListBucketResult[\s>]/.test(xml)) return undefined;
  const objects: LeanListPage["objects"] = [];
  for (const m of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
    const c = m[1]!;
    const key = xmlTag(c, "Key");
    if (key === undefined) continue;
    const etag = xmlTag(c, "ETag");
    objects.push({ key, size: Number(xmlTag(c, "Size") ?? 0), ...(etag ? { etag } : {}) });
  }
  const next = xmlTag(xml, "IsTruncated") === "true" ? xmlTag(xml, "NextContinuationToken") : undefined;
  return { objects, next: next || undefined };
}

/** The unescaped text of the first `<name>` element in `xml`. */
function xmlTag(xml: string, name: string): string | undefined {
  const open = xml.indexOf(`<${name}>`);
  if (open < 0) return undefined;
  const start = open + name.length + 2;
  const end = xml.indexOf(`</${name}>`, start);
  if (end < 0) return undefined;
  const text = xml.slice(start, end);
  return text.includes("&") ? unescapeXml(text) : text;
}

function unescapeXml(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|quot|amp|lt|gt|apos);/g, (_, e: string) => {
    if (e[0] === "#")
      return String.fromCodePoint(e[1] === "x" ? Number.parseInt(e.slice(2), 16) : Number(e.slice(1)));
    return { quot: '"', amp: "&", lt: "<", gt: ">", apos: "'" }[e as "quot"]!;
  });
}

/** The lean path cannot serve this client (the caller uses the SDK). */
export class LeanUnsupportedError extends Error {
  readonly code = "FB_LEAN_UNSUPPORTED";
}

/** A key in a URL path, as the SDK writes S3 keys: each segment RFC 3986-encoded, slashes kept. */
export function encodeKey(key: string): string {
  // The backup's keys are percent-encoded already (names.ts) and mostly need nothing more.
  if (/^[A-Za-z0-9._~/-]*$/.test(key)) return key;
  return key
    .split("/")
    .map((s) =>
      encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`),
    )
    .join("/");
}

/**
 * One request tried as the SDK's standard retry strategy does, for the lean paths (S3 and SQS):
 * network errors, throttling, transient and 5xx answers and an expired token (credentials read
 * again) are tried again with the standard back-off up to `maxAttempts`; a clock-skew answer takes
 * the server's clock and signs again, once, without counting an attempt. What `answered` accepts is
 * returned; any other answer is thrown as `failure` makes it.
 */
export async function sendWithRetries<A extends { status: number; date: number | undefined }>(o: {
  maxAttempts: number;
  once: () => Promise<A>;
  answered: (res: A) => boolean;
  failure: (res: A) => Error;
  clock: { offsetMs: number };
  forgetCredentials: () => void;
}): Promise<A> {
  let skewCorrected = false;
  for (let attempt = 1; ; attempt++) {
    let res: A;
    try {
      res = await o.once();
    } catch (error) {
      if (!isNetworkError(error) || attempt >= o.maxAttempts) throw error;
      await backoff(attempt, false);
      continue;
    }
    if (o.answered(res)) return res;
    const failure = o.failure(res);
    if (CLOCK_SKEW.has(failure.name) && !skewCorrected && res.date !== undefined) {
      // As the SDK does: take the server's clock and sign again, once.
      const offset = res.date - Date.now();
      if (Math.abs(offset - o.clock.offsetMs) > 4 * 60_000) {
        o.clock.offsetMs = offset;
        skewCorrected = true;
        attempt--;
        continue;
      }
    }
    if (failure.name === "ExpiredToken") o.forgetCredentials();
    const throttled = res.status === 429 || THROTTLING.has(failure.name);
    const retryable =
      throttled ||
      TRANSIENT.has(failure.name) ||
      (res.status >= 500 && res.status <= 599) ||
      failure.name === "ExpiredToken";
    if (!retryable || attempt >= o.maxAttempts) throw failure;
    await backoff(attempt, throttled);
  }
}

/** The SDK's standard back-off: a random wait up to base x 2^(attempt-1), at most 20 s. */
function backoff(attempt: number, throttled: boolean): Promise<void> {
  const base = throttled ? 500 : 100;
  return new Promise((r) => setTimeout(r, Math.random() * Math.min(20_000, base * 2 ** (attempt - 1))));
}

/** undici's timeouts as the SDK's HTTP handler reports them (a TimeoutError), for the same handling. */
export function asSdkTimeout(error: unknown): unknown {
  const code = (error as { code?: string } | undefined)?.code ?? "";
  if (!/^UND_ERR_(CONNECT|HEADERS|BODY)_TIMEOUT$/.test(code)) return error;
  return Object.assign(new Error((error as Error).message, { cause: error }), {
    name: "TimeoutError",
    code: "ETIMEDOUT",
  });
}

function isNetworkError(e: unknown): boolean {
  const err = e as { code?: string; name?: string; message?: string } | undefined;
  return (
    NETWORK.has(err?.code ?? "") || err?.name === "TimeoutError" || /socket hang up/.test(err?.message ?? "")
  );
}

/** An S3 error answer as the SDK would throw it: name = the XML Code, status in $metadata. */
function s3Failure(res: { status: number; body: Buffer }): S3ServiceException {
  const xml = res.body.toString("utf8");
  const code = /<Code>([^<]*)<\/Code>/.exec(xml)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(xml)?.[1];
  const name =
    code ??
    (res.status === 404
      ? "NotFound"
      : res.status === 412
        ? "PreconditionFailed"
        : res.status === 503
          ? "ServiceUnavailable"
          : `HTTP${res.status}`);
  return new S3ServiceException({
    name,
    $fault: res.status >= 500 ? "server" : "client",
    $metadata: { httpStatusCode: res.status },
    message: message ?? name,
  });
}
