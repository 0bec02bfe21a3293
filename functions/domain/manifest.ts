/**
 * What the backup holds of one stream. The manifest is small on purpose (read by every planner
 * run, for every stream): merged covered ranges, active leases and totals. Per-window details
 * (key, size, SHA-256) live in per-day catalogs and, until the planner compacts them, in
 * completion records written by copiers (one object per window, so concurrent copiers never
 * contend on a shared object).
 */
import type { ArchiveFormat } from "./archive.ts";
import { normalizeRanges, type TimeRange } from "./ranges.ts";

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
  /** Unix seconds. */
  copiedAt: number;
}

/** A window planned and queued, not to be planned again before `until` (unix seconds). */
export interface Lease {
  from: number;
  duration: number;
  until: number;
}

export interface Manifest {
  version: 1;
  source: string;
  stream: string;
  /** Seconds stored in S3 (merged windows). */
  covered: TimeRange[];
  leases: Lease[];
  /** Totals of recorded copies. */
  windows: number;
  bytes: number;
  /** Newest second stored (exclusive end), 0 when nothing is. */
  head: number;
  /** Unix seconds of the last change. */
  updatedAt: number;
}

export function emptyManifest(source: string, stream: string): Manifest {
  return { version: 1, source, stream, covered: [], leases: [], windows: 0, bytes: 0, head: 0, updatedAt: 0 };
}

/** Average bytes per second of what was stored, when known. */
export function storedBitrateBps(m: Manifest): number | undefined {
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
  const done = new Set(records.map((r) => r.from));
  return {
    ...m,
    covered,
    leases: m.leases.filter((l) => !done.has(l.from)),
    windows: m.windows + fresh.length,
    bytes: m.bytes + fresh.reduce((sum, r) => sum + r.size, 0),
    head: Math.max(m.head, ...records.map((r) => r.from + r.duration)),
    updatedAt: now,
  };
}

function isCovered(covered: readonly TimeRange[], from: number, to: number): boolean {
  return covered.some((r) => r.from <= from && to <= r.to);
}

/** Leases still running at `now`. */
export function activeLeases(m: Manifest, now: number): Lease[] {
  return m.leases.filter((l) => l.until > now);
}

/** Drops covered ranges that ended before `before` (out of retention); leaves totals as history. */
export function pruneBefore(m: Manifest, before: number): Manifest {
  if (!m.covered.some((r) => r.to <= before)) return m;
  return { ...m, covered: m.covered.filter((r) => r.to > before) };
}
