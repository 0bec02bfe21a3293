/**
 * Joins fragmented-MP4 archive windows into one playable file, streaming (only `moov`/`moof` and
 * other small boxes are held; `mdat` payloads pass through). Each window is an init segment
 * (`ftyp` + `moov`) followed by `moof` + `mdat` fragments. A blind concatenation would repeat the
 * init segment and leave every window's timestamps where the source put them, so:
 *
 * - the first window's `ftyp` and `moov` are kept; a later window's `moov` must describe the same
 *   tracks (track ids, handler, timescale, sample descriptions `stsd`, fragment defaults `trex`)
 *   and is then dropped. When it differs (the camera changed codec or resolution) the join stops
 *   with Mp4JoinError naming the window: one file cannot switch its track setup, so the operator
 *   restores the parts before and after separately.
 * - timestamps (`tfdt`) are rebased: the output starts at 0 and each window follows the previous
 *   one without a gap, with one offset per window shared by all tracks (audio stays in sync with
 *   video). A hole between windows (with `--allow-gaps`) therefore plays as a cut.
 * - fragment sequence numbers (`mfhd`) are renumbered; absolute `base_data_offset`s are moved to
 *   the output position; per-file indexes (`sidx`, `mfra`, `styp`) are dropped as they would point
 *   into the original window.
 * - fragments wholly outside `[keepFrom, keepTo)` are dropped, so the result is trimmed to the
 *   requested range at fragment granularity (a fragment starts with a key frame); fragment times
 *   are taken relative to the window's first fragment, which is the window's start.
 */
import type { WindowIndex } from "./fragment-index.ts";
import type { PlannedSegment } from "./hls-playlist.ts";

export class Mp4JoinError extends Error {
  readonly code: string = "FB_MP4_JOIN";
  constructor(message: string) {
    super(message);
    this.name = "Mp4JoinError";
  }
}

/** What the joiner needs of one track of the init segment. */
export interface Mp4Track {
  id: number;
  timescale: number;
  handler: string;
  /** `trex` default sample duration (used when a fragment does not give one). */
  defaultSampleDuration: number;
  /** `trex` default sample flags (bit 0x10000 `sample_is_non_sync`), used when a fragment gives none. */
  defaultSampleFlags: number;
  /** Whether the track has a sample description (`stsd`): without one, nothing can decode it. */
  described: boolean;
}

/** Tracks of a `moov` box, and a signature of what must match for fragments to be joinable. */
export function readInitSegment(moov: Buffer): { tracks: Map<number, Mp4Track>; signature: string } {
  const tracks = new Map<number, Mp4Track>();
  const parts: string[] = [];
  const trex = new Map<number, { duration: number; flags: number }>();
  for (const child of children(moov, 8)) {
    if (child.type === "trak") {
      let id = 0;
      let timescale = 0;
      let handler = "";
      let stsd = "";
      for (const c of children(moov, child.start + 8, child.end)) {
        if (c.type === "tkhd") id = moov.readUInt32BE(c.start + (moov[c.start + 8] === 1 ? 28 : 20));
        if (c.type !== "mdia") continue;
        for (const m of children(moov, c.start + 8, c.end)) {
          if (m.type === "mdhd") timescale = moov.readUInt32BE(m.start + (moov[m.start + 8] === 1 ? 28 : 20));
          if (m.type === "hdlr") handler = moov.toString("latin1", m.start + 16, m.start + 20);
          if (m.type !== "minf") continue;
          for (const s of children(moov, m.start + 8, m.end)) {
            if (s.type !== "stbl") continue;
            for (const d of children(moov, s.start + 8, s.end)) {
              if (d.type === "stsd") stsd = moov.toString("hex", d.start, d.end);
            }
          }
        }
      }
      if (id === 0 || timescale === 0) throw new Mp4JoinError("init segment: a track has no id or timescale");
      tracks.set(id, {
        id,
        timescale,
        handler,
        defaultSampleDuration: 0,
        defaultSampleFlags: 0,
        described: stsd !== "",
      });
      parts.push(`${id}:${handler}:${timescale}:${stsd}`);
    }
    if (child.type === "mvex") {
      for (const c of children(moov, child.start + 8, child.end)) {
        if (c.type !== "trex") continue;
        trex.set(moov.readUInt32BE(c.start + 12), {
          duration: moov.readUInt32BE(c.start + 20),
          flags: c.end - c.start >= 32 ? moov.readUInt32BE(c.start + 28) : 0,
        });
        parts.push(`trex:${moov.toString("hex", c.start, c.end)}`);
      }
    }
  }
  if (tracks.size === 0) throw new Mp4JoinError("init segment has no track");
  for (const [id, defaults] of trex) {
    const t = tracks.get(id);
    if (!t) continue;
    t.defaultSampleDuration = defaults.duration;
    t.defaultSampleFlags = defaults.flags;
  }
  return { tracks, signature: parts.join("|") };
}

/** One track's run of samples in a `moof`. */
export interface Mp4TrackFragment {
  trackId: number;
  /** Byte offset of the `tfdt` box inside the `moof`. */
  tfdtAt: number;
  decodeTime: number;
  /** Sum of the sample durations (track timescale). */
  duration: number;
  /** Byte offset of `base_data_offset` inside the `moof`, when the fragment has one. */
  baseDataOffsetAt: number | undefined;
  /**
   * Flags of the first sample (`trun` first-sample flags, else its per-sample flags, else the
   * `tfhd` then `trex` defaults); bit 0x10000 is `sample_is_non_sync`. Undefined with no sample.
   */
  firstSampleFlags: number | undefined;
}

/** The track fragments of a `moof` box (with the track defaults of the init segment). */
export function readMovieFragment(
  moof: Buffer,
  tracks: ReadonlyMap<number, Mp4Track>,
): { sequenceAt: number | undefined; trafs: Mp4TrackFragment[] } {
  let sequenceAt: number | undefined;
  const trafs: Mp4TrackFragment[] = [];
  for (const child of children(moof, 8)) {
    if (child.type === "mfhd") sequenceAt = child.start + 12;
    if (child.type !== "traf") continue;
    let trackId = 0;
    let defaultDuration: number | undefined;
    let defaultFlags: number | undefined;
    let firstSampleFlags: number | undefined;
    let baseDataOffsetAt: number | undefined;
    let tfdtAt = -1;
    let decodeTime = 0;
    let duration = 0;
    const runs: { at: number; end: number }[] = [];
    for (const c of children(moof, child.start + 8, child.end)) {
      if (c.type === "tfhd") {
        const flags = moof.readUInt32BE(c.start + 8) & 0xffffff;
        trackId = moof.readUInt32BE(c.start + 12);
        let p = c.start + 16;
        if (flags & 0x01) {
          baseDataOffsetAt = p;
          p += 8;
        }
        if (flags & 0x02) p += 4;
        if (flags & 0x08) defaultDuration = moof.readUInt32BE(p);
        if (flags & 0x08) p += 4;
        if (flags & 0x10) p += 4;
        if (flags & 0x20) defaultFlags = moof.readUInt32BE(p);
      } else if (c.type === "tfdt") {
        tfdtAt = c.start;
        decodeTime =
          moof[c.start + 8] === 1
            ? Number(moof.readBigUInt64BE(c.start + 12))
            : moof.readUInt32BE(c.start + 12);
      } else if (c.type === "trun") {
        runs.push({ at: c.start, end: c.end });
      }
    }
    const track = tracks.get(trackId);
    if (!track) throw new Mp4JoinError(`fragment of track ${trackId}, which the init segment does not have`);
    if (tfdtAt < 0)
      throw new Mp4JoinError(`fragment of track ${trackId} has no tfdt: cannot place it in time`);
    for (const run of runs) {
      const flags = moof.readUInt32BE(run.at + 8) & 0xffffff;
      const count = moof.readUInt32BE(run.at + 12);
      let p = run.at + 16 + (flags & 0x01 ? 4 : 0);
      if (firstSampleFlags === undefined && count > 0) {
        if (flags & 0x04) firstSampleFlags = moof.readUInt32BE(p);
        else if (flags & 0x400)
          firstSampleFlags = moof.readUInt32BE(p + (flags & 0x100 ? 4 : 0) + (flags & 0x200 ? 4 : 0));
        else firstSampleFlags = defaultFlags ?? track.defaultSampleFlags;
      }
      if (flags & 0x04) p += 4;
      if (flags & 0x100) {
        const stride = 4 * (1 + (flags & 0x200 ? 1 : 0) + (flags & 0x400 ? 1 : 0) + (flags & 0x800 ? 1 : 0));
        if (p + count * stride > run.end) throw new Mp4JoinError("trun box shorter than its sample count");
        for (let i = 0; i < count; i++, p += stride) duration += moof.readUInt32BE(p);
      } else {
        duration += count * (defaultDuration ?? track.defaultSampleDuration);
      }
    }
    trafs.push({ trackId, tfdtAt, decodeTime, duration, baseDataOffsetAt, firstSampleFlags });
  }
  return { sequenceAt, trafs };
}

/** Writes a new decode time into the `tfdt` at `at` (version 0 boxes hold 32 bits only). */
export function writeDecodeTime(moof: Buffer, at: number, decodeTime: number): void {
  if (moof[at + 8] === 1) {
    moof.writeBigUInt64BE(BigInt(decodeTime), at + 12);
  } else if (decodeTime <= 0xffffffff) {
    moof.writeUInt32BE(decodeTime, at + 12);
  } else {
    throw new Mp4JoinError("decode time does not fit a version 0 tfdt");
  }
}

/** A box inside a buffer: its type and `[start, end)` (the header included). */
export interface BoxSpan {
  type: string;
  start: number;
  end: number;
}

/** The boxes in `buf` from `from` to `to` (the children of a box: `from` = its start + 8). */
export function* children(buf: Buffer, from: number, to = buf.length): Generator<BoxSpan> {
  let p = from;
  while (p + 8 <= to) {
    let size = buf.readUInt32BE(p);
    const type = buf.toString("latin1", p + 4, p + 8);
    if (size === 1) size = Number(buf.readBigUInt64BE(p + 8));
    else if (size === 0) size = to - p;
    if (size < 8 || p + size > to) throw new Mp4JoinError(`box "${type}" overruns its parent`);
    yield { type, start: p, end: p + size };
    p += size;
  }
}

/** The time span of one archive window in the join. */
export interface JoinWindow {
  /** Unix seconds of the window's start. */
  from: number;
  duration: number;
  /** How messages name the window (e.g. its key). */
  label: string;
}

export interface Mp4JoinOptions {
  /** Drop fragments that end at or before this time (unix seconds). */
  keepFrom?: number;
  /** Drop fragments that start at or after this time (unix seconds). */
  keepTo?: number;
}

/** Largest non-`mdat` box held in memory (a `moov` or `moof` is a few kilobytes in practice). */
const MAX_HELD_BOX = 64 * 1024 * 1024;
const DROPPED = new Set(["sidx", "ssix", "mfra", "styp"]);
const EMPTY = Buffer.alloc(0);

/**
 * Streaming joiner: `startWindow`, then `push` the window's bytes in any chunking, then
 * `endWindow`; write every returned buffer to the output in order. `finish` checks the result.
 */
export class Mp4Joiner {
  readonly #options: Mp4JoinOptions;
  #tracks: Map<number, Mp4Track> | undefined;
  #signature: string | undefined;
  #firstWindowLabel = "";
  #window: JoinWindow | undefined;
  /** Start (seconds, source timeline) of the window's first fragment. */
  #windowFirst: number | undefined;
  /** Per-track decode-time shift of the current window, set at its first kept fragment. */
  #shift: Map<number, number> | undefined;
  /** End of the output timeline so far (seconds). */
  #outputEnd = 0;
  #sequence = 0;
  #held: Buffer = EMPTY;
  #passLeft = 0;
  #dropMdat = false;
  #inOffset = 0;
  #outOffset = 0;
  /** Fragments written and dropped (trimmed), for the report. */
  fragments = 0;
  trimmedFragments = 0;

  constructor(options: Mp4JoinOptions = {}) {
    this.#options = options;
  }

  /** Seconds of media in the output so far. */
  get outputSeconds(): number {
    return this.#outputEnd;
  }

  startWindow(w: JoinWindow): void {
    if (this.#window) throw new Error("Mp4Joiner: window already started");
    this.#window = w;
    this.#windowFirst = undefined;
    this.#shift = undefined;
    this.#inOffset = 0;
  }

  push(chunk: Uint8Array): Buffer[] {
    const w = this.#window;
    if (!w) throw new Error("Mp4Joiner: push before startWindow");
    const out: Buffer[] = [];
    const emit = (b: Buffer) => {
      out.push(b);
      this.#outOffset += b.length;
    };
    let data = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.#held.length > 0) data = Buffer.concat([this.#held, data]);
    this.#held = EMPTY;
    while (data.length > 0) {
      if (this.#passLeft > 0) {
        const n = Math.min(this.#passLeft, data.length);
        if (!this.#dropMdat) emit(data.subarray(0, n));
        this.#passLeft -= n;
        this.#inOffset += n;
        data = data.subarray(n);
        continue;
      }
      if (data.length < 8) break;
      const size32 = data.readUInt32BE(0);
      const type = data.toString("latin1", 4, 8);
      const headerLength = size32 === 1 ? 16 : 8;
      if (data.length < headerLength) break;
      const size = size32 === 1 ? Number(data.readBigUInt64BE(8)) : size32;
      if (size < headerLength) {
        throw new Mp4JoinError(`${w.label}: box "${type}" at byte ${this.#inOffset} has size ${size}`);
      }
      if (type === "mdat") {
        if (!this.#dropMdat) emit(Buffer.from(data.subarray(0, headerLength)));
        this.#passLeft = size - headerLength;
        this.#inOffset += headerLength;
        data = data.subarray(headerLength);
        continue;
      }
      if (size > MAX_HELD_BOX) {
        throw new Mp4JoinError(`${w.label}: box "${type}" of ${size} bytes is too large to rewrite`);
      }
      if (data.length < size) break;
      const box = Buffer.from(data.subarray(0, size));
      const at = this.#inOffset;
      this.#inOffset += size;
      data = data.subarray(size);
      const kept = this.#box(w, type, box, at);
      if (kept) emit(kept);
    }
    this.#held = data.length > 0 ? Buffer.from(data) : EMPTY;
    return out;
  }

  endWindow(): void {
    const w = this.#window;
    if (!w) throw new Error("Mp4Joiner: endWindow before startWindow");
    if (this.#held.length > 0 || this.#passLeft > 0) {
      throw new Mp4JoinError(`${w.label}: ends inside an MP4 box (stored object is cut)`);
    }
    this.#window = undefined;
  }

  /** Checks that something playable was written. */
  finish(): void {
    if (!this.#tracks) throw new Mp4JoinError("no init segment (ftyp/moov) in the stored windows");
    if (this.fragments === 0) throw new Mp4JoinError("no media fragment inside the requested range");
  }

  #box(w: JoinWindow, type: string, box: Buffer, inputAt: number): Buffer | undefined {
    if (type === "ftyp") return this.#tracks ? undefined : box;
    if (type === "moov") {
      let init: ReturnType<typeof readInitSegment>;
      try {
        init = readInitSegment(box);
      } catch (error) {
        throw new Mp4JoinError(
          `${w.label}: not a playable MP4 init segment (${(error as Error).message}); the stored window is not decodable media`,
        );
      }
      const undescribed = [...init.tracks.values()].find((t) => !t.described);
      if (undescribed) {
        throw new Mp4JoinError(
          `${w.label}: not a playable MP4 init segment (track ${undescribed.id} has no sample description); the stored window is not decodable media`,
        );
      }
      if (!this.#tracks) {
        this.#tracks = init.tracks;
        this.#signature = init.signature;
        this.#firstWindowLabel = w.label;
        return box;
      }
      if (init.signature !== this.#signature) {
        throw new Mp4JoinError(
          `${w.label}: its init segment (tracks, codecs or timescales) differs from that of ${this.#firstWindowLabel}; ` +
            "one MP4 file cannot change its track setup: restore the time before and from this window separately",
        );
      }
      return undefined;
    }
    if (type === "moof") return this.#fragment(w, box, inputAt);
    if (DROPPED.has(type)) return undefined;
    return box;
  }

  #fragment(w: JoinWindow, moof: Buffer, inputAt: number): Buffer | undefined {
    const tracks = this.#tracks;
    if (!tracks) throw new Mp4JoinError(`${w.label}: media fragment before any init segment`);
    const { sequenceAt, trafs } = readMovieFragment(moof, tracks);
    if (trafs.length === 0) {
      this.#dropMdat = true;
      return undefined;
    }
    const seconds = (t: Mp4TrackFragment, value: number) => value / tracks.get(t.trackId)!.timescale;
    const start = Math.min(...trafs.map((t) => seconds(t, t.decodeTime)));
    const end = Math.max(...trafs.map((t) => seconds(t, t.decodeTime + t.duration)));
    this.#windowFirst ??= start;
    const unixStart = w.from + (start - this.#windowFirst);
    const unixEnd = w.from + (end - this.#windowFirst);
    const o = this.#options;
    if (
      (o.keepFrom !== undefined && unixEnd <= o.keepFrom) ||
      (o.keepTo !== undefined && unixStart >= o.keepTo)
    ) {
      this.#dropMdat = true;
      this.trimmedFragments++;
      return undefined;
    }
    this.#dropMdat = false;
    if (!this.#shift) {
      const offset = this.#outputEnd - start;
      this.#shift = new Map([...tracks.values()].map((t) => [t.id, Math.round(offset * t.timescale)]));
    }
    for (const t of trafs) {
      const decodeTime = t.decodeTime + this.#shift.get(t.trackId)!;
      if (decodeTime < 0) throw new Mp4JoinError(`${w.label}: fragment timestamps go backwards`);
      writeDecodeTime(moof, t.tfdtAt, decodeTime);
      this.#outputEnd = Math.max(this.#outputEnd, seconds(t, decodeTime + t.duration));
      if (t.baseDataOffsetAt !== undefined) {
        const old = Number(moof.readBigUInt64BE(t.baseDataOffsetAt));
        moof.writeBigUInt64BE(BigInt(old - inputAt + this.#outOffset), t.baseDataOffsetAt);
      }
    }
    if (sequenceAt !== undefined) moof.writeUInt32BE(++this.#sequence, sequenceAt);
    this.fragments++;
    return moof;
  }
}

/** Per window, its init bytes and the runs of contiguous fragment bytes to copy. */
export interface JoinPart {
  window: WindowIndex;
  runs: { offset: number; length: number; startMs: number }[];
}

/**
 * What an export of `segments` (a range's playlist segments, in order) copies: per window its
 * init and the runs of contiguous fragment bytes, the last segment cut before the first fragment
 * starting at or after `toMs`.
 */
export function joinPlan(segments: readonly PlannedSegment[], toMs: number): JoinPart[] {
  const parts: JoinPart[] = [];
  for (const whole of segments) {
    // A segment may run past the range's end: the export stops at the first fragment starting there.
    const s = { ...whole };
    const end = s.offset + s.length;
    if (s.startMs + s.durationMs > toMs) {
      const kept = s.window.fragments.filter(
        (f) => f.offset >= s.offset && f.offset < end && f.startMs < toMs,
      );
      const last = kept[kept.length - 1];
      if (last) s.length = last.offset + last.length - s.offset;
    }
    let part = parts[parts.length - 1];
    if (!part || part.window !== s.window) {
      part = { window: s.window, runs: [] };
      parts.push(part);
    }
    const run = part.runs[part.runs.length - 1];
    if (run && run.offset + run.length === s.offset) run.length += s.length;
    else part.runs.push({ offset: s.offset, length: s.length, startMs: s.startMs });
  }
  return parts;
}
