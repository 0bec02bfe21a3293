/**
 * Signing keys of exports and day proofs: a local Ed25519 key (a PEM file, or the PEM in an
 * environment variable), or an AWS KMS key of spec ECC_NIST_EDWARDS25519 (`Sign` with
 * ED25519_SHA_512, which KMS accepts only with MessageType RAW: pure Ed25519 over the message
 * itself, at most 4096 bytes; the signed message here is about 100). Both make the same Ed25519
 * signatures, so one check with the public key (a PEM, for KMS the one `GetPublicKey` gives)
 * verifies either. Here in the store, beside S3, so that the planner signs day proofs as `prove`
 * does.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import {
  GetPublicKeyCommand,
  type GetPublicKeyCommandOutput,
  KMSClient,
  KMSServiceException,
  SignCommand,
} from "@aws-sdk/client-kms";
import { STACK_SIGNING_KEY_ENV } from "../config/limits.ts";
import { type Signature, signedBytes } from "../domain/evidence.ts";

/** A key problem the operator can fix (missing, unreadable, of another kind). */
export class KeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeyError";
  }
}

export interface Signer {
  keyId: string;
  /** Where the key is, for messages: `--key <file>`, an environment variable, a KMS key. */
  where: string;
  sign<T extends { signature?: Signature }>(doc: T): Promise<T & { signature: Signature }>;
  /** Lets go of the connections (a KMS signer); nothing for a local key. */
  close?(): void;
}

/** The longest message KMS signs as RAW. */
export const KMS_MAX_MESSAGE_BYTES = 4096;

/** First 16 hex digits of the SHA-256 of a public key's SPKI DER. */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash("sha256")
    .update(publicKey.export({ type: "spki", format: "der" }))
    .digest("hex")
    .slice(0, 16);
}

/** Writes a new Ed25519 key pair: `file` (private, mode 0600) and `publicFile`. */
export function initKey(file: string, publicFile: string): { keyId: string } {
  for (const f of [file, publicFile]) {
    if (existsSync(f))
      throw new KeyError(`${f} exists already; give another --out (a key is never overwritten)`);
  }
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  writeFileSync(file, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600, flag: "wx" });
  writeFileSync(publicFile, publicKey.export({ type: "spki", format: "pem" }), { flag: "wx" });
  return { keyId: keyIdOf(publicKey) };
}

/** The signing key from `--key <file>` or else the environment variable `env` names. */
export function loadSigner(o: {
  keyFile?: string | undefined;
  envName: string;
  env: NodeJS.ProcessEnv;
}): Signer {
  let pem: string;
  let where: string;
  if (o.keyFile) {
    where = `--key ${o.keyFile}`;
    try {
      pem = readFileSync(o.keyFile, "utf8");
    } catch (error) {
      throw new KeyError(
        `${where}: cannot read the signing key (${(error as NodeJS.ErrnoException).code ?? "error"}); make one with \`flussonic-backup export-key init\``,
      );
    }
  } else {
    where = `environment variable ${o.envName}`;
    const v = o.env[o.envName];
    if (!v) {
      throw new KeyError(
        `no signing key: give --key <file> or set ${o.envName} to the PEM of an Ed25519 private key (\`flussonic-backup export-key init\` makes one)`,
      );
    }
    pem = v.replaceAll("\\n", "\n");
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw new KeyError(`${where}: not a PEM private key`);
  }
  if (key.asymmetricKeyType !== "ed25519") {
    throw new KeyError(
      `${where}: an ${key.asymmetricKeyType ?? "unknown"} key; exports are signed with Ed25519 keys (\`export-key init\`)`,
    );
  }
  const keyId = keyIdOf(createPublicKey(key));
  return {
    keyId,
    where,
    async sign(doc) {
      const value = sign(null, signedBytes(doc), key).toString("base64");
      return { ...doc, signature: { alg: "Ed25519", keyId, value } };
    },
  };
}

/** A KMS client at the endpoint of the AWS variables (AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL). */
export function kmsClient(env: NodeJS.ProcessEnv): KMSClient {
  const endpoint = env.AWS_ENDPOINT_URL_KMS ?? env.AWS_ENDPOINT_URL;
  return new KMSClient({
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? "us-east-1",
    ...(endpoint ? { endpoint } : {}),
  });
}

function kmsProblem(error: unknown, what: string, kmsKey: string): KeyError {
  const name = error instanceof KMSServiceException ? error.name : (error as Error).name;
  const message = (error as Error).message?.split("\n")[0] ?? String(error);
  const hint =
    name === "AccessDeniedException"
      ? `: the caller needs kms:${what === "sign" ? "Sign" : "GetPublicKey"} on it`
      : name === "NotFoundException"
        ? ": no such key or alias in this account and region (AWS_REGION)"
        : "";
  return new KeyError(`KMS key ${kmsKey}: cannot ${what} (${name}: ${message})${hint}`);
}

/** The public key of a KMS signing key (GetPublicKey), checked to be an Ed25519 signing key. */
export async function kmsPublicKey(kms: KMSClient, kmsKey: string): Promise<KeyObject> {
  let res: GetPublicKeyCommandOutput;
  try {
    res = await kms.send(new GetPublicKeyCommand({ KeyId: kmsKey }));
  } catch (error) {
    throw kmsProblem(error, "read its public key", kmsKey);
  }
  if (
    res.KeySpec !== "ECC_NIST_EDWARDS25519" ||
    res.KeyUsage !== "SIGN_VERIFY" ||
    !res.PublicKey ||
    !(res.SigningAlgorithms ?? []).includes("ED25519_SHA_512")
  ) {
    throw new KeyError(
      `KMS key ${kmsKey}: a ${res.KeySpec ?? "?"} key for ${res.KeyUsage ?? "?"}; exports are signed with an ECC_NIST_EDWARDS25519 key for SIGN_VERIFY (deployment.exportSigningKey creates one)`,
    );
  }
  return createPublicKey({ key: Buffer.from(res.PublicKey), format: "der", type: "spki" });
}

/**
 * A signer over a KMS key: its public key read once (the key id, and a check of each signature
 * before it is used), each document signed with `Sign` ED25519_SHA_512 over the RAW message.
 */
export async function kmsSigner(kms: KMSClient, kmsKey: string): Promise<Signer> {
  const publicKey = await kmsPublicKey(kms, kmsKey);
  const keyId = keyIdOf(publicKey);
  return {
    keyId,
    where: `KMS key ${kmsKey}`,
    close: () => kms.destroy(),
    async sign(doc) {
      const message = signedBytes(doc);
      if (message.length > KMS_MAX_MESSAGE_BYTES) {
        throw new KeyError(
          `KMS key ${kmsKey}: the message is ${message.length} bytes, over KMS's ${KMS_MAX_MESSAGE_BYTES}`,
        );
      }
      let signature: Uint8Array | undefined;
      try {
        const res = await kms.send(
          new SignCommand({
            KeyId: kmsKey,
            Message: message,
            MessageType: "RAW",
            SigningAlgorithm: "ED25519_SHA_512",
          }),
        );
        signature = res.Signature;
      } catch (error) {
        throw kmsProblem(error, "sign", kmsKey);
      }
      const value = Buffer.from(signature ?? []);
      // What KMS returned is checked as every verifier will check it: a bad one is never written.
      if (!verify(null, message, publicKey, value)) {
        throw new KeyError(`KMS key ${kmsKey}: its signature does not verify with its own public key`);
      }
      return { ...doc, signature: { alg: "Ed25519", keyId, value: value.toString("base64") } };
    },
  };
}

/** Writes the PEM of a KMS key's public key (never over a file). */
export async function writeKmsPublicKey(
  kms: KMSClient,
  kmsKey: string,
  file: string,
): Promise<{ keyId: string }> {
  if (existsSync(file))
    throw new KeyError(`${file} exists already; give another --out (a key is never overwritten)`);
  const publicKey = await kmsPublicKey(kms, kmsKey);
  writeFileSync(file, publicKey.export({ type: "spki", format: "pem" }), { flag: "wx" });
  return { keyId: keyIdOf(publicKey) };
}

/** A public key from a PEM file. */
export function loadPublicKey(file: string): KeyObject {
  let pem: string;
  try {
    pem = readFileSync(file, "utf8");
  } catch (error) {
    throw new KeyError(
      `--public-key ${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  try {
    return createPublicKey(pem);
  } catch {
    throw new KeyError(`--public-key ${file}: not a PEM public key`);
  }
}

/** Why a signed document does not check, or undefined when it does. */
export function signatureProblem(doc: { signature?: Signature }, publicKey: KeyObject): string | undefined {
  const s = doc.signature;
  if (!s || typeof s.value !== "string") return "it carries no signature";
  const keyId = keyIdOf(publicKey);
  if (s.keyId !== keyId) return `it was signed by key ${s.keyId}, not by the public key given (${keyId})`;
  const ok =
    s.alg === "Ed25519"
      ? verify(null, signedBytes(doc), publicKey, Buffer.from(s.value, "base64"))
      : verify(
          "sha256",
          signedBytes(doc),
          { key: publicKey, dsaEncoding: "der" },
          Buffer.from(s.value, "base64"),
        );
  return ok ? undefined : "its signature does not match its content (it was changed after it was signed)";
}

/**
 * The key the planner signs day proofs with, when one is configured: `evidence.kmsKey`, else the
 * stack's KMS key (its ARN in STACK_SIGNING_KEY_ENV), else the PEM in `evidence.signingKeyEnv`;
 * undefined when none is (no automatic proofs).
 */
export async function configuredSigner(
  evidence: { kmsKey?: string | undefined; signingKeyEnv: string },
  env: NodeJS.ProcessEnv,
): Promise<Signer | undefined> {
  const kmsKey = evidence.kmsKey ?? env[STACK_SIGNING_KEY_ENV];
  if (kmsKey) {
    const kms = kmsClient(env);
    try {
      return await kmsSigner(kms, kmsKey);
    } catch (error) {
      kms.destroy();
      throw error;
    }
  }
  if (!env[evidence.signingKeyEnv]) return undefined;
  return loadSigner({ envName: evidence.signingKeyEnv, env });
}

// In a module of its own: the planner asks it on every run without loading the KMS client.
export { signingKeyConfigured } from "./signing-key.ts";
