/**
 * What the emulator cannot do: refuse a request the way AWS does when credentials or a policy say
 * no. An HTTP hop in front of the emulator that answers the requests a rule picks with the error
 * AWS sends (S3: an XML error; SQS: the JSON protocol's error with its `x-amzn-query-error`) and
 * forwards everything else unchanged.
 */
import { answer, HttpHop } from "./http-hop.ts";

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
  #hop: HttpHop | undefined;

  static async start(target: string, rule: PolicyRule): Promise<AwsPolicyProxy> {
    const proxy = new AwsPolicyProxy();
    proxy.#hop = await HttpHop.start(target, (req, res) => {
      const target_ = req.headers["x-amz-target"];
      const sqsAction = typeof target_ === "string" ? target_.replace(/^AmazonSQS\./, "") : undefined;
      const path = new URL(req.url ?? "/", "http://proxy").pathname;
      const refusal = rule({ method: req.method ?? "GET", path, sqsAction });
      if (!refusal) return false;
      proxy.refused.push(`${req.method} ${path}${sqsAction ? ` ${sqsAction}` : ""}`);
      if (sqsAction) {
        const body = JSON.stringify({
          __type: `com.amazonaws.sqs#${refusal.code}`,
          message: refusal.message,
        });
        return answer(
          req,
          res,
          refusal.status,
          { "content-type": "application/x-amz-json-1.0", "x-amzn-query-error": `${refusal.code};Sender` },
          body,
        );
      }
      const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${refusal.code}</Code><Message>${refusal.message}</Message><RequestId>proxy</RequestId></Error>`;
      return answer(req, res, refusal.status, { "content-type": "application/xml" }, xml);
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
