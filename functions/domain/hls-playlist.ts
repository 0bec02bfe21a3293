/**
 * HLS media playlists over the stored windows, from their fragment index (fragment-index.ts):
 * segments are byte ranges of whole fragments of a window object, so a player reads the backup
 * as it is stored, with no media server and no transcoding.
 *
 * Segments (`windowSegments`), a deterministic function of one window's index and the fragment it
 * starts at:
 * - a segment starts on a key-frame fragment and runs over whole fragments; it ends before a key
 *   frame that would take it past MAX_SEGMENT_MS (6 s), so with key frames every ≤ 6 s each
 *   segment is at most 6 s (a longer GOP gives a longer segment: it cannot be cut). With 1-second
 *   key-frame fragments segments are 6 s; with 2-second GOPs 6 s; with 4-second GOPs 4 s.
 * - a time jump inside a window (a fragment starting more than GAP_TOLERANCE_MS away from where
 *   the previous one ended) ends the segment; the next segment starts at the next key frame and is
 *   marked `discontinuity`.
 * - the first segment of every window is marked `discontinuity` (each window object has its own
 *   init segment and may restart its decode times).
 *
 * Playlists (`renderMediaPlaylist`): version 7; `EXT-X-MAP` with the window's init bytes, and
 * `EXT-X-PROGRAM-DATE-TIME`, on the first segment and after every `EXT-X-DISCONTINUITY`; EXTINF
 * in seconds with milliseconds; `EXT-X-TARGETDURATION` the longest EXTINF rounded (RFC 8216
 * §4.4.3.1).
 *
 * Live (time-shift) numbering (`liveSegments`), stateless so that any number of servers agree:
 * segments are numbered per UTC day of their window's `from`: the n-th segment (0-based) of the
 * day's windows has media sequence `dayNumber * DAY_SEQUENCE_SPAN + n`, and its discontinuity
 * sequence is `dayNumber * DAY_SEQUENCE_SPAN +` the number of discontinuity-marked segments of the
 * day up to and including it. A live playlist holds the segments of one day only: once a segment
 * of the next day is due, the playlist restarts with it (sequence numbers jump forward; a player
 * continues with that segment). Numbers never go back as long as windows are only added; a window
 * that lands late, before segments already served that day, moves the later numbers forward.
 */
import type { Fragment, WindowIndex } from "./fragment-index.ts";

/** A segment may run up to this long (unless a single GOP is longer). */
export const MAX_SEGMENT_MS = 6000;
/** A fragment starting further than this from the previous fragment's end is a time jump. */
export const GAP_TOLERANCE_MS = 500;
/** Sequence numbers reserved per UTC day (live playlists). */
export const DAY_SEQUENCE_SPAN = 1_000_000;

const DAY_MS = 86_400_000;

/** One playlist segment: bytes `[offset, offset + length)` of `window`'s object. */
export interface PlannedSegment {
  window: WindowIndex;
  offset: number;
  length: number;
  /** Unix ms of its first fragment's decode start. */
  startMs: number;
  /** Milliseconds, from its first fragment's start to its last fragment's end. */
  durationMs: number;
  /** It follows a window boundary or a time jump (an `EXT-X-DISCONTINUITY` before it). */
  discontinuity: boolean;
}

/** A live segment with its sequence numbers. */
export interface NumberedSegment extends PlannedSegment {
  sequence: number;
  /** Discontinuity sequence number of the segment (counting its own discontinuity). */
  discontinuitySequence: number;
}

/**
 * The segments of window `w` starting at fragment `startIndex` (the first key frame of the window
 * when omitted); fragments before it are skipped. See the module comment for the rules.
 */
export function windowSegments(w: WindowIndex, startIndex?: number): PlannedSegment[] {
  const f = w.fragments;
  const out: PlannedSegment[] = [];
  let first: Fragment | undefined;
  let last: Fragment | undefined;
  let pendingJump = true; // the window boundary
  const close = () => {
    if (!first || !last) return;
    out.push({
      window: w,
      offset: first.offset,
      length: last.offset + last.length - first.offset,
      startMs: first.startMs,
      durationMs: last.startMs + last.durationMs - first.startMs,
      discontinuity: pendingJump,
    });
    pendingJump = false;
    first = undefined;
    last = undefined;
  };
  for (let i = startIndex ?? 0; i < f.length; i++) {
    const x = f[i]!;
    if (last && Math.abs(x.startMs - (last.startMs + last.durationMs)) > GAP_TOLERANCE_MS) {
      close();
      pendingJump = true;
    }
    if (!first) {
      if (!x.keyframe) continue; // cannot start here: skip to the next key frame
      first = x;
      last = x;
      continue;
    }
    if (x.keyframe && x.startMs + x.durationMs - first.startMs > MAX_SEGMENT_MS) {
      close();
      first = x;
      last = x;
      continue;
    }
    last = x;
  }
  close();
  return out;
}

/**
 * The segments of a catch-up range: windows (already without overlap, in time order: see
 * `coverWindows`) cut to `[fromMs, toMs)`: the first segment starts at the first key frame at or
 * after `fromMs`, no segment starts at or after `toMs`, and the last one ends with the fragment
 * that reaches `toMs` (so the playlist lasts the range within one fragment). The first segment carries no
 * discontinuity.
 */
export function rangeSegments(
  windows: readonly WindowIndex[],
  fromMs: number,
  toMs: number,
): PlannedSegment[] {
  const out: PlannedSegment[] = [];
  for (const w of windows) {
    const f = w.fragments;
    if (f.length === 0 || f[0]!.startMs >= toMs) continue;
    const last = f[f.length - 1]!;
    if (last.startMs < fromMs) continue;
    let i0 = 0;
    if (f[0]!.startMs < fromMs) {
      i0 = lowerBound(f, fromMs);
    }
    for (const s of windowSegments(w, i0)) {
      if (s.startMs >= toMs) break;
      out.push(s.startMs + s.durationMs > toMs ? cutAt(s, toMs) : s);
    }
  }
  if (out[0]) out[0] = { ...out[0], discontinuity: false };
  return out;
}

/**
 * The segment without its fragments that start at or after `toMs`, so that a range ends within one
 * fragment of its end (the segment keeps its first, key-frame, fragment).
 */
function cutAt(s: PlannedSegment, toMs: number): PlannedSegment {
  const f = s.window.fragments;
  let i = f.findIndex((x) => x.offset === s.offset);
  if (i < 0) return s;
  let last = f[i]!;
  while (i + 1 < f.length && f[i + 1]!.offset < s.offset + s.length && f[i + 1]!.startMs < toMs)
    last = f[++i]!;
  return {
    ...s,
    length: last.offset + last.length - s.offset,
    durationMs: last.startMs + last.durationMs - s.startMs,
  };
}

/**
 * Every segment of the windows (without overlap, in time order) numbered per UTC day of the
 * window's `from` (module comment). Pass every window of each day involved, from the day's start.
 */
export function liveSegments(windows: readonly WindowIndex[]): NumberedSegment[] {
  const out: NumberedSegment[] = [];
  let day = Number.NaN;
  let sequence = 0;
  let discontinuities = 0;
  for (const w of windows) {
    const d = Math.floor((w.from * 1000) / DAY_MS);
    if (d !== day) {
      day = d;
      sequence = d * DAY_SEQUENCE_SPAN;
      discontinuities = d * DAY_SEQUENCE_SPAN;
    }
    for (const s of windowSegments(w)) {
      if (s.discontinuity) discontinuities++;
      out.push({ ...s, sequence: sequence++, discontinuitySequence: discontinuities });
    }
  }
  return out;
}

/** The UTC day number (days since 1970-01-01) a live segment is numbered in. */
export function sequenceDay(s: NumberedSegment): number {
  return Math.floor(s.sequence / DAY_SEQUENCE_SPAN);
}

/**
 * The live window at edge `edgeMs`: of the numbered segments starting at or after `notBeforeMs`,
 * the latest one starting at or before the edge and those starting less than `windowMs` before
 * it, of its UTC day only. Anchoring on the latest segment (not on the edge itself) keeps the
 * window as it was while the edge crosses a hole, so the numbers never go back; after the hole
 * the window restarts with the segments that follow it.
 */
export function liveWindow(
  segments: readonly NumberedSegment[],
  edgeMs: number,
  windowMs: number,
  notBeforeMs = Number.NEGATIVE_INFINITY,
): NumberedSegment[] {
  let end = segments.length;
  while (end > 0 && segments[end - 1]!.startMs > edgeMs) end--;
  const last = segments[end - 1];
  if (!last || last.startMs < notBeforeMs) return [];
  const day = sequenceDay(last);
  let begin = end - 1;
  while (begin > 0) {
    const s = segments[begin - 1]!;
    if (s.startMs <= last.startMs - windowMs || s.startMs < notBeforeMs || sequenceDay(s) !== day) break;
    begin--;
  }
  return segments.slice(begin, end);
}

export interface MediaPlaylist {
  /** "VOD" (closed, ENDLIST), "EVENT" (append-only) or "live" (sliding window, no type tag). */
  type: "VOD" | "EVENT" | "live";
  segments: readonly PlannedSegment[];
  /** Live: MEDIA-SEQUENCE and DISCONTINUITY-SEQUENCE (0 otherwise). */
  mediaSequence?: number;
  discontinuitySequence?: number;
}

/** `EXT-X-TARGETDURATION`: the longest segment duration rounded to the nearest second (≥ 1). */
export function targetDuration(segments: readonly PlannedSegment[]): number {
  let max = 1;
  for (const s of segments) max = Math.max(max, Math.round(s.durationMs / 1000));
  return max;
}

/**
 * The playlist text. `uri(window)` gives the URI of a window's object (the same for its init and
 * its segments: byte ranges address them). The first segment never has a DISCONTINUITY tag: in a
 * live playlist its discontinuity is counted in DISCONTINUITY-SEQUENCE.
 */
export function renderMediaPlaylist(p: MediaPlaylist, uri: (w: WindowIndex) => string): string {
  const lines: string[] = [
    "#EXTM3U",
    "#EXT-X-VERSION:7",
    `#EXT-X-TARGETDURATION:${targetDuration(p.segments)}`,
    `#EXT-X-MEDIA-SEQUENCE:${p.mediaSequence ?? 0}`,
  ];
  if (p.type === "live") lines.push(`#EXT-X-DISCONTINUITY-SEQUENCE:${p.discontinuitySequence ?? 0}`);
  else lines.push(`#EXT-X-PLAYLIST-TYPE:${p.type}`);
  lines.push("#EXT-X-INDEPENDENT-SEGMENTS");
  // The segments as one string built by concatenation: 14,400 segments as array items cost a
  // third more (bench: dev/bench/playback-playlist.ts).
  let body = "";
  let current: WindowIndex | undefined;
  let currentUri = "";
  for (const [i, s] of p.segments.entries()) {
    const head = i === 0 || s.discontinuity || s.window !== current;
    if (s.window !== current) {
      current = s.window;
      currentUri = uri(s.window);
    }
    if (i > 0 && (s.discontinuity || s.window !== p.segments[i - 1]!.window))
      body += "#EXT-X-DISCONTINUITY\n";
    if (head) {
      const init = s.window.init ?? tsInit(s.window);
      if (init) body += `#EXT-X-MAP:URI="${currentUri}",BYTERANGE="${init.length}@${init.offset}"\n`;
      body += `#EXT-X-PROGRAM-DATE-TIME:${new Date(s.startMs).toISOString()}\n`;
    }
    body += `#EXTINF:${(s.durationMs / 1000).toFixed(3)},\n#EXT-X-BYTERANGE:${s.length}@${s.offset}\n${currentUri}\n`;
  }
  if (p.type === "VOD") body += "#EXT-X-ENDLIST\n";
  return `${lines.join("\n")}\n${body}`;
}

/** MPEG-TS: the PAT and PMT as the init section when they are adjacent packets. */
function tsInit(w: WindowIndex): { offset: number; length: number } | undefined {
  const [pat, pmt] = w.psi ?? [];
  if (!pat || !pmt || pmt.offset !== pat.offset + pat.length) return undefined;
  return { offset: pat.offset, length: pat.length + pmt.length };
}

/** First index with `fragments[i].startMs >= ms`. */
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
