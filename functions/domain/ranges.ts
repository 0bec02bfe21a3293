/**
 * Time intervals of the archive. One unit in the domain: integer unix seconds, half-open
 * `[from, to)`. Lists are kept sorted, non-overlapping and non-adjacent ("normal form").
 */
export interface TimeRange {
  /** First second included (unix seconds). */
  from: number;
  /** First second not included (unix seconds). */
  to: number;
}

/** A range the source has recorded. */
export type ArchiveRange = TimeRange;

/** Whether a list is in normal form: sorted, no empty range, none overlapping or touching another. */
export function inNormalForm(ranges: readonly TimeRange[]): boolean {
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i]!;
    if (!(r.to > r.from && (i === 0 || r.from > ranges[i - 1]!.to))) return false;
  }
  return true;
}

/** Sorts, drops empty ranges and merges overlapping or touching ones. */
export function normalizeRanges(ranges: readonly TimeRange[]): TimeRange[] {
  // Already in normal form (manifests and archive indexes are): the same copies, without the sort.
  if (inNormalForm(ranges)) return ranges.map((r) => ({ from: r.from, to: r.to }));
  const sorted = ranges.filter((r) => r.to > r.from).sort((a, b) => a.from - b.from || a.to - b.to);
  const out: TimeRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.from <= last.to) {
      last.to = Math.max(last.to, r.to);
    } else {
      out.push({ from: r.from, to: r.to });
    }
  }
  return out;
}

/** The part of each range inside `[from, to)`. Input in normal form gives output in normal form. */
export function clipRanges(ranges: readonly TimeRange[], from: number, to: number): TimeRange[] {
  const out: TimeRange[] = [];
  for (const r of ranges) {
    const a = Math.max(r.from, from);
    const b = Math.min(r.to, to);
    if (b > a) out.push({ from: a, to: b });
  }
  return out;
}

/** `ranges` minus `holes`; both in normal form. */
export function subtractRanges(ranges: readonly TimeRange[], holes: readonly TimeRange[]): TimeRange[] {
  const out: TimeRange[] = [];
  let h = 0;
  for (const r of ranges) {
    let start = r.from;
    while (h < holes.length && holes[h]!.to <= start) h++;
    let k = h;
    while (k < holes.length && holes[k]!.from < r.to) {
      const hole = holes[k]!;
      if (hole.from > start) out.push({ from: start, to: hole.from });
      start = Math.max(start, hole.to);
      k++;
    }
    if (start < r.to) out.push({ from: start, to: r.to });
  }
  return out;
}

/** Intersection of two lists in normal form. */
export function intersectRanges(a: readonly TimeRange[], b: readonly TimeRange[]): TimeRange[] {
  const out: TimeRange[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    const from = Math.max(x.from, y.from);
    const to = Math.min(x.to, y.to);
    if (to > from) out.push({ from, to });
    if (x.to < y.to) i++;
    else j++;
  }
  return out;
}

/** Total seconds covered. */
export function totalSeconds(ranges: readonly TimeRange[]): number {
  let sum = 0;
  for (const r of ranges) sum += r.to - r.from;
  return sum;
}
