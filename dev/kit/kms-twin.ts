/**
 * A minimal AWS KMS twin for tests: the calls signing with a KMS key needs (`CreateKey`,
 * `CreateAlias`, `GetPublicKey`, `Sign`, `Verify`) over Node's own Ed25519, spoken as the SDK speaks
 * KMS (AWS JSON 1.1: `POST /`, `X-Amz-Target: TrentService.<Op>`, blobs in base64, errors as
 * `{__type, message}` with status 400). No KMS emulator is on npm (local-kms is a Go binary,
 * LocalStack needs Docker), and the embedded S3/SQS emulator has no KMS.
 *
 * It refuses as KMS does where the backup could go wrong: an unknown key or alias
 * (NotFoundException), a caller not allowed (`deny`: AccessDeniedException), a message over 4096
 * bytes or an ED25519_SHA_512 signature asked of anything but a RAW message (ValidationException),
 * a signing algorithm the key spec does not have (InvalidKeyUsageException). Keys of another spec
 * (RSA_2048, ECC_NIST_P256) exist so that their refusal can be tested; they cannot sign here.
 */
import { generateKeyPairSync, type KeyObject, randomUUID, sign, verify } from "node:crypto";
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

const ACCOUNT = "123456789012";
const MAX_MESSAGE = 4096;

interface TwinKey {
  id: string;
  arn: string;
  spec: "ECC_NIST_EDWARDS25519" | "ECC_NIST_P256" | "RSA_2048";
  privateKey: KeyObject;
  publicKey: KeyObject;
}

class KmsFault extends Error {
  readonly type: string;
  constructor(type: string, message: string) {
    super(message);
    this.type = type;
  }
}

export class KmsTwin {
  readonly calls: { op: string; keyId?: string }[] = [];
  readonly #keys = new Map<string, TwinKey>();
  readonly #aliases = new Map<string, string>();
  readonly #server: Server;
  readonly #region: string;
  /** Operations refused with AccessDeniedException (a role without kms:Sign, say). */
  deny = new Set<string>();

  private constructor(region: string) {
    this.#region = region;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) =>
        this.#fault(res, 500, "KMSInternalException", String(error)),
      );
    });
  }

  static async start(region = "us-east-1"): Promise<KmsTwin> {
    const t = new KmsTwin(region);
    t.#server.listen(0, "127.0.0.1");
    await once(t.#server, "listening");
    return t;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** The environment an operator command needs to reach this twin. */
  env(): Record<string, string> {
    return {
      AWS_ENDPOINT_URL_KMS: this.url,
      AWS_REGION: this.#region,
      AWS_ACCESS_KEY_ID: "twin",
      AWS_SECRET_ACCESS_KEY: "twin",
    };
  }

  /** A key made directly (tests): its ARN. */
  createKey(spec: TwinKey["spec"] = "ECC_NIST_EDWARDS25519", alias?: string): string {
    const id = randomUUID();
    const pair =
      spec === "ECC_NIST_EDWARDS25519"
        ? generateKeyPairSync("ed25519")
        : spec === "ECC_NIST_P256"
          ? generateKeyPairSync("ec", { namedCurve: "P-256" })
          : generateKeyPairSync("rsa", { modulusLength: 2048 });
    const arn = `arn:aws:kms:${this.#region}:${ACCOUNT}:key/${id}`;
    this.#keys.set(id, { id, arn, spec, ...pair });
    if (alias) this.#aliases.set(alias, id);
    return arn;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #key(ref: unknown): TwinKey {
    if (typeof ref !== "string" || ref === "") throw new KmsFault("ValidationException", "KeyId is required");
    let id = ref;
    const aliasArn = /^arn:aws:kms:[^:]+:\d{12}:(alias\/.+)$/.exec(ref);
    const alias = aliasArn ? aliasArn[1]! : ref.startsWith("alias/") ? ref : undefined;
    if (alias) id = this.#aliases.get(alias) ?? "";
    else id = /key\/(.+)$/.exec(ref)?.[1] ?? ref;
    const key = this.#keys.get(id);
    if (!key) throw new KmsFault("NotFoundException", `Key '${ref}' does not exist`);
    return key;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = String(req.headers["x-amz-target"] ?? "");
    const op = target.startsWith("TrentService.") ? target.slice("TrentService.".length) : "";
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as Record<string, unknown>;
    } catch {
      return this.#fault(res, 400, "SerializationException", "body is not JSON");
    }
    this.calls.push({ op, ...(typeof body.KeyId === "string" ? { keyId: body.KeyId } : {}) });
    try {
      if (this.deny.has(op)) {
        throw new KmsFault(
          "AccessDeniedException",
          `User: arn:aws:sts::${ACCOUNT}:assumed-role/twin is not authorized to perform: kms:${op}`,
        );
      }
      this.#json(res, this.#answer(op, body));
    } catch (error) {
      if (error instanceof KmsFault) return this.#fault(res, 400, error.type, error.message);
      throw error;
    }
  }

  #answer(op: string, b: Record<string, unknown>): Record<string, unknown> {
    switch (op) {
      case "CreateKey": {
        const spec = (b.KeySpec ?? "SYMMETRIC_DEFAULT") as string;
        if (spec !== "ECC_NIST_EDWARDS25519" && spec !== "ECC_NIST_P256" && spec !== "RSA_2048")
          throw new KmsFault("UnsupportedOperationException", `the twin makes no ${spec} keys`);
        const arn = this.createKey(spec);
        const key = this.#key(arn);
        return {
          KeyMetadata: { KeyId: key.id, Arn: arn, KeySpec: spec, KeyUsage: "SIGN_VERIFY", Enabled: true },
        };
      }
      case "CreateAlias": {
        const key = this.#key(b.TargetKeyId);
        if (typeof b.AliasName !== "string" || !b.AliasName.startsWith("alias/"))
          throw new KmsFault("ValidationException", "AliasName must begin with alias/");
        this.#aliases.set(b.AliasName, key.id);
        return {};
      }
      case "GetPublicKey": {
        const key = this.#key(b.KeyId);
        return {
          KeyId: key.arn,
          KeySpec: key.spec,
          KeyUsage: "SIGN_VERIFY",
          PublicKey: key.publicKey.export({ type: "spki", format: "der" }).toString("base64"),
          SigningAlgorithms: algorithms(key.spec),
        };
      }
      case "Sign":
      case "Verify": {
        const key = this.#key(b.KeyId);
        const alg = String(b.SigningAlgorithm ?? "");
        if (!algorithms(key.spec).includes(alg))
          throw new KmsFault(
            "InvalidKeyUsageException",
            `${alg} is not a signing algorithm of a ${key.spec} key`,
          );
        const message = Buffer.from(String(b.Message ?? ""), "base64");
        if (message.length === 0 || message.length > MAX_MESSAGE)
          throw new KmsFault("ValidationException", `Message must be 1 to ${MAX_MESSAGE} bytes`);
        const type = (b.MessageType ?? "RAW") as string;
        if (alg === "ED25519_SHA_512" && type !== "RAW")
          throw new KmsFault("ValidationException", "ED25519_SHA_512 requires MessageType RAW");
        if (key.spec !== "ECC_NIST_EDWARDS25519")
          throw new KmsFault("UnsupportedOperationException", "the twin signs with Ed25519 keys only");
        if (op === "Sign") {
          return {
            KeyId: key.arn,
            Signature: sign(null, message, key.privateKey).toString("base64"),
            SigningAlgorithm: alg,
          };
        }
        const ok = verify(null, message, key.publicKey, Buffer.from(String(b.Signature ?? ""), "base64"));
        if (!ok) throw new KmsFault("KMSInvalidSignatureException", "the signature is not valid");
        return { KeyId: key.arn, SignatureValid: true, SigningAlgorithm: alg };
      }
      default:
        throw new KmsFault("UnknownOperationException", `the twin does not answer ${op || "this request"}`);
    }
  }

  #json(res: ServerResponse, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(200, {
      "content-type": "application/x-amz-json-1.1",
      "content-length": Buffer.byteLength(text),
    });
    res.end(text);
  }

  #fault(res: ServerResponse, status: number, type: string, message: string): void {
    const text = JSON.stringify({ __type: type, message });
    res.writeHead(status, {
      "content-type": "application/x-amz-json-1.1",
      "x-amzn-errortype": type,
      "content-length": Buffer.byteLength(text),
    });
    res.end(text);
  }
}

function algorithms(spec: TwinKey["spec"]): string[] {
  if (spec === "ECC_NIST_EDWARDS25519") return ["ED25519_SHA_512", "ED25519_PH_SHA_512"];
  if (spec === "ECC_NIST_P256") return ["ECDSA_SHA_256"];
  return ["RSASSA_PSS_SHA_256", "RSASSA_PKCS1_V1_5_SHA_256"];
}
