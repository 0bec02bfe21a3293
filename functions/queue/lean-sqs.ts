/**
 * The planner's SendMessageBatch without the AWS SDK's per-request middleware stack: one SigV4-signed
 * POST of the SQS JSON protocol (`X-Amz-Target: AmazonSQS.SendMessageBatch`, service `sqs`) on
 * undici's keep-alive pool, as functions/store/lean-s3.ts does for S3 (the signature is checked
 * against the SDK's own signer, @smithy/signature-v4, in test/queue/lean-sqs-signing.test.ts). Through
 * the SDK each batch costs about 1 ms of CPU; a planning run over 10,000 streams sends over a
 * thousand (bench figure 5).
 *
 * Everything comes from the SQS client it stands beside: credentials provider, region, endpoint
 * (a custom one, else the queue URL's host as the SDK's queueUrlMiddleware does, else the endpoint
 * rules), retry budget, socket timeouts and the MD5 check of the bodies SQS echoes. Throttling,
 * 5xx, transient answers and network errors are tried again with the SDK's back-off; what is left is
 * thrown as an SQSServiceException named as the SDK names it, with the same message. Entries SQS
 * fails are returned in `Failed` as the SDK returns them. `forClient` declines (undefined: use the
 * SDK) when the client carries middleware other than the SDK's own and the FIFO message group of
 * `markFifoMessageGroup`; the first send declines (LeanUnsupportedError) for endpoints it cannot be
 * sure of (one configured outside the client, an auth scheme other than SigV4 for `sqs`).
 */
import { createHash, type KeyObject } from "node:crypto";
import { type SQSClient, SQSServiceException } from "@aws-sdk/client-sqs";
import type { Dispatcher } from "undici";
import { Pool } from "../shared/undici-pool.ts";
import {
  asSdkTimeout,
  LeanUnsupportedError,
  type Resolvable,
  resolve,
  SigningKeys,
  sendWithRetries,
  signSigV4,
  sigV4SigningKey,
} from "../store/lean-s3.ts";

export interface BatchEntry {
  Id: string;
  MessageBody: string;
  /** FIFO queues: the entry's own group (else the client's, `markFifoMessageGroup`). */
  MessageGroupId?: string;
  MessageDeduplicationId?: string;
  /** Standard queues: seconds before the message can be received (0 to 900). */
  DelaySeconds?: number;
}

export interface BatchAnswer {
  Successful: { Id: string; MessageId?: string; MD5OfMessageBody?: string }[];
  Failed: { Id: string; SenderFault?: boolean; Code?: string; Message?: string }[];
}

interface Identity {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
  expiration?: Date | undefined;
}

interface Settings {
  region: string;
  /** The custom endpoint (no trailing slash), or undefined: the queue URL's host / endpoint rules. */
  custom: URL | undefined;
  useQueueUrlAsEndpoint: boolean;
  useFips: boolean;
  useDualStack: boolean;
  maxAttempts: number;
  connectionTimeoutMs: number;
  socketTimeoutMs: number;
  checkMd5: boolean;
}

interface Target {
  base: URL;
  signingRegion: string;
}

/** The middleware a plain SQSClient carries (names as `identify()` gives them, step dropped). */
const SDK_MIDDLEWARE = new Set([
  "loggerMiddleware",
  "serializerMiddleware",
  "contentLengthMiddleware",
  "getUserAgentMiddleware",
  "hostHeaderMiddleware",
  "recursionDetectionMiddleware",
  "retryMiddleware",
  "httpSigningMiddleware",
  "deserializerMiddleware",
]);
/** Name of the middleware that gives FIFO entries their message group (functions/lambda/environment.ts). */
export const FIFO_MESSAGE_GROUP_MIDDLEWARE = "fifoMessageGroup";
const fifoGroups = new WeakMap<SQSClient, string>();
const leanOf = new WeakMap<SQSClient, LeanSqs>();

/**
 * Records that `sqs` gives entries sent to `.fifo` queue URLs the message group `group` (when they
 * have none), so the lean path sends the same entries.
 */
export function markFifoMessageGroup(sqs: SQSClient, group: string): void {
  fifoGroups.set(sqs, group);
}

export class LeanSqs {
  readonly #sqs: SQSClient;
  readonly #fifoGroup: string | undefined;
  #settings: Promise<Settings> | undefined;
  readonly #targets = new Map<string, Target>();
  readonly #pools = new Map<string, Pool>();
  #identity: Identity | undefined;
  readonly #signingKeys = new SigningKeys("sqs");
  /** The server's clock minus ours, ms (corrected once from a clock-skew answer). */
  readonly #clock = { offsetMs: 0 };

  private constructor(sqs: SQSClient, fifoGroup: string | undefined) {
    this.#sqs = sqs;
    this.#fifoGroup = fifoGroup;
  }

  /**
   * A lean path beside `sqs`, or undefined when sends must go through the SDK (see above). One per
   * client: a Lambda container's planner invocations share its connections and signing key.
   */
  static forClient(sqs: SQSClient): LeanSqs | undefined {
    const stack = (sqs as { middlewareStack?: { identify?: () => string[] } }).middlewareStack;
    if (typeof stack?.identify !== "function") return undefined;
    const names = stack.identify().map((n) => n.replace(/ .*$/, ""));
    let fifoGroup: string | undefined;
    for (const name of names) {
      if (SDK_MIDDLEWARE.has(name)) continue;
      if (name === FIFO_MESSAGE_GROUP_MIDDLEWARE && fifoGroups.has(sqs)) {
        fifoGroup = fifoGroups.get(sqs);
        continue;
      }
      return undefined;
    }
    const config = (sqs as { config?: { endpointProvider?: unknown } }).config;
    if (typeof config?.endpointProvider !== "function") return undefined;
    const known = leanOf.get(sqs);
    if (known && known.#fifoGroup === fifoGroup) return known;
    const lean = new LeanSqs(sqs, fifoGroup);
    leanOf.set(sqs, lean);
    return lean;
  }

  /** Closes idle sockets (keep-alive ones are unreferenced already); a later send opens new ones. */
  destroy(): void {
    for (const pool of this.#pools.values()) void pool.destroy().catch(() => undefined);
    this.#pools.clear();
  }

  /**
   * SendMessageBatch of `entries` to `queueUrl`: the answer as the SDK gives it (Successful and
   * Failed entries); a failure of the whole call is thrown as the SDK throws it.
   */
  async sendMessageBatch(queueUrl: string, entries: readonly BatchEntry[]): Promise<BatchAnswer> {
    const settings = await this.#resolveSettings();
    const target = this.#target(settings, queueUrl);
    const group = queueUrl.endsWith(".fifo") ? this.#fifoGroup : undefined;
    const body = JSON.stringify({
      QueueUrl: queueUrl,
      Entries: entries.map((e) =>
        group !== undefined && e.MessageGroupId === undefined ? { ...e, MessageGroupId: group } : e,
      ),
    });
    const answer = await this.#send(settings, target, body);
    const out = JSON.parse(answer.toString("utf8") || "{}") as Partial<BatchAnswer>;
    const result: BatchAnswer = { Successful: out.Successful ?? [], Failed: out.Failed ?? [] };
    if (settings.checkMd5) {
      // As the SDK's sendMessageBatchMiddleware: a body SQS did not receive intact fails the call.
      const bodies = new Map(entries.map((e) => [e.Id, e.MessageBody]));
      const bad: string[] = [];
      for (const s of result.Successful) {
        const sent = bodies.get(s.Id);
        if (sent === undefined) continue;
        if (createHash("md5").update(sent).digest("hex") !== s.MD5OfMessageBody)
          bad.push(String(s.MessageId));
      }
      if (bad.length > 0) throw new Error(`Invalid MD5 checksum on messages: ${bad.join(", ")}`);
    }
    return result;
  }

  #resolveSettings(): Promise<Settings> {
    this.#settings ??= (async () => {
      const c = this.#sqs.config as unknown as Record<string, Resolvable<unknown>> & {
        isCustomEndpoint?: boolean;
        requestHandler?: { configProvider?: Promise<Record<string, unknown>> };
      };
      let custom: URL | undefined;
      if (c.isCustomEndpoint) {
        const e = (await resolve(c.endpoint)) as {
          protocol: string;
          hostname: string;
          port?: number;
          path: string;
        };
        custom = new URL(
          `${e.protocol}//${e.hostname}${e.port ? `:${e.port}` : ""}${e.path}`.replace(/\/+$/, ""),
        );
      } else if (!(await resolve(c.ignoreConfiguredEndpointUrls))) {
        // AWS_ENDPOINT_URL_SQS and the like: how the SDK combines them with queue URLs is its own.
        const configured =
          typeof c.serviceConfiguredEndpoint === "function"
            ? await resolve(c.serviceConfiguredEndpoint)
            : process.env.AWS_ENDPOINT_URL_SQS || process.env.AWS_ENDPOINT_URL;
        if (configured) throw new LeanUnsupportedError("an SQS endpoint configured outside the client");
      }
      const handler = (await c.requestHandler?.configProvider) ?? {};
      return {
        region: String(await resolve(c.region)),
        custom,
        useQueueUrlAsEndpoint: (await resolve(c.useQueueUrlAsEndpoint)) !== false,
        useFips: Boolean(await resolve(c.useFipsEndpoint)),
        useDualStack: Boolean(await resolve(c.useDualstackEndpoint)),
        maxAttempts: Math.max(1, Number((await resolve(c.maxAttempts)) ?? 3)),
        connectionTimeoutMs: Number(handler.connectionTimeout ?? 10_000) || 10_000,
        socketTimeoutMs: Number(handler.socketTimeout ?? handler.requestTimeout ?? 0) || 0,
        checkMd5: c.md5 !== false,
      };
    })();
    this.#settings.catch(() => {
      this.#settings = undefined;
    });
    return this.#settings;
  }

  /** Where a send to `queueUrl` goes, as the SDK decides it (endpoint rules, then queueUrlMiddleware). */
  #target(s: Settings, queueUrl: string): Target {
    let queueOrigin = "";
    if (s.custom === undefined && s.useQueueUrlAsEndpoint) {
      try {
        queueOrigin = new URL(queueUrl).origin;
      } catch {
        // As the SDK's queueUrlMiddleware: a queue URL that does not parse leaves the endpoint be.
      }
    }
    const cached = this.#targets.get(queueOrigin);
    if (cached) return cached;
    const provider = (this.#sqs.config as unknown as { endpointProvider: EndpointProvider }).endpointProvider;
    const endpoint = provider(
      {
        Region: s.region,
        UseFIPS: s.useFips,
        UseDualStack: s.useDualStack,
        ...(s.custom ? { Endpoint: s.custom.href } : {}),
      },
      {},
    );
    const scheme = endpoint.properties?.authSchemes?.[0];
    if (scheme && (scheme.name !== "sigv4" || (scheme.signingName ?? "sqs") !== "sqs")) {
      throw new LeanUnsupportedError(`endpoint auth scheme ${String(scheme.name)}`);
    }
    let base = new URL(endpoint.url.href.replace(/\/+$/, ""));
    if (queueOrigin && base.origin !== queueOrigin) base = new URL(queueOrigin);
    const target = { base, signingRegion: String(scheme?.signingRegion ?? s.region) };
    this.#targets.set(queueOrigin, target);
    return target;
  }

  async #credentials(): Promise<Identity> {
    const id = this.#identity;
    if (id && (!id.expiration || id.expiration.getTime() - Date.now() > 5 * 60_000)) return id;
    const fresh = await resolve((this.#sqs.config as { credentials?: Resolvable<Identity> }).credentials);
    if (!fresh?.accessKeyId || !fresh.secretAccessKey) {
      throw new LeanUnsupportedError("the SQS client has no credentials");
    }
    this.#identity = fresh;
    return fresh;
  }

  async #send(s: Settings, target: Target, body: string): Promise<Buffer> {
    const res = await sendWithRetries({
      maxAttempts: s.maxAttempts,
      once: () => this.#once(s, target, body),
      answered: (r) => r.status < 300,
      failure: sqsFailure,
      clock: this.#clock,
      forgetCredentials: () => {
        this.#identity = undefined;
      },
    });
    return res.body;
  }

  async #once(
    s: Settings,
    target: Target,
    body: string,
  ): Promise<{ status: number; body: Buffer; date: number | undefined; queryError: string | undefined }> {
    const id = await this.#credentials();
    const path = target.base.pathname === "" ? "/" : target.base.pathname;
    const amzDate = new Date(Date.now() + this.#clock.offsetMs).toISOString().replace(/[-:]|\.\d{3}/g, "");
    const headers: Record<string, string> = {};
    for (const [n, v] of signSqsRequest({
      path,
      host: target.base.host,
      target: "AmazonSQS.SendMessageBatch",
      body,
      amzDate,
      region: target.signingRegion,
      accessKeyId: id.accessKeyId,
      sessionToken: id.sessionToken,
      signingKey: this.#signingKeys.of(amzDate.slice(0, 8), target.signingRegion, id.secretAccessKey),
    })) {
      headers[n] = v;
    }
    headers["content-length"] = String(Buffer.byteLength(body));
    let res: Dispatcher.ResponseData;
    let answer: Buffer;
    try {
      res = await this.#pool(s, target.base.origin).request({ method: "POST", path, headers, body });
      answer = Buffer.from(await res.body.arrayBuffer());
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
      body: answer,
      date: Number.isNaN(date) ? undefined : date,
      queryError: header("x-amzn-query-error"),
    };
  }

  #pool(s: Settings, origin: string): Pool {
    let pool = this.#pools.get(origin);
    if (!pool) {
      pool = new Pool(origin, {
        connect: { timeout: s.connectionTimeoutMs },
        headersTimeout: s.socketTimeoutMs,
        bodyTimeout: s.socketTimeoutMs,
      });
      this.#pools.set(origin, pool);
    }
    return pool;
  }
}

type EndpointProvider = (
  params: Record<string, unknown>,
  context?: unknown,
) => { url: URL; properties?: { authSchemes?: Record<string, unknown>[] } };

/** SigV4 signing key of SQS for a day (YYYYMMDD) and region. */
export function sqsSigningKey(secret: string, day: string, region: string): KeyObject {
  return sigV4SigningKey(secret, day, region, "sqs");
}

/**
 * The signed headers of a POST of the SQS JSON protocol (SigV4, no query string, payload hash
 * signed, as the SDK's signer does for SQS too): content-type, host, x-amz-content-sha256,
 * x-amz-date, the session token when there is one, x-amz-target, and authorization. `amzDate` is YYYYMMDDTHHMMSSZ.
 */
export function signSqsRequest(r: {
  path: string;
  host: string;
  target: string;
  body: string;
  amzDate: string;
  region: string;
  accessKeyId: string;
  sessionToken?: string | undefined;
  signingKey: KeyObject;
}): [string, string][] {
  const payloadHash = createHash("sha256").update(r.body).digest("hex");
  const signed: [string, string][] = [
    ["content-type", "application/x-amz-json-1.0"],
    ["host", r.host],
    ["x-amz-content-sha256", payloadHash],
    ["x-amz-date", r.amzDate],
  ];
  if (r.sessionToken) signed.push(["x-amz-security-token", r.sessionToken]);
  signed.push(["x-amz-target", r.target]);
  return signSigV4({
    method: "POST",
    path: r.path,
    headers: signed,
    payloadHash,
    amzDate: r.amzDate,
    region: r.region,
    service: "sqs",
    accessKeyId: r.accessKeyId,
    signingKey: r.signingKey,
  });
}

/**
 * An SQS JSON error answer as the SDK throws it: name from `__type` (after `#`), message from
 * `message`/`Message`, the query-compatible code (x-amzn-query-error) as `Code`.
 */
function sqsFailure(res: {
  status: number;
  body: Buffer;
  queryError: string | undefined;
}): SQSServiceException {
  let parsed: { __type?: string; code?: string; message?: string; Message?: string } = {};
  try {
    parsed = JSON.parse(res.body.toString("utf8") || "{}") as typeof parsed;
  } catch {
    // not JSON (a proxy's page): named by the status below
  }
  const type = (parsed.__type ?? parsed.code ?? "").split("#").at(-1)?.split(":")[0];
  const name = type || (res.status === 503 ? "ServiceUnavailable" : `HTTP${res.status}`);
  const error = new SQSServiceException({
    name,
    $fault: res.status >= 500 ? "server" : "client",
    $metadata: { httpStatusCode: res.status },
    message: parsed.message ?? parsed.Message ?? name,
  });
  const code = res.queryError?.split(";")[0];
  if (code) Object.assign(error, { Code: code });
  return error;
}
