/**
 * The fragment index: where the playable pieces of each stored archive window are, so that
 * playlists can point into the window objects by byte range with no S3 read of media at request
 * time. Recorded by the copier while the window streams through it (fragment-indexer.ts), kept in
 * the window's completion record until the planner compacts it into one object per stream and
 * day beside the catalog (keys.ts `fragmentIndexKey`), and built for older windows by
 * `flussonic-backup reindex`.
 *
 * Units and time base, everywhere in this module:
 * - byte offsets and lengths are bytes from the start of the window's S3 object;
 * - times (`…Ms`) are unix milliseconds (UTC), integers; durations are milliseconds;
 * - `from`/`duration` of a window are unix seconds, as in its S3 key and its catalog entry.
 *
 * What a fragment is:
 * - fMP4: a `moof` and every byte after it up to the next `moof` or the end of the object (its
 *   `mdat`, and any `free`/`sidx` box in between). Fragments therefore tile the object from the
 *   first `moof` to its end, without gaps. `init` is `ftyp` + `moov` (from byte 0 to the end of
 *   the `moov`); bytes between the `moov` and the first `moof` (a `free` box) belong to neither.
 *   Times come from the primary track: the first video track (`hdlr` "vide"), else the first
 *   track: `tfdt` over the track timescale (`mdhd`); duration is the sum of that track's sample
 *   durations in the fragment; `keyframe` is its first sample's `sample_is_non_sync` flag
 *   cleared (`trun` first-sample flags, else the per-sample flags, else `tfhd` then `trex`
 *   default sample flags).
 * - MPEG-TS: a run of packets from a random-access point (a packet that starts a PES with the
 *   adaptation field's `random_access_indicator`, or whose payload carries an H.264/HEVC IDR or
 *   parameter set) up to the next one or the end of the object. Bytes before the first
 *   random-access point belong to no fragment. Every TS fragment has `keyframe: true`. `psi` are
 *   the first PAT and the first PMT packets of the object (188 bytes each), which a player needs
 *   before the first fragment it reads.
 *
 * Mapping media time to unix time (`origin`), the same rule as container-check.ts:
 * - fMP4: when the first fragment's decode time, read as unix seconds, falls within
 *   `[from - 2 s, from + duration]`, decode times are unix times ("absolute"; the simulator's
 *   synthetic and real media both are). Otherwise the first fragment is taken to start at the
 *   window's `from` and later ones follow by their decode time ("window").
 * - MPEG-TS: always "window": the first PTS seen in the object is the window's `from`, later PTS
 *   follow (90 kHz, across the 33-bit wrap).
 *
 * Stored form (`StoredWindowIndex`, version `v: 1`) is columnar and run-length/delta encoded to
 * keep a day of 1-second fragments small; `decodeWindowIndex` turns it into `WindowIndex`.
 */
import type { ArchiveFormat } from "./archive.ts";

/** The version written in every stored index; readers ignore entries of another version. */
export const FRAGMENT_INDEX_VERSION = 1;

/** Bytes `[offset, offset + length)` of a window's S3 object. */
export interface ByteRange {
  offset: number;
  length: number;
}

/** One playable piece of a window (see the module comment for what it is per format). */
export interface Fragment {
  /** Byte offset in the window's object of the fragment's first byte (its `moof`, or TS packet). */
  offset: number;
  /** Bytes. */
  length: number;
  /** Decode start time, unix milliseconds. */
  startMs: number;
  /** Milliseconds of media (primary track), so the fragment ends at `startMs + durationMs`. */
  durationMs: number;
  /** Whether the fragment starts with a sync sample (key frame): a segment may start here. */
  keyframe: boolean;
}

/** The index of one stored window object, decoded. */
export interface WindowIndex {
  /** Window start, unix seconds (as in its key). */
  from: number;
  /** Window length the planner asked for, seconds. */
  duration: number;
  format: ArchiveFormat;
  /** S3 key of the window object (the bucket is the backup's). */
  key: string;
  /** Bytes of the object. */
  size: number;
  /** S3 ETag of the object indexed, when known: an object replaced since has another one. */
  etag?: string;
  /** How media time was mapped to unix time (module comment). */
  origin: "absolute" | "window";
  /** fMP4: `ftyp` + `moov`, always at offset 0 (what `EXT-X-MAP` points at). */
  init?: ByteRange;
  /** MPEG-TS: the first PAT and PMT packets. */
  psi?: ByteRange[];
  /**
   * RFC 6381 codecs of the tracks for HLS `CODECS`, comma-separated in track order, e.g.
   * "avc1.64001f,mp4a.40.2"; absent when no track's codec is known (the synthetic media).
   */
  codecs?: string;
  /** Video resolution in pixels, when the init segment has a video track. */
  width?: number;
  height?: number;
  /** In object order (ascending offset and, in practice, ascending time). */
  fragments: Fragment[];
}

/**
 * Stored form of a WindowIndex (in a completion record's `index`, and in the per-day object).
 * Fragment `i` (0-based, `n` fragments):
 * - offset: `o + l[0] + … + l[i-1]` (fragments are contiguous);
 * - startMs: fragment 0 starts at `from * 1000 + t`; fragment `i > 0` starts where fragment
 *   `i - 1` ends plus the correction `s` holds for `i` (0 when absent);
 * - durationMs: from the run-length pairs `d` = `[[durationMs, count], …]` (counts sum to `n`);
 * - keyframe: from the run lengths `k`, alternating and starting with keyframes:
 *   `[keyframes, non-keyframes, keyframes, …]` (sums to `n`; `[n]` when all are keyframes).
 */
export interface StoredWindowIndex {
  v: 1;
  from: number;
  duration: number;
  format: ArchiveFormat;
  key: string;
  size: number;
  etag?: string;
  origin: "absolute" | "window";
  /** `[offset, length]` of the init segment (fMP4). */
  init?: [number, number];
  /** `[offset, length]` of the first PAT and PMT packets (MPEG-TS). */
  psi?: [number, number][];
  codecs?: string;
  width?: number;
  height?: number;
  /** Number of fragments. */
  n: number;
  /** Byte offset of the first fragment. */
  o: number;
  /** Fragment lengths, bytes. */
  l: number[];
  /** First fragment's start, milliseconds after the window's `from`. */
  t: number;
  /** Durations: `[durationMs, count]` runs. */
  d: [number, number][];
  /** Start corrections: `[i, ms]`: fragment i starts ms after fragment i-1 ends (gaps, rounding). */
  s?: [number, number][];
  /** Keyframe run lengths, alternating, starting with keyframes. */
  k: number[];
}

/** One stream's indexes of the windows that start on one UTC day (keys.ts `fragmentIndexKey`). */
export interface FragmentIndexDay {
  v: 1;
  source: string;
  stream: string;
  /** `YYYY-MM-DD` (UTC) of the windows' `from`. */
  day: string;
  /** Sorted by `from`, then `duration`; one entry per window (`from`, `duration`). */
  windows: StoredWindowIndex[];
}

export function encodeWindowIndex(w: WindowIndex): StoredWindowIndex {
  const f = w.fragments;
  const d: [number, number][] = [];
  const s: [number, number][] = [];
  const k: number[] = [];
  let keyRun = true;
  let run = 0;
  for (let i = 0; i < f.length; i++) {
    const x = f[i]!;
    const last = d[d.length - 1];
    if (last && last[0] === x.durationMs) last[1]++;
    else d.push([x.durationMs, 1]);
    if (i > 0) {
      const prev = f[i - 1]!;
      const delta = x.startMs - (prev.startMs + prev.durationMs);
      if (delta !== 0) s.push([i, delta]);
    }
    if (x.keyframe === keyRun) run++;
    else {
      k.push(run);
      keyRun = !keyRun;
      run = 1;
    }
  }
  if (f.length > 0) k.push(run);
  return {
    v: FRAGMENT_INDEX_VERSION,
    from: w.from,
    duration: w.duration,
    format: w.format,
    key: w.key,
    size: w.size,
    ...(w.etag !== undefined ? { etag: w.etag } : {}),
    origin: w.origin,
    ...(w.init ? { init: [w.init.offset, w.init.length] as [number, number] } : {}),
    ...(w.psi ? { psi: w.psi.map((r) => [r.offset, r.length] as [number, number]) } : {}),
    ...(w.codecs !== undefined ? { codecs: w.codecs } : {}),
    ...(w.width !== undefined ? { width: w.width } : {}),
    ...(w.height !== undefined ? { height: w.height } : {}),
    n: f.length,
    o: f[0]?.offset ?? w.size,
    l: f.map((x) => x.length),
    t: f.length > 0 ? f[0]!.startMs - w.from * 1000 : 0,
    d,
    ...(s.length > 0 ? { s } : {}),
    k,
  };
}

/** The decoded index, or undefined for an entry of another version or a malformed one. */
export function decodeWindowIndex(x: StoredWindowIndex): WindowIndex | undefined {
  if (!x || x.v !== FRAGMENT_INDEX_VERSION || !Array.isArray(x.l) || x.l.length !== x.n) return undefined;
  const fragments: Fragment[] = new Array(x.n);
  const corrections = new Map(x.s ?? []);
  let offset = x.o;
  let start = x.from * 1000 + x.t;
  let dRun = 0;
  let dLeft = x.d[0]?.[1] ?? 0;
  let kRun = 0;
  let kLeft = x.k[0] ?? 0;
  for (let i = 0; i < x.n; i++) {
    while (dLeft === 0 && dRun < x.d.length - 1) dLeft = x.d[++dRun]![1];
    while (kLeft === 0 && kRun < x.k.length - 1) kLeft = x.k[++kRun]!;
    if (dLeft === 0 || kLeft === 0) return undefined;
    const durationMs = x.d[dRun]![0];
    if (i > 0) start += corrections.get(i) ?? 0;
    const length = x.l[i]!;
    fragments[i] = { offset, length, startMs: start, durationMs, keyframe: kRun % 2 === 0 };
    offset += length;
    start += durationMs;
    dLeft--;
    kLeft--;
  }
  return {
    from: x.from,
    duration: x.duration,
    format: x.format,
    key: x.key,
    size: x.size,
    ...(x.etag !== undefined ? { etag: x.etag } : {}),
    origin: x.origin,
    ...(x.init ? { init: { offset: x.init[0], length: x.init[1] } } : {}),
    ...(x.psi ? { psi: x.psi.map(([o, l]) => ({ offset: o, length: l })) } : {}),
    ...(x.codecs !== undefined ? { codecs: x.codecs } : {}),
    ...(x.width !== undefined ? { width: x.width } : {}),
    ...(x.height !== undefined ? { height: x.height } : {}),
    fragments,
  };
}

/** Unix ms where the window's media starts (its first fragment), or its `from` when it has none. */
export function windowStartMs(w: WindowIndex): number {
  return w.fragments[0]?.startMs ?? w.from * 1000;
}

/** Unix ms where the window's media ends (the furthest fragment end), or its `from` when empty. */
export function windowEndMs(w: WindowIndex): number {
  let end = w.from * 1000;
  for (const f of w.fragments) end = Math.max(end, f.startMs + f.durationMs);
  return end;
}

/** First index `i` with `fragments[i].startMs >= ms` (fragments sorted by start), or the length. */
function lowerBound(fragments: readonly Fragment[], ms: number): number {
  let lo = 0;
  let hi = fragments.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (fragments[mid]!.startMs < ms) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The window's fragments that overlap `[fromMs, toMs)` (unix ms): those with
 * `startMs < toMs` and `startMs + durationMs > fromMs`, in order. Binary search; no copy of the
 * index beyond the result.
 */
export function fragmentsBetween(w: WindowIndex, fromMs: number, toMs: number): Fragment[] {
  const f = w.fragments;
  let i = lowerBound(f, fromMs);
  while (i > 0 && f[i - 1]!.startMs + f[i - 1]!.durationMs > fromMs) i--;
  const out: Fragment[] = [];
  for (; i < f.length && f[i]!.startMs < toMs; i++) {
    if (f[i]!.startMs + f[i]!.durationMs > fromMs) out.push(f[i]!);
  }
  return out;
}

/**
 * Index in `w.fragments` of the first keyframe fragment starting at or after `ms` (unix ms), or
 * -1 when there is none (Flussonic starts a catch-up playlist at the first key frame at or after
 * `from`).
 */
export function firstKeyframeAtOrAfter(w: WindowIndex, ms: number): number {
  const f = w.fragments;
  for (let i = lowerBound(f, ms); i < f.length; i++) if (f[i]!.keyframe) return i;
  return -1;
}

/**
 * Windows without overlap, in time order, from indexes that may overlap (the catalog can list a
 * `{0, 600}` window beside `{0, 300}` and `{300, 300}` after a lost lease and a new window length):
 * windows are taken by start; one overlapping an already taken one is dropped, the longer window
 * winning a tie of starts. The result is what a playlist walks.
 */
export function coverWindows(windows: readonly WindowIndex[]): WindowIndex[] {
  const sorted = [...windows].sort((a, b) => a.from - b.from || b.duration - a.duration);
  const out: WindowIndex[] = [];
  let end = Number.NEGATIVE_INFINITY;
  for (const w of sorted) {
    if (w.from < end) continue;
    out.push(w);
    end = w.from + w.duration;
  }
  return out;
}

/**
 * How the playback handler reads the index (functions/store/fragment-index-store.ts implements
 * it over S3): the indexes of one stream's windows that overlap `[fromSec, toSec)` (unix seconds),
 * sorted by `from` then `duration`, from the per-day objects (at most one GET per day) plus the
 * completion records the planner has not compacted yet (so an EVENT playlist grows as windows
 * land). Windows stored before the index existed and not reindexed yet are absent. Windows may
 * overlap: pass the result through `coverWindows`.
 */
export interface FragmentIndexReader {
  readFragmentIndex(source: string, stream: string, fromSec: number, toSec: number): Promise<WindowIndex[]>;
  /**
   * What `recording_status.json` and `ranges.json` need of `[fromSec, toSec)`, with a bounded number
   * of reads however long the span (a per-stream summary of the days): the stored media as spans
   * (`storedSpans` of the covering windows) and the bytes of those windows. Optional: without it,
   * the handler reads the windows.
   */
  readStoredSpans?(source: string, stream: string, fromSec: number, toSec: number): Promise<StoredSpans>;
}

/** Stored media of a stream: merged `[startMs, endMs)` spans, sorted, and the windows' bytes. */
export interface StoredSpans {
  spans: [number, number][];
  bytes: number;
}

/**
 * `[startMs, endMs)` spans of stored media, sorted by start and merged where the next starts at
 * most `toleranceMs` after the current one ends (small jumps between fragments are not holes).
 */
export function mergeSpans(
  spans: readonly (readonly [number, number])[],
  toleranceMs: number,
): [number, number][] {
  const sorted = [...spans].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: [number, number][] = [];
  for (const [start, end] of sorted) {
    const last = out.at(-1);
    if (last && start <= last[1] + toleranceMs) last[1] = Math.max(last[1], end);
    else out.push([start, end]);
  }
  return out;
}

/** The stored spans and bytes of windows (passed through `coverWindows` first). */
export function storedSpans(windows: readonly WindowIndex[], toleranceMs: number): StoredSpans {
  const covered = coverWindows(windows);
  const spans = covered.flatMap((w) =>
    w.fragments.map((f) => [f.startMs, f.startMs + f.durationMs] as [number, number]),
  );
  return { spans: mergeSpans(spans, toleranceMs), bytes: covered.reduce((n, w) => n + w.size, 0) };
}
