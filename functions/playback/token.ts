/**
 * Playback tokens (`?token=`): HMAC-SHA256 signed, with an expiry, scoped to a source (all its
 * streams) or to one stream of it.
 *
 * Form: `v1.<payload>.<signature>`, both base64url without padding; the payload is the JSON
 * `{"src": source, "str"?: stream, "exp": unix seconds}` and the signature is HMAC-SHA256 over
 * `v1.<payload>` with a key. Keys are a list, current first: tokens are signed with the first and
 * accepted when any key verifies them, so a key is rotated by putting the new one first and
 * dropping the old one once the tokens it signed have expired.
 *
 * A token is a credential: it never appears in logs or error messages (only the reason it was
 * refused does).
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/** Shortest key accepted (characters): an HMAC key should carry at least 128 bits. */
export const MIN_TOKEN_KEY_LENGTH = 32;

/** What a token grants. */
export interface TokenScope {
  source: string;
  /** One stream of the source; absent: every stream of the source. */
  stream?: string | undefined;
}

const VERSION = "v1";

function sign(key: string, signed: string): Buffer {
  return createHmac("sha256", key).update(signed).digest();
}

/** A token for `scope` valid until `expiresAt` (unix seconds), signed with `key`. */
export function createPlaybackToken(key: string, scope: TokenScope, expiresAt: number): string {
  const payload = Buffer.from(
    JSON.stringify({
      src: scope.source,
      ...(scope.stream !== undefined ? { str: scope.stream } : {}),
      exp: Math.floor(expiresAt),
    }),
  ).toString("base64url");
  const signed = `${VERSION}.${payload}`;
  return `${signed}.${sign(key, signed).toString("base64url")}`;
}

/**
 * Why `token` does not grant `wanted` at `nowSeconds` with any of `keys`, or undefined when it
 * does. The reason is one sentence for the 403 body; it never repeats the token.
 */
export function tokenProblem(
  token: string | undefined,
  keys: readonly string[],
  wanted: { source: string; stream: string },
  nowSeconds: number,
): string | undefined {
  if (!token) return "playback needs a token: add ?token= (`flussonic-backup playback-token` prints one)";
  const parts = token.split(".");
  if (parts.length !== 3 || parts[0] !== VERSION || !parts[1] || !parts[2]) {
    return "the token is malformed (expected a token printed by `flussonic-backup playback-token`)";
  }
  const signed = `${parts[0]}.${parts[1]}`;
  const given = Buffer.from(parts[2], "base64url");
  // Node decodes leniently (padding, stray characters, unused low bits): only the one canonical
  // spelling is accepted, so a token cannot be written many ways (each a cache entry at the edge).
  if (given.toString("base64url") !== parts[2]) {
    return "the token is malformed (its signature is not written as `flussonic-backup playback-token` writes it)";
  }
  const valid = keys.some((key) => {
    const expected = sign(key, signed);
    return expected.length === given.length && timingSafeEqual(expected, given);
  });
  if (!valid)
    return "the token's signature does not match any playback key (a wrong, altered or retired token)";
  let claims: { src?: unknown; str?: unknown; exp?: unknown };
  try {
    claims = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
  } catch {
    return "the token is malformed (its payload is not JSON)";
  }
  if (typeof claims.src !== "string" || typeof claims.exp !== "number") {
    return "the token is malformed (no source or expiry)";
  }
  if (claims.exp <= nowSeconds) {
    return `the token expired at ${new Date(claims.exp * 1000).toISOString()}: ask for a new one`;
  }
  if (claims.src !== wanted.source) {
    return `the token is for source "${claims.src}", not "${wanted.source}"`;
  }
  if (claims.str !== undefined && claims.str !== wanted.stream) {
    return `the token is for stream "${String(claims.str)}" of source "${claims.src}", not "${wanted.stream}"`;
  }
  return undefined;
}

/**
 * The playback keys from the value of the environment variable `variable` (comma-separated,
 * current first), or an Error saying what to set. Every key must be at least
 * MIN_TOKEN_KEY_LENGTH characters.
 */
export function parseTokenKeys(variable: string, value: string | undefined): string[] {
  const keys = (value ?? "")
    .split(",")
    .map((k) => k.trim())
    .filter((k) => k.length > 0);
  if (keys.length === 0) {
    throw new Error(
      `no playback token key: set ${variable} to a secret of at least ${MIN_TOKEN_KEY_LENGTH} characters (e.g. \`openssl rand -hex 32\`; several comma-separated, current first, to rotate) (config playback.tokenKeysEnv names the variable)`,
    );
  }
  const short = keys.findIndex((k) => k.length < MIN_TOKEN_KEY_LENGTH);
  if (short >= 0) {
    throw new Error(
      `playback token key ${short + 1} in ${variable} is shorter than ${MIN_TOKEN_KEY_LENGTH} characters: use a longer secret (e.g. \`openssl rand -hex 32\`)`,
    );
  }
  return keys;
}

/**
 * A token's id for logs and audits: the first 16 hex digits of its SHA-256. It tells the requests
 * of one token apart from another's without being usable as the token (a hash cannot be replayed).
 */
export function tokenId(token: string): string {
  return createHash("sha256").update(token).digest("hex").slice(0, 16);
}
