/**
 * Source and stream names end up in S3 keys, queue names and URLs. This module says which
 * names are allowed and how they are written into S3 keys so that no name can escape its folder.
 */

/** Source names: chosen by the user in the config; they also name AWS resources (queues, alarms). */
export const SOURCE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$/;

export const SOURCE_NAME_RULE =
  "1 to 40 characters: letters, digits, '_' and '-', starting with a letter or digit";

export const STREAM_NAME_RULE =
  "1 to 255 characters, no control characters, no leading or trailing '/', no empty, '.' or '..' path segment";

/** Why `name` is not an allowed source name, or undefined when it is. */
export function sourceNameProblem(name: string): string | undefined {
  return SOURCE_NAME_PATTERN.test(name) ? undefined : `source name must be ${SOURCE_NAME_RULE}`;
}

/**
 * Why `name` is not an allowed stream name, or undefined when it is. Flussonic names may hold
 * `/` (`live/cam1`), dots and dashes; we accept those and refuse only what cannot be a path.
 */
export function streamNameProblem(name: string): string | undefined {
  const bad = `stream name must be ${STREAM_NAME_RULE}`;
  if (name.length === 0 || name.length > 255) return bad;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(name)) return bad;
  const segments = name.split("/");
  if (segments.some((s) => s === "" || s === "." || s === "..")) return bad;
  return undefined;
}

/**
 * One S3 key segment for a name: every byte outside `[A-Za-z0-9._-]` is percent-encoded (UTF-8),
 * so `/` becomes `%2F` and `%` becomes `%25`; a leading `.` is encoded too, so no segment is ever
 * `.` or `..` or hidden. The mapping is one-to-one: `decodeKeySegment` gives the name back.
 */
export function encodeKeySegment(name: string): string {
  let out = "";
  for (const byte of Buffer.from(name, "utf8")) {
    const ch = String.fromCharCode(byte);
    const safe = /[A-Za-z0-9_-]/.test(ch) || (ch === "." && out.length > 0);
    out += safe ? ch : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Inverse of `encodeKeySegment`. */
export function decodeKeySegment(segment: string): string {
  return decodeURIComponent(segment);
}
