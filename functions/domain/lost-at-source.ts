/**
 * "Lost at the source before backup": recorded seconds the source deleted (its retention ran past
 * them) before the backup had copied them. Apart from "not recorded" (gaps the source never
 * recorded, which are never owed) and counted for good in the stream's manifest. Pure.
 */
import type { Manifest } from "./manifest.ts";
import { clipRanges, normalizeRanges, subtractRanges, type TimeRange, totalSeconds } from "./ranges.ts";

/** The oldest second is noted again in the manifest once it moved this far (fewer manifest writes). */
export const OLDEST_NOTE_SECONDS = 3600;

export interface ArchiveNote {
  /** The oldest second the source holds now; undefined when not known (nothing counted lost). */
  oldest: number | undefined;
  /** Recorded seconds the backup lacks now (in the retention, before the settle horizon). */
  lacking: readonly TimeRange[];
  /** The newest hour of the archive starts here: not owed yet (it changes every run). */
  liveFrom: number;
  /** Oldest second kept by the backup (now - retention): older lost ranges are dropped, not the count. */
  retentionStart: number;
}

/**
 * The manifest with the seconds lost since its last write counted (what it owed that is now older
 * than the source's oldest second and still not covered), its owed seconds and noted oldest second
 * brought up to date. The same object when nothing changed, so that a stream in no danger costs no
 * manifest write. `lost` is what this call counted.
 */
export function noteSourceArchive(m: Manifest, note: ArchiveNote): { manifest: Manifest; lost: TimeRange[] } {
  const lost =
    note.oldest === undefined
      ? []
      : subtractRanges(clipRanges(m.owed ?? [], Number.NEGATIVE_INFINITY, note.oldest), m.covered);
  const owed = clipRanges(note.lacking, note.retentionStart, note.liveFrom);
  const keptLost = clipRanges(
    normalizeRanges([...(m.lostAtSource?.ranges ?? []), ...lost]),
    note.retentionStart,
    Number.POSITIVE_INFINITY,
  );
  const lostSeconds = (m.lostAtSource?.seconds ?? 0) + totalSeconds(lost);
  const noteOldest =
    note.oldest !== undefined &&
    (m.sourceOldest === undefined || note.oldest - m.sourceOldest >= OLDEST_NOTE_SECONDS);
  const sameOwed = sameRanges(owed, m.owed ?? []);
  const sameLost = lost.length === 0 && sameRanges(keptLost, m.lostAtSource?.ranges ?? []);
  if (sameOwed && sameLost && !noteOldest) return { manifest: m, lost };
  const { owed: _o, lostAtSource: _l, ...rest } = m;
  return {
    manifest: {
      ...rest,
      ...(owed.length > 0 ? { owed } : {}),
      ...(lostSeconds > 0 ? { lostAtSource: { seconds: lostSeconds, ranges: keptLost } } : {}),
      ...(noteOldest ? { sourceOldest: note.oldest } : {}),
    },
    lost,
  };
}

function sameRanges(a: readonly TimeRange[], b: readonly TimeRange[]): boolean {
  return a.length === b.length && a.every((r, i) => r.from === b[i]!.from && r.to === b[i]!.to);
}
