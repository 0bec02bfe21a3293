/**
 * An HTTP hop in front of a source (the Flussonic simulator) that answers chosen paths with an
 * error and forwards everything else unchanged: a window the media server always fails to serve
 * (a broken DVR segment), while the simulator's own faults hit requests by count or rate, not by
 * window.
 */
import { once } from "node:events";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export class FaultProxy {
  /** Request paths (without query) answered with `status` instead of being forwarded. */
  readonly failing = new Set<string>();
  /** Paths answered with an error, in order. */
  readonly failed: string[] = [];
  readonly #server: Server;

  private constructor(target: URL, status: number) {
    this.#server = createServer((req, res) => {
      const path = new URL(req.url ?? "/", "http://proxy").pathname;
      if (this.failing.has(path)) {
        this.failed.push(path);
        req.resume();
        const text = JSON.stringify({ error: "injected by the test's fault proxy" });
        res.writeHead(status, {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(text),
        });
        res.end(text);
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
      res.on("close", () => upstream.destroy());
      req.pipe(upstream);
    });
  }

  static async start(target: string, status = 500): Promise<FaultProxy> {
    const proxy = new FaultProxy(new URL(target), status);
    proxy.#server.listen(0, "127.0.0.1");
    await once(proxy.#server, "listening");
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
