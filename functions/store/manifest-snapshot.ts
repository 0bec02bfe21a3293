/**
 * A snapshot of a source's manifests in one object (`.backup/manifest-snapshots/{source}.bin`,
 * domain/keys.ts): what a planning run held of them at its end, each with the ETag it was stored
 * under, written when a new process would otherwise read enough of them (BackupStore
 * writeManifestSnapshot). A new process (a cold Lambda container, `run --once`) reads it once instead of a GET per
 * manifest (10,000 GETs were most of a fresh run's CPU, bench figure 5) and holds each copy whose
 * ETag the listing of the source's manifests shows (manifest-cache.ts: from then on a copy held is
 * used only while the listing shows its ETag, and the lease write is conditional on it).
 *
 * Why that is safe: an entry is a manifest's content with the ETag of exactly that content, as the
 * writing process held it (read with it, or written and answered with it), never a content it meant
 * to write; an object's ETag changes with its content (S3 and the stores we support: an MD5 of the
 * body, or an opaque value per write), so a copy whose ETag the strongly consistent listing shows is
 * the object's content. A snapshot written before a change (another planner, an operator, a lost
 * race) only costs the GETs of what changed. A snapshot that is missing, damaged (checked: length,
 * CRC32, each manifest's source and stream against its key), of another format or another source is
 * not used at all: every manifest is then read as without it.
 *
 * Format 1, little-endian, laid out so that decoding is slicing (no JSON of covered ranges at all):
 *   "FBMANSNP" (8 bytes), format (u8, 1), width of a covered value (u8: 4 = u32 seconds, 8 = f64),
 *   0 (u16), header length H (u32), the header (H bytes of JSON: {source, folder, at, streams: [key
 *   tail, ETag, bytes of rest, ranges][]}), each manifest without its covered ranges as JSON (UTF-8,
 *   back to back), zeros to a multiple of 8, the covered ranges (from, to values, back to back),
 *   CRC32 of everything before it (u32).
 * 10,000 manifests of 150 ranges: about 16 MB (1.2 KB of ranges and 0.3 KB of the rest each).
 */
import { endianness } from "node:os";
import { crc32 } from "node:zlib";
import { MalformedAnswerError } from "../domain/errors.ts";
import type { HeldManifest } from "./manifest-cache.ts";

const MAGIC = "FBMANSNP";
const FORMAT = 1;
const FIXED = 16;
/** Typed arrays over the bytes read as little-endian: true on every platform Lambda and Node run on. */
export const SNAPSHOTS_SUPPORTED = endianness() === "LE";

/** A snapshot that is not one this version can use (damaged, truncated, another format or source). */
export class DamagedSnapshotError extends MalformedAnswerError {
  override readonly code: string = "FB_DAMAGED_SNAPSHOT";
}

interface Header {
  source: string;
  folder: string;
  /** Unix seconds of the run that wrote it. */
  at: number;
  /** Per manifest: its key after `folder`, its ETag, the UTF-8 bytes of its rest, its ranges. */
  streams: [string, string, number, number][];
}

/** The manifests held under `folder` (a source's manifests folder), as one object. */
export function encodeManifestSnapshot(
  source: string,
  folder: string,
  at: number,
  held: Iterable<readonly [string, Readonly<HeldManifest>]>,
): Buffer {
  const entries = [...held].filter(([key]) => key.startsWith(folder));
  let values = 0;
  let u32 = true;
  for (const [, e] of entries) {
    values += e.covered.length;
    const c = e.covered;
    for (let i = 0; u32 && i < c.length; i++) {
      const x = c[i]!;
      if (!(x >= 0 && x <= 0xffffffff && Math.floor(x) === x)) u32 = false;
    }
  }
  const width = u32 ? 4 : 8;
  const rests = entries.map(([, e]) => Buffer.byteLength(e.rest));
  const header: Header = {
    source,
    folder,
    at,
    streams: entries.map(([key, e], i) => [
      key.slice(folder.length),
      e.etag,
      rests[i]!,
      e.covered.length / 2,
    ]),
  };
  const headerText = JSON.stringify(header);
  const headerBytes = Buffer.byteLength(headerText);
  const restsAt = FIXED + headerBytes;
  const coveredAt = align8(restsAt + rests.reduce((n, r) => n + r, 0));
  const total = coveredAt + values * width + 4;
  const out = Buffer.alloc(total);
  out.write(MAGIC, 0, "latin1");
  out.writeUInt8(FORMAT, 8);
  out.writeUInt8(width, 9);
  out.writeUInt32LE(headerBytes, 12);
  out.write(headerText, FIXED, "utf8");
  let at8 = restsAt;
  for (const [, e] of entries) at8 += out.write(e.rest, at8, "utf8");
  const covered =
    width === 4
      ? new Uint32Array(out.buffer, out.byteOffset + coveredAt, values)
      : new Float64Array(out.buffer, out.byteOffset + coveredAt, values);
  let v = 0;
  for (const [, e] of entries) {
    covered.set(e.covered, v);
    v += e.covered.length;
  }
  out.writeUInt32LE(crc32(out.subarray(0, total - 4)), total - 4);
  return out;
}

/** One manifest of a snapshot: its key and ETag, and its content, decoded when asked for. */
export interface SnapshotEntry {
  key: string;
  etag: string;
  /** The manifest as held (manifest-cache.ts), checked: its source, stream and key agree. */
  held(): HeldManifest;
}

/**
 * The manifests of a snapshot of `source`'s manifests folder `folder`, or a DamagedSnapshotError
 * saying what is wrong with it. `keyOf(stream)` is the key of a stream's manifest (keys.ts), to
 * check that each entry is the manifest of its key.
 */
export function decodeManifestSnapshot(
  bytes: Buffer,
  source: string,
  folder: string,
  keyOf: (stream: string) => string,
): { at: number; entries: SnapshotEntry[] } {
  const damaged = (why: string) => new DamagedSnapshotError(`manifest snapshot of ${source}: ${why}`);
  if (!SNAPSHOTS_SUPPORTED) throw damaged("not readable on a big-endian platform");
  if (bytes.length < FIXED + 4 || bytes.toString("latin1", 0, 8) !== MAGIC) throw damaged("not a snapshot");
  if (bytes.readUInt8(8) !== FORMAT) throw damaged(`format ${bytes.readUInt8(8)}, not ${FORMAT}`);
  const width = bytes.readUInt8(9);
  if (width !== 4 && width !== 8) throw damaged(`covered values of ${width} bytes`);
  const headerBytes = bytes.readUInt32LE(12);
  if (FIXED + headerBytes + 4 > bytes.length) throw damaged("truncated");
  let header: Header;
  try {
    header = JSON.parse(bytes.toString("utf8", FIXED, FIXED + headerBytes)) as Header;
  } catch {
    throw damaged("its header is not JSON");
  }
  if (!validHeader(header)) throw damaged("its header is not a snapshot's");
  if (header.source !== source || header.folder !== folder) {
    throw damaged(`it holds the manifests of ${header.folder}, not of ${folder}`);
  }
  const restsAt = FIXED + headerBytes;
  let restsEnd = restsAt;
  let values = 0;
  for (const [, , rest, ranges] of header.streams) {
    restsEnd += rest;
    values += ranges * 2;
  }
  const coveredAt = align8(restsEnd);
  const total = coveredAt + values * width + 4;
  if (bytes.length !== total) throw damaged(`${bytes.length} bytes, ${total} expected (truncated?)`);
  if (crc32(bytes.subarray(0, total - 4)) !== bytes.readUInt32LE(total - 4)) throw damaged("CRC32 mismatch");
  // A view needs its offset aligned to the value's width: copied when the bytes are not.
  const aligned = (bytes.byteOffset + coveredAt) % width === 0 ? bytes : Buffer.from(bytes);
  const covered =
    width === 4
      ? new Uint32Array(aligned.buffer, aligned.byteOffset + coveredAt, values)
      : new Float64Array(aligned.buffer, aligned.byteOffset + coveredAt, values);
  const entries: SnapshotEntry[] = [];
  const lead = `{"version":1,"source":${JSON.stringify(source)},"stream":"`;
  let restAt = restsAt;
  let valueAt = 0;
  for (const [tail, etag, restLength, ranges] of header.streams) {
    const key = folder + tail;
    const r = restAt;
    const v = valueAt;
    restAt += restLength;
    valueAt += ranges * 2;
    entries.push({
      key,
      etag,
      held: () => {
        const rest = bytes.toString("utf8", r, r + restLength);
        const m = leadingFields(rest, lead, source) ?? parsedFields(rest);
        if (m === undefined) throw damaged(`the manifest of ${key} is not JSON`);
        if (m === null || typeof m !== "object" || m.version !== 1 || m.source !== source) {
          throw damaged(`the manifest of ${key} is not a manifest of ${source}`);
        }
        if (typeof m.stream !== "string" || keyOf(m.stream) !== key) {
          throw damaged(`the manifest under ${key} is of another stream`);
        }
        // A view: the entries of a snapshot share its bytes (see HeldManifest).
        return { etag, rest, covered: covered.subarray(v, v + ranges * 2) };
      },
    });
  }
  return { at: header.at, entries };
}

type Fields = { version?: unknown; source?: unknown; stream?: unknown } | null;

/**
 * The version, source and stream of a manifest's JSON without parsing all of it, when it starts
 * with them as this version writes them (`lead`: version and source, then the stream's string);
 * undefined when it does not (then it is parsed whole). The rest is checked as JSON where it is used
 * (BackupStore.readManifest reads a manifest whose held copy does not parse).
 */
function leadingFields(rest: string, lead: string, source: string): Fields | undefined {
  if (!rest.startsWith(lead)) return undefined;
  let end = lead.length;
  while (end < rest.length && rest[end] !== '"') end += rest[end] === "\\" ? 2 : 1;
  const next = rest[end + 1];
  if (end >= rest.length || (next !== "," && next !== "}")) return undefined;
  try {
    return { version: 1, source, stream: JSON.parse(rest.slice(lead.length - 1, end + 1)) as unknown };
  } catch {
    return undefined;
  }
}

/** The version, source and stream of a manifest's JSON, parsed whole; undefined when not JSON. */
function parsedFields(rest: string): Fields | undefined {
  try {
    return JSON.parse(rest) as Fields;
  } catch {
    return undefined;
  }
}

function validHeader(h: unknown): h is Header {
  const x = h as Partial<Header> | null;
  return (
    x !== null &&
    typeof x === "object" &&
    typeof x.source === "string" &&
    typeof x.folder === "string" &&
    typeof x.at === "number" &&
    Array.isArray(x.streams) &&
    x.streams.every(
      (s) =>
        Array.isArray(s) &&
        typeof s[0] === "string" &&
        typeof s[1] === "string" &&
        s[1] !== "" &&
        Number.isInteger(s[2]) &&
        s[2] >= 0 &&
        Number.isInteger(s[3]) &&
        s[3] >= 0,
    )
  );
}

function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}
