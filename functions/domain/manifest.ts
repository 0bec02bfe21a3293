/**
 * What the backup holds of one stream. The manifest is small on purpose (read by every planner
 * run, for every stream): merged covered ranges, active leases and totals. Per-window details
 * (key, size, SHA-256) live in per-day catalogs and, until the planner compacts them, in
 * completion records written by copiers (one object per window, so concurrent copiers never
 * contend on a shared object).
 */
import type { ArchiveFormat } from "./archive.ts";
import type { StoredWindowIndex } from "./fragment-index.ts";
import { clipRanges, normalizeRanges, subtractRanges, type TimeRange } from "./ranges.ts";

/** What a copier records when a window is stored. */
export interface CopyRecord {
  source: string;
  stream: string;
  from: number;
  duration: number;
  format: ArchiveFormat;
  key: string;
  size: number;
  /** Hex SHA-256 of the whole object, computed while streaming. */
  sha256: string;
  /**
   * S3 ETag (and VersionId, in a versioned bucket) of the object these bytes were uploaded as, so a
   * reader can tell a record of another copy of the window (a duplicate delivery whose source sent
   * other bytes) from a changed object. Optional: records written before them have none.
   */
  etag?: string;
  versionId?: string;
  /** Unix seconds. */
  copiedAt: number;
  /**
   * Where the window's fragments are (fragment-index.ts), recorded while it was copied; the
   * planner moves it into the stream's per-day index object. Absent in records written before it.
   */
  index?: StoredWindowIndex;
  /**
   * How the source let this window be read when the copy was paced: "slices" (Range requests) or
   * "whole" (one request). Absent: not paced, or written before it.
   */
  reads?: "slices" | "whole";
  /**
   * The S3 requests this copy made, by billing class (PUT-class: the upload, the listing of
   * orphaned uploads, this record; GET-class: the HEADs before and after, the holds), counted as the
   * copier makes them (the SDK's own retries are not seen). Absent in records written before it.
   * `sqs`: SQS requests receiving and deleting the source's messages: in the local runtime those its
   * poller made since the previous record (so a source's records add up to them, the polling
   * included); in AWS, where the event source mapping makes them, estimated at 2 (a receive and a
   * delete of a batch of 1). Absent in records written before it.
   */
  requests?: { put: number; get: number; sqs?: number };
  /** Lambda GB-seconds of the copy (its duration x the function's memory); absent outside Lambda. */
  gbSeconds?: number;
}

/** A window planned and queued, not to be planned again before `until` (unix seconds). */
export interface Lease {
  from: number;
  duration: number;
  until: number;
  /** Its copy may read at more than the default share of the cap until then (domain/cap-share.ts). */
  copiesUntil?: number;
}

export interface Manifest {
  version: 1;
  source: string;
  stream: string;
  /** Seconds stored in S3 (merged windows). */
  covered: TimeRange[];
  leases: Lease[];
  /** Totals of recorded copies (history: never pruned). */
  windows: number;
  bytes: number;
  /**
   * Bytes and seconds of the windows recorded lately, for the bitrate estimate (optional: manifests
   * written before it have none). Unlike `bytes` it does not mix pruned history with the seconds
   * still covered: it sums the windows folded in, and once it holds more than an hour of video both
   * sums are scaled down together, so the estimate follows the recent bitrate.
   */
  sample?: { bytes: number; seconds: number };
  /**
   * True once a planner that clips the covered ranges at the retention start (pruneBefore) has
   * written this manifest. Absent: written by an older version, whose covered ranges may still
   * reach into seconds the bucket's lifecycle expired (see unverifiedClaims).
   */
  coverageClipped?: true;
  /**
   * How the source answered the newest paced copy of this stream ("slices": it offers Range;
   * "whole": one request per window). The planner sizes windows by it (streamWindowSeconds).
   * Absent: not known yet.
   */
  reads?: "slices" | "whole";
  /** Newest second stored (exclusive end), 0 when nothing is. */
  head: number;
  /** Unix seconds of the last change. */
  updatedAt: number;
  /**
   * Seconds the source deleted before the backup had copied them, "lost at the source before
   * backup" (lost-at-source.ts): `seconds` counts them for good (it never goes down), `ranges` are
   * those still inside the retention. Absent: none lost, or written before it was counted.
   */
  lostAtSource?: { seconds: number; ranges: TimeRange[] };
  /**
   * Recorded seconds the backup lacked when this manifest was written, but for the newest hour: the
   * seconds counted as lost if the source deletes them before they are copied. Absent: none.
   */
  owed?: TimeRange[];
  /**
   * The oldest second the source held when it was last noted (again each time it moved an hour or
   * more): a newer oldest second shows the source deleting (domain/deadlines.ts sourceDepth).
   */
  sourceOldest?: number;
}

export function emptyManifest(source: string, stream: string): Manifest {
  return {
    version: 1,
    source,
    stream,
    covered: [],
    leases: [],
    windows: 0,
    bytes: 0,
    coverageClipped: true,
    head: 0,
    updatedAt: 0,
  };
}

/**
 * Seconds of video the bitrate sample holds: older windows weigh less and less, so a change of the
 * stream's bitrate shows in the estimate within an hour or two of copies.
 */
export const SAMPLE_SECONDS = 3600;

/** Average bits per second of what was stored lately, when known. */
export function storedBitrateBps(m: Manifest): number | undefined {
  if (m.sample && m.sample.seconds > 0 && m.sample.bytes > 0) {
    return Math.round((m.sample.bytes * 8) / m.sample.seconds);
  }
  // A manifest from before the sample: total bytes over covered seconds (inflated once pruned; it
  // is replaced by the sample at the first window folded in).
  let seconds = 0;
  for (const r of m.covered) seconds += r.to - r.from;
  return seconds > 0 && m.bytes > 0 ? Math.round((m.bytes * 8) / seconds) : undefined;
}

/**
 * Folds completion records into the manifest. Idempotent: a record whose window is already covered
 * changes nothing, so replaying records (after a crash between write and delete) is harmless.
 */
export function applyRecords(m: Manifest, records: readonly CopyRecord[], now: number): Manifest {
  const fresh = records.filter((r) => !isCovered(m.covered, r.from, r.from + r.duration));
  if (fresh.length === 0 && records.length === 0) return m;
  const covered = normalizeRanges([
    ...m.covered,
    ...fresh.map((r) => ({ from: r.from, to: r.from + r.duration })),
  ]);
  const done = new Set(records.map((r) => `${r.from}-${r.duration}`));
  const freshBytes = fresh.reduce((sum, r) => sum + r.size, 0);
  // The newest paced copy tells how the source answers now.
  let newest: CopyRecord | undefined;
  for (const r of records) if (r.reads && (!newest || r.copiedAt >= newest.copiedAt)) newest = r;
  return {
    ...m,
    ...(newest?.reads ? { reads: newest.reads } : {}),
    covered,
    leases: m.leases.filter((l) => !done.has(`${l.from}-${l.duration}`)),
    windows: m.windows + fresh.length,
    bytes: m.bytes + freshBytes,
    ...(fresh.length > 0
      ? {
          sample: addToSample(
            m.sample,
            freshBytes,
            fresh.reduce((sum, r) => sum + r.duration, 0),
          ),
        }
      : {}),
    head: Math.max(m.head, ...records.map((r) => r.from + r.duration)),
    updatedAt: now,
  };
}

function addToSample(
  sample: Manifest["sample"],
  bytes: number,
  seconds: number,
): NonNullable<Manifest["sample"]> {
  const sum = { bytes: (sample?.bytes ?? 0) + bytes, seconds: (sample?.seconds ?? 0) + seconds };
  if (sum.seconds <= SAMPLE_SECONDS) return sum;
  const scale = SAMPLE_SECONDS / sum.seconds;
  return { bytes: Math.round(sum.bytes * scale), seconds: SAMPLE_SECONDS };
}

function isCovered(covered: readonly TimeRange[], from: number, to: number): boolean {
  return covered.some((r) => r.from <= from && to <= r.to);
}

/** Leases still running at `now`. */
export function activeLeases(m: Pick<Manifest, "leases">, now: number): Lease[] {
  return m.leases.filter((l) => l.until > now);
}

/**
 * Clips the covered ranges at `before` (the retention start), a range that began earlier included:
 * coverage never claims a second older than the retention, since the bucket's lifecycle rule may
 * have expired its object. The rule expires a window `expiryDays(retentionDays)` = whole days + 1
 * after the object was written (infra/backup-bucket.ts), and an object is written after its last
 * second, so every second at or after `now - retentionDays` is still stored, with a day to spare
 * for a deploy that updates the rule after the planner sees a new retention. Raising the retention
 * therefore re-plans what is older than the old retention (the objects of the lost span are gone or
 * about to be). Totals stay as history.
 */
export function pruneBefore(m: Manifest, before: number): Manifest {
  if (m.coverageClipped && !m.covered.some((r) => r.from < before)) return m;
  return { ...m, covered: clipRanges(m.covered, before, Number.POSITIVE_INFINITY), coverageClipped: true };
}

/**
 * The lifecycle keeps every window at least this long after it was written: its expiry is
 * `ceil(retentionDays) + 1` days, never less than two.
 */
export const SHORTEST_EXPIRY_SECONDS = 2 * 86400;

/**
 * Covered seconds of a manifest from an older version that the bucket's lifecycle may have expired
 * already: inside the retention but older than the shortest expiry. The older version never clipped
 * a continuous range, so after a raise of the retention they may claim objects that are gone; the
 * planner checks them once against the stored windows (keepStored). Empty for any other manifest.
 */
export function unverifiedClaims(m: Manifest, retentionStart: number, now: number): TimeRange[] {
  if (m.coverageClipped) return [];
  return clipRanges(m.covered, retentionStart, now - SHORTEST_EXPIRY_SECONDS);
}

/** The manifest without the seconds of `checked` that no stored window (in normal form) holds. */
export function keepStored(
  m: Manifest,
  checked: readonly TimeRange[],
  stored: readonly TimeRange[],
): Manifest {
  const gone = subtractRanges(checked, stored);
  if (gone.length === 0) return m;
  return { ...m, covered: subtractRanges(m.covered, gone) };
}

/**
 * The manifest without the seconds `[from, to)`: what `verify --repair` does for a window found
 * missing, corrupt or short, so that the backup stops claiming it and the planner copies it again
 * from the source. Other covered seconds, the leases and the totals (history) stay; the head moves
 * back to the newest second still covered when the removed seconds held it. Idempotent: seconds not
 * covered leave the manifest as it is (the same object).
 */
export function uncover(m: Manifest, from: number, to: number): Manifest {
  if (!(from < to) || !m.covered.some((r) => r.from < to && from < r.to)) return m;
  const covered = subtractRanges(m.covered, [{ from, to }]);
  const head =
    from < m.head && m.head <= to
      ? Math.max(0, ...covered.filter((r) => r.to <= from).map((r) => r.to))
      : m.head;
  return { ...m, covered, head };
}
