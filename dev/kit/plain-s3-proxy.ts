/**
 * An S3-compatible store without the newer S3 features, for tests: an HTTP hop in front of the
 * emulator that answers `501 NotImplemented` (the answer S3 and its look-alikes give for a header
 * they do not implement) to any request carrying a flexible checksum (`x-amz-checksum-*`,
 * `x-amz-sdk-checksum-algorithm`, a checksum trailer) or a conditional write (`If-Match`,
 * `If-None-Match` on PUT), and forwards everything else unchanged.
 */
import type { IncomingMessage } from "node:http";
import { answer, HttpHop } from "./http-hop.ts";

export class PlainS3Proxy {
  /** Requests refused, as "METHOD header". */
  readonly refused: string[] = [];
  #hop: HttpHop | undefined;

  static async start(target: string): Promise<PlainS3Proxy> {
    const proxy = new PlainS3Proxy();
    proxy.#hop = await HttpHop.start(target, (req, res) => {
      const header = unsupported(req);
      if (!header) return false;
      proxy.refused.push(`${req.method} ${header}`);
      const xml = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented</Message><Header>${header}</Header></Error>`;
      return answer(req, res, 501, { "content-type": "application/xml" }, xml);
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

function unsupported(req: IncomingMessage): string | undefined {
  for (const name of Object.keys(req.headers)) {
    if (/^x-amz-(checksum-|sdk-checksum-algorithm$)/.test(name)) return name;
    if (name === "x-amz-trailer" && /checksum/.test(String(req.headers[name]))) return name;
    if (req.method === "PUT" && (name === "if-match" || name === "if-none-match")) return name;
  }
  return undefined;
}
