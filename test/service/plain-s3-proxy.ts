/**
 * An S3-compatible store without the newer S3 features, for tests: an HTTP hop in front of the
 * emulator that answers `501 NotImplemented` (the answer S3 and its look-alikes give for a header
 * they do not implement) to any request carrying a flexible checksum (`x-amz-checksum-*`,
 * `x-amz-sdk-checksum-algorithm`, a checksum trailer) or a conditional write (`If-Match`,
 * `If-None-Match` on PUT), and forwards everything else unchanged.
 */
import { once } from "node:events";
import { createServer, type IncomingMessage, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export class PlainS3Proxy {
  /** Requests refused, as "METHOD header". */
  readonly refused: string[] = [];
  readonly #server: Server;

  private constructor(target: URL) {
    this.#server = createServer((req, res) => {
      const header = unsupported(req);
      if (header) {
        this.refused.push(`${req.method} ${header}`);
        req.resume();
        const xml = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented</Message><Header>${header}</Header></Error>`;
        res.writeHead(501, { "content-type": "application/xml", "content-length": Buffer.byteLength(xml) });
        res.end(xml);
        return;
      }
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
    });
  }

  static async start(target: string): Promise<PlainS3Proxy> {
    const proxy = new PlainS3Proxy(new URL(target));
    proxy.#server.listen(0, "127.0.0.1");
    await once(proxy.#server, "listening");
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((r) => this.#server.close(r));
  }
}

function unsupported(req: IncomingMessage): string | undefined {
  for (const name of Object.keys(req.headers)) {
    if (/^x-amz-(checksum-|sdk-checksum-algorithm$)/.test(name)) return name;
    if (name === "x-amz-trailer" && /checksum/.test(String(req.headers[name]))) return name;
    if (req.method === "PUT" && (name === "if-match" || name === "if-none-match")) return name;
  }
  return undefined;
}
