/**
 * S3 misbehaving, for tests: an HTTP hop in front of the embedded emulator (local/embedded.ts) that
 * names the S3 operation of every request and injects the faults AWS S3 is known to have, per
 * operation; everything else is forwarded unchanged. It also enforces conditional writes
 * (`If-Match` / `If-None-Match` on PutObject) and deletes (`If-Match` on DeleteObject), which the
 * emulator ignores, so races are real.
 *
 * API:
 *   const proxy = await S3FaultProxy.start(emulator.endpoints.s3Endpoint);   // point clients at proxy.url
 *   const rule = proxy.inject({ op: "CompleteMultipartUpload", fault: "drop-response" });
 *   proxy.inject({ op: "PutObject", kind: "record", fault: "500", skip: 2, times: 3 });
 *   proxy.inject({ op: "UploadPart", fault: "slow-down", times: Infinity });   // never recovers
 *   rule.hits;                  // requests this rule faulted so far
 *   proxy.clear();              // removes every rule
 *   proxy.log;                  // every request: { op, kind, key, fault?, status? }
 *   proxy.count("UploadPart");  // requests of one operation (optionally of one key kind)
 *   proxy.preconditionFailed;   // conditional writes refused (412) or NoSuchKey (If-Match, no object)
 *   proxy.clockOffsetMs = 3_600_000;   // S3's clock an hour ahead of ours (see below)
 *   await proxy.close();
 *
 * A rule picks requests by `op` (one or a list), optionally `kind` (what the key is: window,
 * record, manifest, snapshot (of manifests), catalog, index, control, probe, other), `key` (a RegExp on the decoded key) and
 * `client` (the access key id the request is signed with: one runtime of several sharing the proxy);
 * it lets the first `skip` of them through (default 0), faults the next `times` (default 1;
 * `Infinity`: every one), and then passes. The first rule that picks a request decides. Faults:
 *   "500"             500 InternalError (XML error body)
 *   "slow-down"       503 SlowDown
 *   "request-timeout" 400 RequestTimeout
 *   "expired-token"   403 ExpiredToken
 *   "precondition-failed" 412 PreconditionFailed: a conditional write (If-Match, If-None-Match)
 *                     that another writer got to first, every time the rule picks it
 *   "reset-request"   the connection is reset while the request is being read; nothing reaches S3
 *   "reset-response"  the request is done on the server; the connection is reset after half the
 *                     response (headers and half the body) has been sent
 *   "delay"           the request is done on the server; its response is held `delayMs` (default
 *                     30 s, past any SDK timeout the test sets) and then sent if the client waits
 *   "drop-response"   the request is done on the server; the client's connection is closed with no
 *                     response (so the client retries something that happened)
 *   "stall-request"   the request is held before it reaches S3 (a slow network): `delayMs`, or until
 *                     the rule's `until` promise settles; then forwarded (conditions checked then)
 *   "no-listing-etags" a listing (ListObjectsV2, ListObjects) is answered without the objects'
 *                     ETags, as some S3-compatible stores' listings are
 *
 * `clockOffsetMs` (default 0) sets S3's clock apart from ours, as when the host's clock has drifted:
 * every answer's Date header is then S3's clock, and a request signed (X-Amz-Date) more than 15
 * minutes from it is refused before anything else, as S3 does: 403 RequestTimeTooSkewed, with the
 * request's and the server's time in the error body. The log keeps each request's signing time.
 */
import { once } from "node:events";
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type S3Op =
  | "CreateMultipartUpload"
  | "UploadPart"
  | "UploadPartCopy"
  | "CompleteMultipartUpload"
  | "AbortMultipartUpload"
  | "ListMultipartUploads"
  | "ListParts"
  | "PutObject"
  | "CopyObject"
  | "GetObject"
  | "HeadObject"
  | "DeleteObject"
  | "DeleteObjects"
  | "ListObjectsV2"
  | "ListObjects"
  | "BucketOperation";

/** What an object key is, by the backup's key layout (functions/domain/keys.ts). */
export type KeyKind =
  | "window"
  | "record"
  | "manifest"
  | "snapshot"
  | "catalog"
  | "index"
  | "control"
  | "probe"
  | "other";

export type S3Fault =
  | "500"
  | "slow-down"
  | "request-timeout"
  | "expired-token"
  | "precondition-failed"
  | "reset-request"
  | "reset-response"
  | "delay"
  | "drop-response"
  | "stall-request"
  | "no-listing-etags";

export interface FaultRule {
  op: S3Op | readonly S3Op[];
  kind?: KeyKind | readonly KeyKind[];
  key?: RegExp;
  /** The access key id of the requests to pick. */
  client?: string;
  fault: S3Fault;
  /** Matching requests let through before the fault starts (default 0). */
  skip?: number;
  /** Matching requests faulted (default 1; Infinity: all). */
  times?: number;
  /** "delay", "stall-request": how long the response or request is held (default 30 000 ms). */
  delayMs?: number;
  /** "stall-request": the request is held until this settles (instead of `delayMs`). */
  until?: Promise<unknown>;
}

export interface ActiveRule extends FaultRule {
  /** Matching requests seen so far. */
  seen: number;
  /** Requests faulted so far. */
  hits: number;
}

export interface LoggedRequest {
  op: S3Op;
  kind: KeyKind;
  key: string;
  method: string;
  /** The access key id the request is signed with. */
  client?: string;
  fault?: S3Fault;
  /** Status answered to the client (undefined when the connection was reset or dropped). */
  status?: number;
  /** The request's signing time (its X-Amz-Date header), ms; undefined when it has none. */
  signedAt?: number;
  /** Refused for a signing time too far from S3's clock (`clockOffsetMs`): 403 RequestTimeTooSkewed. */
  skewed?: true;
}

/** How far a request's signing time may be from S3's clock (S3: 15 minutes). */
const MAX_SKEW_MS = 15 * 60_000;

const ERRORS: Partial<Record<S3Fault, { status: number; code: string; message: string }>> = {
  "500": {
    status: 500,
    code: "InternalError",
    message: "We encountered an internal error. Please try again.",
  },
  "slow-down": { status: 503, code: "SlowDown", message: "Please reduce your request rate." },
  "request-timeout": {
    status: 400,
    code: "RequestTimeout",
    message:
      "Your socket connection to the server was not read from or written to within the timeout period.",
  },
  "expired-token": { status: 403, code: "ExpiredToken", message: "The provided token has expired." },
  "precondition-failed": {
    status: 412,
    code: "PreconditionFailed",
    message: "At least one of the pre-conditions you specified did not hold",
  },
};

export class S3FaultProxy {
  readonly log: LoggedRequest[] = [];
  /**
   * Conditional PutObjects and DeleteObjects refused (412 PreconditionFailed, or 404 for If-Match
   * on no object).
   */
  preconditionFailed = 0;
  /** S3's clock minus ours, ms (see the file's comment). */
  clockOffsetMs = 0;
  readonly #rules: ActiveRule[] = [];
  readonly #target: URL;
  readonly #enforce: boolean;
  /** Per key: the tail of the chain of PutObjects in flight, so check-then-write is atomic. */
  readonly #keyLocks = new Map<string, Promise<void>>();
  readonly #server: Server;

  private constructor(target: URL, enforceConditionalWrites: boolean) {
    this.#target = target;
    this.#enforce = enforceConditionalWrites;
    this.#server = createServer((req, res) => {
      void this.#handle(req, res).catch(() => res.destroy());
    });
  }

  /** `enforceConditionalWrites: false` forwards If-Match / If-None-Match to the emulator as they are. */
  static async start(target: string, o: { enforceConditionalWrites?: boolean } = {}): Promise<S3FaultProxy> {
    const proxy = new S3FaultProxy(new URL(target), o.enforceConditionalWrites ?? true);
    proxy.#server.listen(0, "127.0.0.1");
    await once(proxy.#server, "listening");
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  inject(rule: FaultRule): ActiveRule {
    const active: ActiveRule = { ...rule, seen: 0, hits: 0 };
    this.#rules.push(active);
    return active;
  }

  clear(): void {
    this.#rules.length = 0;
  }

  count(op: S3Op, kind?: KeyKind): number {
    return this.log.filter((r) => r.op === op && (!kind || r.kind === kind)).length;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { op, key } = classify(req);
    const kind = keyKind(key);
    const client = accessKeyOf(req);
    const entry: LoggedRequest = {
      op,
      kind,
      key,
      method: req.method ?? "GET",
      ...(client ? { client } : {}),
    };
    const signedAt = amzDate(req.headers["x-amz-date"]);
    if (signedAt !== undefined) entry.signedAt = signedAt;
    this.log.push(entry);
    res.on("finish", () => {
      entry.status = res.statusCode;
    });
    const serverNow = Date.now() + this.clockOffsetMs;
    if (this.clockOffsetMs !== 0) res.setHeader("date", new Date(serverNow).toUTCString());
    if (this.clockOffsetMs !== 0 && signedAt !== undefined && Math.abs(signedAt - serverNow) > MAX_SKEW_MS) {
      entry.skewed = true;
      await drain(req);
      const time = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}/, "");
      sendError(
        res,
        req.method,
        403,
        "RequestTimeTooSkewed",
        "The difference between the request time and the current time is too large.",
        `<RequestTime>${time(signedAt).replace(/[-:]/g, "")}</RequestTime><ServerTime>${time(serverNow)}</ServerTime><MaxAllowedSkewMilliseconds>${MAX_SKEW_MS}</MaxAllowedSkewMilliseconds>`,
      );
      return;
    }
    const rule = this.#pick(op, kind, key, client);
    const fault = rule?.fault;
    if (fault) entry.fault = fault;
    const error = fault ? ERRORS[fault] : undefined;
    if (error) {
      await drain(req);
      sendError(res, req.method, error.status, error.code, error.message);
      return;
    }
    if (fault === "stall-request") {
      await (rule?.until ?? new Promise((r) => setTimeout(r, rule?.delayMs ?? 30_000))).catch(
        () => undefined,
      );
    }
    if (fault === "reset-request") {
      // Take a little of the body (if any) first, so the reset is mid-request.
      await Promise.race([once(req, "data"), once(req, "end"), new Promise((r) => setTimeout(r, 50))]);
      req.socket.destroy();
      return;
    }
    const conditional =
      this.#enforce &&
      (op === "PutObject" || op === "DeleteObject") &&
      (req.headers["if-match"] || req.headers["if-none-match"]);
    if ((op === "PutObject" || op === "DeleteObject") && this.#enforce) {
      // Every write of a key waits for the previous one, so a conditional check and its write are
      // one step, as on S3.
      const previous = this.#keyLocks.get(key) ?? Promise.resolve();
      let release = (): void => undefined;
      const mine = new Promise<void>((r) => {
        release = r;
      });
      const tail = previous.then(() => mine);
      this.#keyLocks.set(key, tail);
      await previous;
      try {
        if (conditional) {
          const refusal = await this.#precondition(req);
          if (refusal) {
            this.preconditionFailed++;
            await drain(req);
            sendError(res, req.method, refusal.status, refusal.code, refusal.message);
            return;
          }
        }
        await this.#forward(req, res, rule);
      } finally {
        release();
        if (this.#keyLocks.get(key) === tail) this.#keyLocks.delete(key);
      }
      return;
    }
    await this.#forward(req, res, rule);
  }

  #pick(op: S3Op, kind: KeyKind, key: string, client: string | undefined): ActiveRule | undefined {
    for (const r of this.#rules) {
      const ops: readonly S3Op[] = typeof r.op === "string" ? [r.op] : r.op;
      if (!ops.includes(op)) continue;
      if (r.kind) {
        const kinds: readonly KeyKind[] = typeof r.kind === "string" ? [r.kind] : r.kind;
        if (!kinds.includes(kind)) continue;
      }
      if (r.key && !r.key.test(key)) continue;
      if (r.client !== undefined && r.client !== client) continue;
      r.seen++;
      if (r.seen <= (r.skip ?? 0)) return undefined;
      if (r.hits >= (r.times ?? 1)) continue;
      r.hits++;
      return r;
    }
    return undefined;
  }

  /** The refusal S3 gives a conditional PutObject or DeleteObject whose condition does not hold. */
  async #precondition(
    req: IncomingMessage,
  ): Promise<{ status: number; code: string; message: string } | undefined> {
    const head = await new Promise<{ status: number; etag: string | undefined }>((resolve, reject) => {
      const h = request(
        {
          host: this.#target.hostname,
          port: this.#target.port,
          method: "HEAD",
          path: new URL(req.url ?? "/", "http://proxy").pathname,
          headers: { host: this.#target.host, authorization: req.headers.authorization ?? "" },
        },
        (up) => {
          up.resume();
          const etag = up.headers.etag;
          resolve({ status: up.statusCode ?? 0, etag: typeof etag === "string" ? etag : undefined });
        },
      );
      h.on("error", reject);
      h.end();
    });
    const exists = head.status === 200;
    const ifNoneMatch = req.headers["if-none-match"];
    const ifMatch = req.headers["if-match"];
    const failed = {
      status: 412,
      code: "PreconditionFailed",
      message: "At least one of the pre-conditions you specified did not hold",
    };
    if (ifNoneMatch && exists) return failed;
    if (ifMatch) {
      if (!exists) return { status: 404, code: "NoSuchKey", message: "The specified key does not exist." };
      const wanted = String(ifMatch)
        .split(",")
        .map((t) => t.trim());
      if (!wanted.includes("*") && !wanted.includes(head.etag ?? "")) return failed;
    }
    return undefined;
  }

  async #forward(req: IncomingMessage, res: ServerResponse, rule: ActiveRule | undefined): Promise<void> {
    const headers = { ...req.headers, host: this.#target.host };
    if (this.#enforce) {
      delete headers["if-match"];
      delete headers["if-none-match"];
      // GET/HEAD conditions are the emulator's own business; only PUT and DELETE conditions are
      // enforced here.
      if (req.method !== "PUT" && req.method !== "DELETE") {
        if (req.headers["if-match"]) headers["if-match"] = req.headers["if-match"];
        if (req.headers["if-none-match"]) headers["if-none-match"] = req.headers["if-none-match"];
      }
    }
    const done = new Promise<void>((resolve) => {
      const upstream = request(
        {
          host: this.#target.hostname,
          port: this.#target.port,
          method: req.method,
          path: req.url,
          headers,
        },
        (up) => {
          void this.#respond(up, res, req.method, rule).finally(resolve);
        },
      );
      upstream.on("error", () => {
        res.destroy();
        resolve();
      });
      res.on("close", () => {
        if (!res.writableFinished && rule?.fault !== "drop-response" && rule?.fault !== "delay")
          upstream.destroy();
      });
      req.pipe(upstream);
    });
    await done;
  }

  async #respond(
    up: IncomingMessage,
    res: ServerResponse,
    method: string | undefined,
    rule: ActiveRule | undefined,
  ): Promise<void> {
    const fault = rule?.fault;
    // With S3's clock set apart, its Date (set in #handle) replaces the emulator's.
    const { date: _, ...rest } = up.headers;
    const upHeaders = this.clockOffsetMs !== 0 ? rest : up.headers;
    if (fault === "drop-response") {
      // The server has done it: wait for all of its answer, then close without a word.
      up.resume();
      await once(up, "end").catch(() => undefined);
      res.socket?.destroy();
      return;
    }
    if (fault === "reset-response") {
      const chunks: Buffer[] = [];
      for await (const c of up) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks);
      const headers = { ...upHeaders, "content-length": String(body.length) };
      res.writeHead(up.statusCode ?? 502, headers);
      res.flushHeaders();
      if (method !== "HEAD" && body.length > 1) res.write(body.subarray(0, Math.floor(body.length / 2)));
      await new Promise((r) => setTimeout(r, 10));
      res.socket?.destroy();
      return;
    }
    if (fault === "no-listing-etags") {
      const chunks: Buffer[] = [];
      for await (const c of up) chunks.push(c as Buffer);
      const body = Buffer.from(
        Buffer.concat(chunks)
          .toString("utf8")
          .replace(/<ETag>[^<]*<\/ETag>/g, ""),
      );
      res.writeHead(up.statusCode ?? 502, { ...up.headers, "content-length": String(body.length) });
      res.end(body);
      return;
    }
    if (fault === "delay") {
      const chunks: Buffer[] = [];
      for await (const c of up) chunks.push(c as Buffer);
      await new Promise<void>((r) => {
        const t = setTimeout(r, rule?.delayMs ?? 30_000);
        res.on("close", () => {
          clearTimeout(t);
          r();
        });
      });
      if (res.destroyed) return;
      res.writeHead(up.statusCode ?? 502, upHeaders);
      res.end(Buffer.concat(chunks));
      return;
    }
    res.writeHead(up.statusCode ?? 502, upHeaders);
    up.pipe(res);
    await once(up, "end").catch(() => undefined);
  }
}

/** The S3 operation of a path-style request (`/{bucket}/{key}?...`) and its decoded key. */
export function classify(req: {
  method?: string | undefined;
  url?: string | undefined;
  headers: IncomingMessage["headers"];
}): {
  op: S3Op;
  key: string;
} {
  const url = new URL(req.url ?? "/", "http://proxy");
  const q = url.searchParams;
  const path = url.pathname.replace(/^\//, "");
  const slash = path.indexOf("/");
  const key = slash < 0 ? "" : safeDecode(path.slice(slash + 1));
  const method = req.method ?? "GET";
  const copy = req.headers["x-amz-copy-source"] !== undefined;
  if (!key) {
    if (method === "GET" && q.has("uploads")) return { op: "ListMultipartUploads", key };
    if (method === "GET" && q.get("list-type") === "2")
      return { op: "ListObjectsV2", key: q.get("prefix") ?? "" };
    if (method === "POST" && q.has("delete")) return { op: "DeleteObjects", key };
    if (method === "GET" && !q.has("location") && !q.has("versioning") && [...q.keys()].length >= 0) {
      if (q.has("prefix") || q.has("delimiter") || q.has("marker") || q.size === 0)
        return { op: "ListObjects", key: q.get("prefix") ?? "" };
    }
    return { op: "BucketOperation", key };
  }
  if (method === "POST" && q.has("uploads")) return { op: "CreateMultipartUpload", key };
  if (method === "POST" && q.has("uploadId")) return { op: "CompleteMultipartUpload", key };
  if (method === "PUT" && q.has("uploadId")) return { op: copy ? "UploadPartCopy" : "UploadPart", key };
  if (method === "DELETE" && q.has("uploadId")) return { op: "AbortMultipartUpload", key };
  if (method === "GET" && q.has("uploadId")) return { op: "ListParts", key };
  if (method === "PUT") return { op: copy ? "CopyObject" : "PutObject", key };
  if (method === "HEAD") return { op: "HeadObject", key };
  if (method === "DELETE") return { op: "DeleteObject", key };
  return { op: "GetObject", key };
}

/** What a key is in the backup's layout. */
export function keyKind(key: string): KeyKind {
  const state = /(^|\/)\.backup\/(manifests|manifest-snapshots|catalog|records|index|control)\//.exec(key);
  if (state) {
    return (
      {
        manifests: "manifest",
        "manifest-snapshots": "snapshot",
        catalog: "catalog",
        records: "record",
        index: "index",
        control: "control",
      } as const
    )[state[2] as "manifests" | "manifest-snapshots" | "catalog" | "records" | "index" | "control"];
  }
  if (key.endsWith(".flussonic-backup-probe")) return "probe";
  if (/\/\d{4}-\d{2}-\d{2}\/\d{6}Z-\d+s\.(mp4|ts)$/.test(key)) return "window";
  return "other";
}

/** The access key id a request is signed with (SigV4 `Credential=AKID/...`). */
function accessKeyOf(req: IncomingMessage): string | undefined {
  return /Credential=([^/,\s]+)\//.exec(req.headers.authorization ?? "")?.[1];
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

async function drain(req: IncomingMessage): Promise<void> {
  if (req.readableEnded) return;
  req.resume();
  await once(req, "end").catch(() => undefined);
}

function sendError(
  res: ServerResponse,
  method: string | undefined,
  status: number,
  code: string,
  message: string,
  details = "",
): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>${details}<RequestId>s3-fault-proxy</RequestId></Error>`;
  res.writeHead(status, {
    "content-type": "application/xml",
    "content-length": Buffer.byteLength(body),
    "x-amz-request-id": "s3-fault-proxy",
  });
  res.end(method === "HEAD" ? undefined : body);
}

/** An X-Amz-Date header (YYYYMMDDTHHMMSSZ) in ms, or undefined. */
function amzDate(v: string | string[] | undefined): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(typeof v === "string" ? v : "");
  return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : undefined;
}
