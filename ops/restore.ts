/**
 * `restore`: a time range of one stream brought back from the backup as one playable file in the
 * stored format. Windows come from the per-day catalogs and pending completion records (no listing);
 * each object's SHA-256 is checked against its record while it streams to the file.
 *
 * - MP4: joined by Mp4Joiner (one init segment, continuous timestamps from 0, fragments outside the
 *   range dropped: the file starts at the fragment holding `from` and ends with the one holding
 *   `to`, i.e. trimmed to within a fragment, one second for Flussonic's archive fragments).
 * - MPEG-TS: packets concatenated, which the format allows; windows that overlap the range are
 *   included whole (TS is not trimmed).
 *
 * The file is written as `<out>.partial` and renamed when complete: a failed restore leaves no
 * file that looks finished.
 */
import { createHash } from "node:crypto";
import { once } from "node:events";
import { createWriteStream, renameSync, rmSync } from "node:fs";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import type { ArchiveFormat } from "../functions/config/config.ts";
import { ContainerError, containerCheck, MediaShortError } from "../functions/domain/container-check.ts";
import { Mp4Joiner } from "../functions/domain/mp4-join.ts";
import { decodeKeySegment, encodeKeySegment } from "../functions/domain/names.ts";
import { normalizeRanges, subtractRanges, type TimeRange } from "../functions/domain/ranges.ts";
import { nonOverlappingCover } from "../functions/domain/windows.ts";
import { type BackupStore, storeError } from "../functions/store/backup-store.ts";
import { heldWindowsIn, storedWindowsIn } from "../functions/store/holds.ts";

export interface RestoreOptions {
  store: BackupStore;
  source: string;
  stream: string;
  /** Unix seconds, `[from, to)`. */
  from: number;
  to: number;
  out: string;
  allowGaps: boolean;
  onWindow?: (done: number, total: number, bytes: number) => void;
}

export interface RestoreResult {
  format: ArchiveFormat;
  windows: number;
  bytesWritten: number;
  /** Parts of the range the backup does not hold (restored around with allowGaps). */
  holes: TimeRange[];
  /** First and last second of the windows used. */
  windowsFrom: number;
  windowsTo: number;
  /** MP4: seconds of media written (trimmed); TS: undefined (windows whole). */
  mediaSeconds: number | undefined;
  /** The objects read, in order, as they were read (what an export's evidence names). */
  used: UsedWindow[];
}

/** A window object a restore read: its record, and the ETag and VersionId S3 answered with. */
export interface UsedWindow {
  key: string;
  versionId?: string;
  etag?: string;
  from: number;
  duration: number;
  size: number;
  sha256: string;
  copiedAt: number;
}

/** Restore refused or failed for a reason the operator can act on (printed as is, exit status 1). */
export class RestoreError extends Error {
  readonly code = "FB_RESTORE";
  readonly holes: TimeRange[];
  constructor(message: string, holes: TimeRange[] = []) {
    super(message);
    this.name = "RestoreError";
    this.holes = holes;
  }
}

export interface StoredWindow {
  key: string;
  from: number;
  duration: number;
  format: ArchiveFormat;
  size: number;
  sha256: string;
  /** ETag of the upload the record describes (records from before have none). */
  etag?: string;
  /** Unix seconds. */
  copiedAt: number;
}

export async function restoreRange(o: RestoreOptions): Promise<RestoreResult> {
  const windows = await windowsIn(o);
  const holes = subtractRanges(
    [{ from: o.from, to: o.to }],
    normalizeRanges(windows.map((w) => ({ from: w.from, to: w.from + w.duration }))),
  );
  if (windows.length === 0)
    throw new RestoreError(await absence(o.store, o.source, o.stream, o.from, o.to), holes);
  if (holes.length > 0 && !o.allowGaps) {
    throw new RestoreError(
      [
        `the backup has ${holes.length} hole(s) in ${span(o.from, o.to)} of stream "${o.stream}":`,
        ...holes.map((h) => `  ${span(h.from, h.to)} (${h.to - h.from} s)`),
        "The source may not have recorded those seconds, or they are not copied yet (see `status`).",
        "Restore the parts around them separately, or pass --allow-gaps to join what there is (a hole plays as a cut).",
      ].join("\n"),
      holes,
    );
  }
  const formats = new Set(windows.map((w) => w.format));
  if (formats.size > 1) {
    throw new RestoreError(
      `the range holds windows of several formats (${[...formats].join(", ")}): restore each part separately`,
    );
  }
  const format = windows[0]!.format;
  const partial = `${o.out}.partial`;
  const file = createWriteStream(partial);
  const write = async (b: Buffer) => {
    if (!file.write(b)) await once(file, "drain");
  };
  let bytesWritten = 0;
  const used: UsedWindow[] = [];
  const joiner = format === "mp4" ? new Mp4Joiner({ keepFrom: o.from, keepTo: o.to }) : undefined;
  try {
    for (const [i, w] of windows.entries()) {
      const res = await o.store.s3
        .send(new GetObjectCommand({ Bucket: o.store.bucket, Key: w.key }))
        .catch((error: unknown) => {
          throw storeError(error, `read ${w.key}`);
        });
      const hash = createHash("sha256");
      // Media time too: a window recorded whole whose media stops early (copied before the copier
      // checked it) is a hole, not a silent cut.
      const check = containerCheck(w.format, w);
      let unreadable = false;
      let size = 0;
      joiner?.startWindow({ from: w.from, duration: w.duration, label: w.key });
      for await (const chunk of res.Body as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        if (!unreadable) {
          try {
            check.feed(chunk);
          } catch (error) {
            // Framing the hash vouches for but the check cannot read: nothing to judge by.
            if (!(error instanceof ContainerError)) throw error;
            unreadable = true;
          }
        }
        size += chunk.length;
        for (const piece of joiner ? joiner.push(chunk) : [Buffer.from(chunk)]) {
          bytesWritten += piece.length;
          await write(piece);
        }
      }
      joiner?.endWindow();
      if (size !== w.size || hash.digest("hex") !== w.sha256) {
        if (w.etag && res.ETag && res.ETag !== w.etag && res.Metadata?.from === String(w.from)) {
          throw new RestoreError(
            `${w.key}: the object (ETag ${res.ETag}) is another copy of the window than its record describes (ETag ${w.etag}), from a copy that stopped before recording it; its redelivery re-records it; run \`verify\``,
          );
        }
        throw new RestoreError(
          `${w.key}: the stored bytes differ from what was recorded at copy time (size or SHA-256); run \`verify\``,
        );
      }
      let short: MediaShortError | undefined;
      try {
        if (!unreadable) check.finish();
      } catch (error) {
        if (error instanceof MediaShortError) short = error;
        else if (!(error instanceof ContainerError)) throw error;
      }
      if (short && !o.allowGaps) {
        throw new RestoreError(
          `${w.key}: the stored window is incomplete: ${short.message}; restore around it, or pass --allow-gaps to join what there is`,
        );
      }
      if (short) holes.push(short.missing);
      used.push({
        key: w.key,
        ...(res.VersionId ? { versionId: res.VersionId } : {}),
        ...(res.ETag ? { etag: res.ETag } : {}),
        from: w.from,
        duration: w.duration,
        size: w.size,
        sha256: w.sha256,
        copiedAt: w.copiedAt,
      });
      o.onWindow?.(i + 1, windows.length, bytesWritten);
    }
    joiner?.finish();
    file.end();
    await once(file, "close");
    renameSync(partial, o.out);
  } catch (error) {
    // Writes still buffered fail once the file is destroyed: not an error of their own.
    file.on("error", () => undefined);
    file.destroy();
    rmSync(partial, { force: true });
    throw error;
  }
  const last = windows.at(-1)!;
  return {
    format,
    windows: windows.length,
    bytesWritten,
    holes,
    windowsFrom: windows[0]!.from,
    windowsTo: last.from + last.duration,
    mediaSeconds: joiner?.outputSeconds,
    used,
  };
}

/**
 * Windows to join for the range, oldest first: the recorded ones and the held copies (a held copy
 * stands for its window, which may have expired), as a cover without overlap (windows of two
 * lengths from one start can both be stored).
 */
async function windowsIn(o: RestoreOptions): Promise<StoredWindow[]> {
  const byWindow = new Map<string, StoredWindow>();
  for (const w of await recordedWindowsIn(o.store, o.source, o.stream, o.from, o.to)) {
    byWindow.set(`${w.from}-${w.duration}`, w);
  }
  for (const w of await heldWindowsIn(o.store, o.source, o.stream, o.from, o.to)) {
    byWindow.set(`${w.from}-${w.duration}`, w);
  }
  return nonOverlappingCover([...byWindow.values()], o.from, o.to);
}

/**
 * Every recorded window of a stream overlapping `[from, to)`, from the per-day catalogs and the
 * pending completion records (no listing of window objects), oldest first.
 */
export async function recordedWindowsIn(
  store: BackupStore,
  source: string,
  stream: string,
  from: number,
  to: number,
): Promise<StoredWindow[]> {
  return storedWindowsIn(store, source, stream, from, to);
}

/**
 * Why the backup has nothing for the range, in words that say what exists: the stream is unknown to
 * the backup (with the names it does hold that look closest), or what it holds of it and when.
 */
export async function absence(
  store: BackupStore,
  source: string,
  stream: string,
  from: number,
  to: number,
): Promise<string> {
  const o = { store, source, stream, from, to };
  const { manifest, etag } = await o.store.readManifest(o.source, o.stream);
  if (etag === undefined) {
    const folders = await o.store.listFolders(`${o.store.prefix}${encodeKeySegment(o.source)}/`);
    const names = [...folders].map((f) => decodeKeySegment(f.split("/").at(-2) ?? ""));
    const close = closestNames(o.stream, names);
    return (
      `the backup has no stream "${o.stream}" of source ${o.source}` +
      (names.length === 0
        ? " (it holds no stream of that source yet)"
        : close.length > 0
          ? ` (did you mean ${close.map((n) => `"${n}"`).join(" or ")}? streams it holds: ${names.length})`
          : ` (streams it holds: ${names
              .slice(0, 10)
              .map((n) => `"${n}"`)
              .join(", ")}${names.length > 10 ? ", ..." : ""})`)
    );
  }
  const covered = manifest.covered;
  if (covered.length === 0) {
    return `the backup holds nothing of stream "${o.stream}" of source ${o.source} now (its copies expired, or none is recorded yet: see \`status\`)`;
  }
  const first = covered[0]!.from;
  const last = covered.at(-1)!.to;
  return `the backup holds nothing of stream "${o.stream}" of source ${o.source} in ${span(o.from, o.to)}; it holds it from ${isoSeconds(first)} to ${isoSeconds(last)}${covered.length > 1 ? ` in ${covered.length} ranges (see \`status\`)` : ""}`;
}

/** Up to three names within a small edit distance of `name` (case ignored), closest first. */
function closestNames(name: string, names: readonly string[]): string[] {
  const limit = Math.max(2, Math.floor(name.length / 3));
  return names
    .map((n) => ({ n, d: editDistance(name.toLowerCase(), n.toLowerCase()) }))
    .filter((x) => x.d <= limit)
    .sort((a, b) => a.d - b.d || a.n.localeCompare(b.n))
    .slice(0, 3)
    .map((x) => x.n);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}

function isoSeconds(t: number): string {
  return new Date(t * 1000).toISOString().replace(".000Z", "Z");
}

function span(from: number, to: number): string {
  const iso = (t: number) => new Date(t * 1000).toISOString().replace(".000Z", "Z");
  return `${iso(from)} – ${iso(to)}`;
}
