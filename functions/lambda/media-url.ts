/**
 * Media URLs of playback in AWS: CloudFront signed URLs (custom policy) for `/_media/{key}`, the
 * distribution's behaviour that reads the bucket through the origin access control and trusts only
 * the stack's key group.
 *
 * One policy covers a whole stream folder (`/_media/{prefix}{source}/{stream}/*`) and expires on a
 * 10-minute grid, so every window of a stream gets the same query string for ten minutes: the
 * media's cache key (the path, no query string) is shared by every viewer, and a live playlist
 * reloaded every few seconds keeps the same URLs. The URI is host-relative (`/_media/…`): players
 * resolve it against the playlist's URL, so the CloudFront domain and a custom domain both work,
 * and the policy's resource matches any host (a wildcard for the host, then the stream folder of the key).
 *
 * Signature: RSA-SHA1 over the policy JSON, both in CloudFront's URL-safe base64 (`+`→`-`,
 * `=`→`_`, `/`→`~`), as CloudFront requires.
 */

import { createSign } from "node:crypto";
import { streamPrefix } from "../domain/keys.ts";
import type { MediaAccess } from "../playback/handler.ts";

export const MEDIA_PATH = "/_media/";
const GRID_SECONDS = 600;

export interface MediaUrlInput {
  /** The window's S3 key. */
  key: string;
  prefix: string;
  /** The playback request's source and stream (the policy covers that stream's folder). */
  access: MediaAccess | undefined;
  keyPairId: string;
  /** PEM of the key pair's private key. */
  privateKey: string;
  /** The URL stays valid at least this long. */
  ttlSeconds: number;
  nowSeconds: number;
}

/** `/_media/` + the key, each segment percent-encoded once more (S3 decodes the path once). */
export function mediaPath(key: string): string {
  return `${MEDIA_PATH}${key.split("/").map(encodeURIComponent).join("/")}`;
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
  const path = mediaPath(o.key);
  const folder = o.access ? streamPrefix(o.prefix, o.access.source, o.access.stream) : undefined;
  // The key part only, after a wildcard that takes the host and `/_media`: the policy matches the
  // URL whether CloudFront compares it before or after the viewer-request function strips `/_media`.
  const keyPart = (p: string) => p.slice(MEDIA_PATH.length);
  const resource =
    folder && o.key.startsWith(folder)
      ? `https://*/${keyPart(mediaPath(folder))}*`
      : `https://*/${keyPart(path)}`;
  const expiresAt = Math.ceil((o.nowSeconds + o.ttlSeconds) / GRID_SECONDS) * GRID_SECONDS;
  const policy = mediaPolicy(resource, expiresAt);
  const signature = createSign("RSA-SHA1").update(policy).sign(o.privateKey);
  return `${path}?Policy=${cloudFrontBase64(policy)}&Signature=${cloudFrontBase64(signature)}&Key-Pair-Id=${o.keyPairId}`;
}
