/**
 * The S3 key layout: the promise users script against. Readable by people (source, stream, UTC
 * date and time), safe for any allowed name (names are percent-encoded into one segment each).
 *
 *   {prefix}{source}/{stream}/{YYYY-MM-DD}/{HHMMSS}Z-{duration}s.{mp4|ts}   archive windows
 *   {prefix}.backup/manifests/{source}/{stream}.json                          per-stream manifest
 *   {prefix}.backup/manifest-snapshots/{source}.bin                           the manifests at once (a cache)
 *   {prefix}.backup/catalog/{source}/{stream}/{YYYY-MM-DD}.json               per-day list of copies
 *   {prefix}.backup/records/{source}/{stream}/{from}-{duration}.json          completion records
 *   {prefix}.backup/index/{source}/{stream}/{YYYY-MM-DD}.json                 per-day fragment index
 *   {prefix}.backup/index/{source}/{stream}.summary.json                      its per-day summary
 *   {prefix}.backup/holds/{source}.json                                       a source's holds
 *   {prefix}.backup/held/{source}/{stream}/{YYYY-MM-DD}/{HHMMSS}Z-{d}s.{ext}   held copies of windows
 *   {prefix}.backup/audit/{YYYY-MM-DD}/{YYYYMMDDTHHMMSSZ}-{action}-{random}.json  audit records
 *   {prefix}.backup/proofs/{source}/{stream}/{YYYY-MM-DD}.json                signed day proofs
 *   {prefix}.backup/previews/{source}/{stream}/{YYYY-MM-DD}/{ms}-{W}x{H}.jpg  decoded key frames (a cache)
 *
 * Source names never start with ".", so the ".backup/" folder cannot collide with a source.
 */
import type { ArchiveFormat } from "./archive.ts";
import { encodeKeySegment } from "./names.ts";

export interface WindowId {
  source: string;
  stream: string;
  from: number;
  duration: number;
}

/** `2026-11-25` for a unix-seconds time. */
export function utcDate(seconds: number): string {
  return new Date(seconds * 1000).toISOString().slice(0, 10);
}

/** `143000` for a unix-seconds time. */
function utcTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString().slice(11, 19).replaceAll(":", "");
}

/** Folder of one stream's archive windows: `{prefix}{source}/{stream}/`. */
export function streamPrefix(prefix: string, source: string, stream: string): string {
  return `${prefix}${encodeKeySegment(source)}/${encodeKeySegment(stream)}/`;
}

/** Key of the object holding one archive window. */
export function windowKey(prefix: string, w: WindowId, format: ArchiveFormat): string {
  return `${streamPrefix(prefix, w.source, w.stream)}${utcDate(w.from)}/${utcTime(w.from)}Z-${w.duration}s.${format}`;
}

/**
 * The part of a window key after its stream folder, as `windowKey` writes it
 * (`{day}/{HHMMSS}Z-{duration}s.{format}`) → window start and duration, or undefined.
 */
export function parseWindowKeyTail(tail: string): { from: number; duration: number } | undefined {
  const m = /^(\d{4}-\d{2}-\d{2})\/(\d{2})(\d{2})(\d{2})Z-(\d+)s\.(mp4|ts)$/.exec(tail);
  if (!m) return undefined;
  return { from: Date.parse(`${m[1]}T${m[2]}:${m[3]}:${m[4]}Z`) / 1000, duration: Number(m[5]) };
}

const STATE = ".backup/";

export function manifestKey(prefix: string, source: string, stream: string): string {
  return `${manifestsFolder(prefix, source)}${encodeKeySegment(stream)}.json`;
}

/** The folder of a source's manifests (`manifestKey` without the stream): one listing shows them all. */
export function manifestsFolder(prefix: string, source: string): string {
  return `${prefix}${STATE}manifests/${encodeKeySegment(source)}/`;
}

/**
 * A snapshot of a source's manifests, each with the ETag it was stored under, written by the planner
 * after a run that changed or read enough of them (functions/store/manifest-snapshot.ts): a new process reads it once
 * instead of each manifest, and uses a copy only while the listing shows that ETag. Safe to delete.
 */
export function manifestSnapshotKey(prefix: string, source: string): string {
  return `${prefix}${STATE}manifest-snapshots/${encodeKeySegment(source)}.bin`;
}

export function catalogKey(prefix: string, source: string, stream: string, day: string): string {
  return `${prefix}${STATE}catalog/${encodeKeySegment(source)}/${encodeKeySegment(stream)}/${day}.json`;
}

/**
 * The fragment index of one stream's windows that start on `day` (fragment-index.ts
 * `FragmentIndexDay`), written by the planner beside the day's catalog.
 */
export function fragmentIndexKey(prefix: string, source: string, stream: string, day: string): string {
  return `${prefix}${STATE}index/${encodeKeySegment(source)}/${encodeKeySegment(stream)}/${day}.json`;
}

/** The per-day fragment index's folder of one stream (`fragmentIndexKey` without the day). */
export function fragmentIndexFolder(prefix: string, source: string, stream: string): string {
  return `${prefix}${STATE}index/${encodeKeySegment(source)}/${encodeKeySegment(stream)}/`;
}

/**
 * The summary of a stream's fragment index days (stored spans and bytes per day, with the ETag of
 * the day object each was made from), kept beside them by whoever writes a day: playback reads it
 * instead of one object per day.
 */
export function fragmentIndexSummaryKey(prefix: string, source: string, stream: string): string {
  return `${prefix}${STATE}index/${encodeKeySegment(source)}/${encodeKeySegment(stream)}.summary.json`;
}

/** Folder of all pending completion records of a source (one listing per planner run). */
export function recordsPrefix(prefix: string, source: string): string {
  return `${prefix}${STATE}records/${encodeKeySegment(source)}/`;
}

export function recordKey(prefix: string, w: WindowId): string {
  return `${recordsPrefix(prefix, w.source)}${encodeKeySegment(w.stream)}/${w.from}-${w.duration}.json`;
}

/** The operator's switch for a source (pause/resume), read by the planner and the copiers. */
export function controlKey(prefix: string, source: string): string {
  return `${prefix}${STATE}control/${encodeKeySegment(source)}.json`;
}

/** The book of a source's holds (functions/domain/evidence.ts `HoldBook`). */
export function holdsKey(prefix: string, source: string): string {
  return `${prefix}${STATE}holds/${encodeKeySegment(source)}.json`;
}

/**
 * The held copy of a window: the window's own key tail under `.backup/held/`, a folder no lifecycle
 * rule expires, so the copy stays until the last hold over it is released.
 */
export function heldKey(prefix: string, w: WindowId, format: ArchiveFormat): string {
  return `${heldFolder(prefix, w.source, w.stream, utcDate(w.from))}${utcTime(w.from)}Z-${w.duration}s.${format}`;
}

/** The held copies of one stream's windows that start on `day`. */
export function heldFolder(prefix: string, source: string, stream: string, day: string): string {
  return `${prefix}${STATE}held/${encodeKeySegment(source)}/${encodeKeySegment(stream)}/${day}/`;
}

/** The audit trail's folder (one folder per UTC day under it). */
export function auditFolder(prefix: string): string {
  return `${prefix}${STATE}audit/`;
}

/** A new audit record's key: its day, its time, the action and a random tail (write-once). */
export function auditKey(prefix: string, at: number, action: string, random: string): string {
  const stamp = new Date(at * 1000).toISOString().slice(0, 19).replaceAll("-", "").replaceAll(":", "");
  return `${auditFolder(prefix)}${utcDate(at)}/${stamp}Z-${action}-${random}.json`;
}

/** The signed proof of what the backup held of a stream on `day`. */
/** The last day proven of each stream of a source (the planner's day proofs). */
export function provenKey(prefix: string, source: string): string {
  return `${prefix}${STATE}proofs/${encodeKeySegment(source)}.json`;
}

export function proofKey(prefix: string, source: string, stream: string, day: string): string {
  return `${prefix}${STATE}proofs/${encodeKeySegment(source)}/${encodeKeySegment(stream)}/${day}.json`;
}

/**
 * A key frame decoded to a JPEG of `width`x`height` (playback's `{from}-preview.jpg` and
 * thumbnails), cached: `ms` is the key frame's unix milliseconds. Safe to delete at any time.
 */
export function previewKey(
  prefix: string,
  source: string,
  stream: string,
  ms: number,
  size: { width: number; height: number },
): string {
  return `${prefix}${STATE}previews/${encodeKeySegment(source)}/${encodeKeySegment(stream)}/${utcDate(Math.floor(ms / 1000))}/${ms}-${size.width}x${size.height}.jpg`;
}
