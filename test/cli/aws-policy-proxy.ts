/**
 * What the emulator cannot do: refuse a request the way AWS does when credentials or a policy say
 * no. An HTTP hop in front of the emulator that answers the requests a rule picks with the error
 * AWS sends (S3: an XML error; SQS: the JSON protocol's error with its `x-amzn-query-error`) and
 * forwards everything else unchanged.
 */
import { once } from "node:events";
import { createServer, type IncomingMessage, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface Refusal {
  status: number;
  code: string;
  message: string;
}

/** Picks the requests to refuse: S3 by method and path, SQS by action (`CreateQueue`). */
export type PolicyRule = (r: {
  method: string;
  path: string;
  sqsAction: string | undefined;
}) => Refusal | undefined;

export class AwsPolicyProxy {
  readonly refused: string[] = [];
  readonly #server: Server;

  private constructor(target: URL, rule: PolicyRule) {
    this.#server = createServer((req, res) => {
      const target_ = req.headers["x-amz-target"];
      const sqsAction = typeof target_ === "string" ? target_.replace(/^AmazonSQS\./, "") : undefined;
      const path = new URL(req.url ?? "/", "http://proxy").pathname;
      const refusal = rule({ method: req.method ?? "GET", path, sqsAction });
      if (refusal) {
        this.refused.push(`${req.method} ${path}${sqsAction ? ` ${sqsAction}` : ""}`);
        req.resume();
        const body = sqsAction
          ? JSON.stringify({ __type: `com.amazonaws.sqs#${refusal.code}`, message: refusal.message })
          : `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${refusal.code}</Code><Message>${refusal.message}</Message><RequestId>proxy</RequestId></Error>`;
        res.writeHead(refusal.status, {
          "content-type": sqsAction ? "application/x-amz-json-1.0" : "application/xml",
          ...(sqsAction ? { "x-amzn-query-error": `${refusal.code};Sender` } : {}),
          "content-length": Buffer.byteLength(body),
        });
        res.end(req.method === "HEAD" ? undefined : body);
        return;
      }
      forward(req, target, res);
    });
  }

  static async start(target: string, rule: PolicyRule): Promise<AwsPolicyProxy> {
    const proxy = new AwsPolicyProxy(new URL(target), rule);
    proxy.#server.listen(0, "127.0.0.1");
    await once(proxy.#server, "listening");
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}

function forward(req: IncomingMessage, target: URL, res: import("node:http").ServerResponse): void {
  const upstream = request(
    {
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: { ...req.headers, host: target.host },
    },
    (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    },
  );
  upstream.on("error", () => res.destroy());
  req.pipe(upstream);
}
