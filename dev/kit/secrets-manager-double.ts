/**
 * A local double of the one Secrets Manager call the Lambda functions make: GetSecretValue, over
 * the service's JSON 1.1 protocol (`X-Amz-Target: secretsmanager.GetSecretValue`). Secrets Manager
 * is not ours to emulate; this answers what the SDK asks and records every request, so that a
 * test can tell a secret was read from here (and signed by whom) rather than from elsewhere.
 */
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface SecretRequest {
  /** The operation from `X-Amz-Target` (only GetSecretValue is answered). */
  operation: string;
  secretId: string | undefined;
  /** The SigV4 scope from the Authorization header: `<access key>/<date>/<region>/<service>`. */
  signedBy: string | undefined;
}

export class SecretsManagerDouble {
  readonly requests: SecretRequest[] = [];
  /** Secret strings by name; a test may change them (a rotated or deleted secret). */
  readonly secrets: Map<string, string>;
  /**
   * Whether the signer may read the secret (its access key, the action, the secret's ARN); a
   * refusal is answered with AccessDeniedException, as Secrets Manager does. Default: allowed.
   */
  authorize: (accessKeyId: string | undefined, action: string, secretArn: string) => boolean = () => true;
  readonly #server: Server;
  readonly #account: string;
  readonly #region: string;

  private constructor(secrets: Record<string, string>, region: string, account: string) {
    this.secrets = new Map(Object.entries(secrets));
    this.#region = region;
    this.#account = account;
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const target = String(req.headers["x-amz-target"] ?? "");
        const operation = target.replace(/^secretsmanager\./, "");
        let input: { SecretId?: string } = {};
        try {
          input = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
        } catch {
          // answered below as a bad request
        }
        const credential = /Credential=([^,]+)\/aws4_request/.exec(String(req.headers.authorization ?? ""));
        this.requests.push({ operation, secretId: input.SecretId, signedBy: credential?.[1] });
        const reply = (status: number, body: unknown, errorType?: string) => {
          const text = JSON.stringify(body);
          res.writeHead(status, {
            "content-type": "application/x-amz-json-1.1",
            "content-length": Buffer.byteLength(text),
            ...(errorType ? { "x-amzn-errortype": errorType } : {}),
          });
          res.end(text);
        };
        if (req.method !== "POST" || operation !== "GetSecretValue" || !input.SecretId) {
          const message = `this double answers GetSecretValue only, not ${target || req.method}`;
          return reply(400, { __type: "InvalidRequestException", message }, "InvalidRequestException");
        }
        const name = this.#nameOf(input.SecretId);
        const arn = `arn:aws:secretsmanager:${this.#region}:${this.#account}:secret:${name}-AbCdEf`;
        if (!this.authorize(credential?.[1]?.split("/")[0], `secretsmanager:${operation}`, arn)) {
          const message = `not authorized to perform secretsmanager:${operation} on ${arn}`;
          return reply(400, { __type: "AccessDeniedException", message }, "AccessDeniedException");
        }
        const value = this.secrets.get(name);
        if (value === undefined) {
          const message = "Secrets Manager can't find the specified secret.";
          return reply(400, { __type: "ResourceNotFoundException", message }, "ResourceNotFoundException");
        }
        reply(200, {
          ARN: arn,
          Name: name,
          VersionId: "00000000-0000-4000-8000-000000000001",
          SecretString: value,
          VersionStages: ["AWSCURRENT"],
          CreatedDate: 1_700_000_000,
        });
      });
    });
  }

  /** Serves `secrets` (name to secret string) on 127.0.0.1 at a free port. */
  static async start(
    secrets: Record<string, string>,
    { region = "us-east-1", account = "000000000000" } = {},
  ): Promise<SecretsManagerDouble> {
    const double = new SecretsManagerDouble(secrets, region, account);
    double.#server.listen(0, "127.0.0.1");
    await once(double.#server, "listening");
    return double;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** A secret id is its name or its ARN (`...:secret:<name>-<6 characters>`). */
  #nameOf(id: string): string {
    const m = /^arn:[^:]+:secretsmanager:[^:]*:[^:]*:secret:(.+?)(-[A-Za-z0-9]{6})?$/.exec(id);
    return m ? m[1]! : id;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
