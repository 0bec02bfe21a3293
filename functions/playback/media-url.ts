/**
 * Media URLs of playback in AWS: CloudFront signed URLs (custom policy) for `/_media/{key}`, the
 * distribution's behaviour that reads the bucket through the origin access control and trusts only
 * the stack's key group.
 *
 * One policy covers a whole stream folder (`/_media/{prefix}{source}/{stream}/*`) and expires on a
 * 10-minute grid, so every window of a stream gets the same query string for ten minutes: the
 * media's cache key (the path, no query string) is shared by every viewer, and a live playlist
 * reloaded every few seconds keeps the same URLs. The URI is host-relative (`/_media/…`): players
 * resolve it against the playlist's URL.
 *
 * The policy's Resource is anchored: `https://{host}/_media/{stream folder}/*`, the viewer's host
 * (the distribution's domain or its alias, copied into `x-playback-host` by the default behaviour's
 * viewer-request function) and the folder literally, the only wildcard at the end. CloudFront
 * compares the Resource with the whole request URL, the viewer's query string included, `*`
 * matching any characters: a wildcard before the path would let a query string carry another
 * stream's folder (`/_media/s2/x/…mp4?x=/s1/camA/`). With a literal prefix up to the folder's
 * closing `/`, only paths inside the folder match; whatever a query string adds comes after it.
 * Names cannot put a wildcard into the prefix: `encodeKeySegment` writes `*` and `?` as `%2A` and
 * `%3F`, and `mediaPath` encodes `%` and `*` once more.
 *
 * Signature: RSA-SHA1 over the policy JSON, both in CloudFront's URL-safe base64 (`+`→`-`,
 * `=`→`_`, `/`→`~`), as CloudFront requires.
 */

import { createSign } from "node:crypto";
import { streamPrefix } from "../domain/keys.ts";
import type { MediaAccess } from "./handler.ts";

export const MEDIA_PATH = "/_media/";

/**
 * The viewer's `Host`, copied by the playback behaviour's viewer-request function
 * (infra/playback-distribution.ts), since the origin request to the function URL replaces `Host`.
 */
export const PLAYBACK_HOST_HEADER = "x-playback-host";
const GRID_SECONDS = 600;

export interface MediaUrlInput {
  /** The window's S3 key. */
  key: string;
  prefix: string;
  /** The playback request's source and stream (the policy covers that stream's folder). */
  access: MediaAccess | undefined;
  /** The viewer's host (`viewerHost`): the distribution's domain or alias the request came to. */
  host: string;
  keyPairId: string;
  /** PEM of the key pair's private key. */
  privateKey: string;
  /** The URL stays valid at least this long. */
  ttlSeconds: number;
  nowSeconds: number;
}

/**
 * `/_media/` + the key, each segment percent-encoded once more (S3 decodes the path once); `*`
 * too, which `encodeURIComponent` leaves and a policy would read as a wildcard.
 */
export function mediaPath(key: string): string {
  const segment = (s: string) => encodeURIComponent(s).replaceAll("*", "%2A");
  return `${MEDIA_PATH}${key.split("/").map(segment).join("/")}`;
}

/** A DNS host name (what CloudFront routes: the distribution's domain or an alias), lower-cased, or undefined. */
export function viewerHost(value: string | undefined): string | undefined {
  const host = value?.trim().toLowerCase();
  if (!host || host.length > 253) return undefined;
  const label = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
  const labels = host.split(".");
  return labels.length >= 2 && labels.every((l) => label.test(l)) ? host : undefined;
}

export function cloudFrontBase64(data: Buffer | string): string {
  return Buffer.from(data).toString("base64").replaceAll("+", "-").replaceAll("=", "_").replaceAll("/", "~");
}

/** The custom policy of a media URL: the stream folder (or the one key), until `expiresAt`. */
export function mediaPolicy(resource: string, expiresAt: number): string {
  return JSON.stringify({
    Statement: [{ Resource: resource, Condition: { DateLessThan: { "AWS:EpochTime": expiresAt } } }],
  });
}

export function cloudFrontMediaUrl(o: MediaUrlInput): string {
  const host = viewerHost(o.host);
  if (!host)
    throw new Error(`cannot sign a media URL for the host ${JSON.stringify(o.host)}: not a host name`);
  const path = mediaPath(o.key);
  const folder = o.access ? streamPrefix(o.prefix, o.access.source, o.access.stream) : undefined;
  // CloudFront checks the signature on the URL the viewer sent, before the viewer-request function
  // cuts `/_media`; the folder (ending in `/`) or the one key, then nothing but the final wildcard.
  const resource =
    folder && o.key.startsWith(folder) ? `https://${host}${mediaPath(folder)}*` : `https://${host}${path}`;
  const expiresAt = Math.ceil((o.nowSeconds + o.ttlSeconds) / GRID_SECONDS) * GRID_SECONDS;
  const policy = mediaPolicy(resource, expiresAt);
  const signature = createSign("RSA-SHA1").update(policy).sign(o.privateKey);
  return `${path}?Policy=${cloudFrontBase64(policy)}&Signature=${cloudFrontBase64(signature)}&Key-Pair-Id=${o.keyPairId}`;
}
