/**
 * The simulated archive: which streams a source has and which seconds each one recorded.
 * Deterministic for a seed; the clock is injected so tests can move the live edge.
 */
import { normalizeRanges, type TimeRange } from "../functions/domain/ranges.ts";

export interface SimStreamSpec {
  name: string;
  /** Archive bitrate in bits per second (default 64 kbit/s). */
  bitrateBps?: number;
  /**
   * Recorded ranges, unix seconds, half-open. A range that ends at or after the clock's "now" when
   * the simulator starts (or with `to: Infinity`) is still recording: it grows with the clock.
   * Default: generated over the archive depth with a few gaps.
   */
  ranges?: TimeRange[];
  /**
   * The source's own retention (its DVR `expiration`, reported by the API): seconds older than
   * now - depth are gone (default: `days`).
   */
  depthSeconds?: number;
  /**
   * A disk limit (`storage_limit`/`disk_usage_limit`) that deletes the oldest seconds sooner than
   * the reported expiration: only this many seconds back from now are kept (default: no limit).
   * The API still reports `expiration`; only the moving archive start shows it.
   */
  diskDepthSeconds?: number;
  /** Whether the stream has a DVR block (default true); streams without one are listed but not recorded. */
  dvr?: boolean;
}

export interface SimStream {
  name: string;
  bitrateBps: number;
  depthSeconds: number;
  diskDepthSeconds?: number;
  dvr: boolean;
  /** Ranges as specified; `to` may be Infinity (still recording). */
  ranges: TimeRange[];
}

/** A small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Generated archives are laid out from a fixed epoch, not from "now", so that a simulator started
 * again later (the demo run twice) serves the same ranges and bytes for the same seconds.
 */
const GENERATION_EPOCH = Math.floor(Date.UTC(2026, 0, 1) / 1000);

/**
 * Streams `cam1..camN`, each recording with a few unaligned gaps (20 s to 15 min every 1 to 8
 * hours), still recording now. `bitrateBps` is the average; streams differ around it.
 */
export function generateStreams(
  count: number,
  days: number,
  now: number,
  seed: number,
  bitrateBps = 64_000,
): SimStreamSpec[] {
  const out: SimStreamSpec[] = [];
  const start = Math.min(GENERATION_EPOCH, now - Math.round(days * 86_400) - 600);
  for (let i = 0; i < count; i++) {
    const random = prng(seed * 1000 + i);
    const ranges: TimeRange[] = [];
    let t = start;
    while (t < now) {
      const end = t + Math.floor(3600 + random() * 7 * 3600);
      if (end >= now) {
        ranges.push({ from: t, to: Number.POSITIVE_INFINITY });
        break;
      }
      ranges.push({ from: t, to: end });
      t = end + Math.floor(20 + random() * 880);
    }
    const spread = 0.5 + (i % 5) * 0.25;
    out.push({ name: `cam${i + 1}`, bitrateBps: Math.round(bitrateBps * spread), ranges });
  }
  return out;
}

export function toSimStream(spec: SimStreamSpec, days: number, startNow: number): SimStream {
  const ranges = (spec.ranges ?? []).map((r) => ({
    from: r.from,
    to: r.to >= startNow ? Number.POSITIVE_INFINITY : r.to,
  }));
  return {
    name: spec.name,
    bitrateBps: spec.bitrateBps ?? 64_000,
    depthSeconds: spec.depthSeconds ?? Math.round(days * 86_400),
    ...(spec.diskDepthSeconds !== undefined ? { diskDepthSeconds: spec.diskDepthSeconds } : {}),
    dvr: spec.dvr ?? true,
    ranges: normalizeRanges(ranges.filter((r) => r.to > r.from)),
  };
}

/**
 * What a stream has recorded at `now`: whole seconds inside the depth, the open range ending at
 * `now`. `open` tells whether the last range is still recording.
 */
export function recordedAt(stream: SimStream, now: number): { ranges: TimeRange[]; open: boolean } {
  if (!stream.dvr) return { ranges: [], open: false };
  const oldest = now - Math.min(stream.depthSeconds, stream.diskDepthSeconds ?? Number.POSITIVE_INFINITY);
  const ranges: TimeRange[] = [];
  let open = false;
  for (const r of stream.ranges) {
    const from = Math.max(r.from, oldest);
    const to = Math.min(r.to, now);
    if (r.to > now && r.from < now) open = true;
    if (to > from) ranges.push({ from, to });
  }
  return { ranges, open };
}

/**
 * The recorded seconds of `[from, from + duration)`, as ranges. A range that ends inside a second
 * (closed at x.4 s) serves that second only once it is recorded whole: the archive's fragment
 * of second x is not complete before.
 */
export function recordedSeconds(stream: SimStream, now: number, from: number, duration: number): TimeRange[] {
  const out: TimeRange[] = [];
  for (const r of recordedAt(stream, now).ranges) {
    const a = Math.max(r.from, from);
    const b = Math.floor(Math.min(r.to, from + duration));
    if (b > a) out.push({ from: a, to: b });
  }
  return out;
}
