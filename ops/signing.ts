/**
 * Signing keys of exports and day proofs: a local Ed25519 key (a PEM file, or the PEM in an
 * environment variable) and its public half, which is all a third party needs to check.
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
import { type Signature, signedBytes } from "../functions/domain/evidence.ts";

/** A key problem the operator can fix (missing, unreadable, of another kind). */
export class KeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeyError";
  }
}

export interface Signer {
  keyId: string;
  sign<T extends { signature?: Signature }>(doc: T): T & { signature: Signature };
}

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
    sign(doc) {
      const value = sign(null, signedBytes(doc), key).toString("base64");
      return { ...doc, signature: { alg: "Ed25519", keyId, value } };
    },
  };
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
