/**
 * An HTTP hop for tests, in front of a server (the simulator, the emulator): `intercept` answers
 * the requests it picks itself and returns true; everything else is forwarded unchanged. The test
 * proxies (fault-proxy.ts, cli/aws-policy-proxy.ts, service/plain-s3-proxy.ts) are rules on it.
 */
import { once } from "node:events";
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * Answers a request (true) or lets the hop forward it (false). A rule that must read the body
 * first returns true and later calls `forward` with the body it read.
 */
export type Intercept = (
  req: IncomingMessage,
  res: ServerResponse,
  forward: (body: Buffer) => void,
) => boolean;

export class HttpHop {
  readonly #server: Server;

  private constructor(target: URL, intercept: Intercept) {
    const forward = (req: IncomingMessage, res: ServerResponse, body?: Buffer) => {
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
      res.on("close", () => upstream.destroy());
      if (body) upstream.end(body);
      else req.pipe(upstream);
    };
    this.#server = createServer((req, res) => {
      if (intercept(req, res, (body) => forward(req, res, body))) return;
      forward(req, res);
    });
  }

  static async start(target: string, intercept: Intercept): Promise<HttpHop> {
    const hop = new HttpHop(new URL(target), intercept);
    hop.#server.listen(0, "127.0.0.1");
    await once(hop.#server, "listening");
    return hop;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Answers a request itself (its body drained): `status`, headers, and `body` except for HEAD. */
export function answer(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  headers: Record<string, string>,
  body: string,
): true {
  req.resume();
  res.writeHead(status, { ...headers, "content-length": String(Buffer.byteLength(body)) });
  res.end(req.method === "HEAD" ? undefined : body);
  return true;
}
