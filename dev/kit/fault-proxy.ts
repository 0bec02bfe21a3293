/**
 * An HTTP hop in front of a source (the Flussonic simulator) that answers chosen paths with an
 * error and forwards everything else unchanged: a window the media server always fails to serve
 * (a broken DVR segment), while the simulator's own faults hit requests by count or rate, not by
 * window.
 */
import { answer, HttpHop } from "./http-hop.ts";

export class FaultProxy {
  /** Request paths (without query) answered with `status` instead of being forwarded. */
  readonly failing = new Set<string>();
  /** Paths answered with an error, in order. */
  readonly failed: string[] = [];
  #hop: HttpHop | undefined;

  static async start(target: string, status = 500): Promise<FaultProxy> {
    const proxy = new FaultProxy();
    proxy.#hop = await HttpHop.start(target, (req, res) => {
      const path = new URL(req.url ?? "/", "http://proxy").pathname;
      if (!proxy.failing.has(path)) return false;
      proxy.failed.push(path);
      const text = JSON.stringify({ error: "injected by the test's fault proxy" });
      return answer(req, res, status, { "content-type": "application/json" }, text);
    });
    return proxy;
  }

  get url(): string {
    return this.#hop!.url;
  }

  close(): Promise<void> {
    return this.#hop!.close();
  }
}
