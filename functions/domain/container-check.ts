/**
 * Cheap streaming checks that an archive body is whole, without buffering the body (only `moov`
 * and `moof` boxes, a few kilobytes each, and one TS packet are held).
 *
 * Framing: Flussonic may not send Content-Length and may close cleanly too early; a body cut inside
 * a top-level MP4 box or inside a 188-byte TS packet is caught.
 *
 * Media time (when the window is given): the usual way an export stops early is cleanly at a
 * fragment boundary, which framing cannot see. So the check follows the media clock as it streams:
 * - fMP4: the track timescales (`mdhd`) and fragment defaults (`trex`) of the `moov`, then each
 *   `moof`'s `tfdt` plus its `trun` sample durations (or the `tfhd`/`trex` default duration): the
 *   media reaches the largest decode time + duration of any track fragment.
 *   Mapping to unix time: Flussonic's documentation does not say whether an export's `tfdt` counts
 *   from the unix epoch or from the window start (open question in docs/design.md, "Open questions").
 *   When the first fragment's decode time, read as unix seconds, falls inside the window (within
 *   the tolerance), it is taken as absolute (what the simulator serves: real media and synthetic
 *   bytes both carry unix-time `tfdt`s). Otherwise the first fragment is taken to start at the
 *   window's `from` (relative origin, the restore joiner's assumption).
 *   A late start is not refused: the source's own retention may delete a queued window's first
 *   seconds before it is copied (those seconds are gone at the source either way, and refusing
 *   would lose the rest of the window too); an export stops early at its end.
 * - MPEG-TS: the PES presentation times (PTS, 90 kHz, any PID; the PCR when no PES carries one),
 *   followed across the 33-bit wrap; the first one is the window's `from`, and the largest one
 *   must reach the window's end.
 *
 * Tolerance: MEDIA_END_TOLERANCE_SECONDS (2 s) short of the window's end is accepted: the last
 * fragment or PES may end a frame early (a TS PTS is the start of its last frame), a range closed at
 * x.4 s is planned up to x+1, and an export may stop at the last key frame before the end. A body
 * that stops more than 2 s early is refused as incomplete. A cut that loses only the last 1 to 2 s
 * of a window is not detected: that is the price of not refusing good exports.
 */
import type { ArchiveFormat } from "./archive.ts";
import { type Mp4Track, type Mp4TrackFragment, readInitSegment, readMovieFragment } from "./mp4-join.ts";

export interface ContainerCheck {
  /** Feeds the next bytes; throws ContainerError at the first inconsistency. */
  feed(chunk: Uint8Array): void;
  /** Declares the end of the body; throws ContainerError when it ends inside a box or packet. */
  finish(): void;
  /** Media time reached so far (unix seconds), when the window is known and the body has timing. */
  readonly mediaEnd: number | undefined;
  /**
   * Bytes just ahead that the check passes over without looking (the rest of an `mdat`): a reader
   * of a stored object may pass over them instead of reading them (reindex's ranged reads).
   */
  readonly skippable: number;
  /** Passes over `n` bytes (at most `skippable`) as if they had been fed. */
  passOver(n: number): void;
}

/**
 * What a check reports while it reads a body with a window (fragment-indexer.ts listens), so that
 * the body is parsed once. Offsets are bytes from the start of the body.
 */
export interface ContainerObserver {
  /** fMP4: the `moov` at `offset` (its whole bytes) and the tracks read from it. */
  init?(offset: number, moov: Buffer, tracks: ReadonlyMap<number, Mp4Track>): void;
  /** fMP4: the `moof` at `offset` and its track fragments. */
  fragment?(offset: number, trafs: readonly Mp4TrackFragment[]): void;
  /**
   * MPEG-TS: the packet `b[p, p + 188)` at `offset`, with the raw 90 kHz PTS of the PES it
   * starts, if any.
   */
  packet?(b: Uint8Array, p: number, offset: number, pts: number | undefined): void;
}

export class ContainerError extends Error {
  readonly code: string = "FB_CONTAINER";
  constructor(message: string) {
    super(message);
    this.name = "ContainerError";
  }
}

/** Whole framing, but the media stops before the window's end. */
export class MediaShortError extends ContainerError {
  override readonly code: string = "FB_MEDIA_SHORT";
  /** The part of the window the body does not hold (unix seconds, `[from, to)`). */
  readonly missing: { from: number; to: number };
  constructor(message: string, missing: { from: number; to: number }) {
    super(message);
    this.name = "MediaShortError";
    this.missing = missing;
  }
}

/** How far short of its window's end a body's media may end, seconds. */
export const MEDIA_END_TOLERANCE_SECONDS = 2;

/** The archive window a body should fill: `[from, from + duration)`, unix seconds. */
export interface MediaWindow {
  from: number;
  duration: number;
}

/**
 * A checker for one body of the given format. With `window`, the media time is checked too; without
 * it, only the framing (for bodies whose window is not known).
 */
export function containerCheck(
  format: ArchiveFormat,
  window?: MediaWindow,
  observer?: ContainerObserver,
): ContainerCheck {
  return format === "mp4" ? new Mp4Check(window, observer) : new TsCheck(window, observer);
}

const TS_PACKET = 188;
const PTS_WRAP = 2 ** 33;
const PTS_HZ = 90_000;

function iso(t: number): string {
  return new Date(Math.round(t * 1000)).toISOString().replace(".000Z", "Z");
}

function shortError(w: MediaWindow, end: number, absolute: boolean): void {
  const windowEnd = w.from + w.duration;
  const tol = MEDIA_END_TOLERANCE_SECONDS;
  if (end < windowEnd - tol) {
    const missing = windowEnd - end;
    throw new MediaShortError(
      `media ends at ${iso(end)}, ${missing.toFixed(1)} s before the window's end ${iso(windowEnd)}` +
        `${absolute ? "" : " (timestamps taken from the window start)"}: the export stopped early`,
      { from: end, to: windowEnd },
    );
  }
}

class TsCheck implements ContainerCheck {
  private offset = 0;
  /** Bytes of a packet split across chunks. */
  private partial = Buffer.alloc(TS_PACKET);
  private partialLength = 0;
  private readonly pts = new Unwrapped();
  private readonly pcr = new Unwrapped();
  private readonly window: MediaWindow | undefined;
  private readonly observer: ContainerObserver | undefined;
  readonly skippable = 0;

  constructor(window: MediaWindow | undefined, observer?: ContainerObserver) {
    this.window = window;
    this.observer = observer;
  }

  passOver(n: number): void {
    if (n > 0) throw new Error("an MPEG-TS check reads every packet");
  }

  feed(chunk: Uint8Array): void {
    let i = 0;
    if (this.partialLength > 0) {
      const startedAt = this.offset - this.partialLength;
      const n = Math.min(TS_PACKET - this.partialLength, chunk.length);
      this.partial.set(chunk.subarray(0, n), this.partialLength);
      this.partialLength += n;
      i = n;
      if (this.partialLength === TS_PACKET) {
        this.packet(this.partial, 0, startedAt);
        this.partialLength = 0;
      }
    }
    for (; i + TS_PACKET <= chunk.length; i += TS_PACKET) this.packet(chunk, i, this.offset + i);
    if (i < chunk.length) {
      if (chunk[i] !== 0x47) throw new ContainerError(`MPEG-TS sync byte missing at byte ${this.offset + i}`);
      this.partial.set(chunk.subarray(i), 0);
      this.partialLength = chunk.length - i;
    }
    this.offset += chunk.length;
  }

  private packet(b: Uint8Array, p: number, at: number): void {
    if (b[p] !== 0x47) throw new ContainerError(`MPEG-TS sync byte missing at byte ${at}`);
    if (!this.window) return;
    const pts = this.timedPacket(b, p);
    this.observer?.packet?.(b, p, at, pts);
  }

  /** Follows the packet's PCR and PES PTS; the raw PTS when it starts a PES with one. */
  private timedPacket(b: Uint8Array, p: number): number | undefined {
    const unitStart = (b[p + 1]! & 0x40) !== 0;
    const control = (b[p + 3]! >> 4) & 3;
    let payload = p + 4;
    if (control & 2) {
      const length = b[p + 4]!;
      if (length > 0 && b[p + 5]! & 0x10 && length >= 7) {
        const q = p + 6;
        this.pcr.add(
          b[q]! * 2 ** 25 + b[q + 1]! * 2 ** 17 + b[q + 2]! * 2 ** 9 + b[q + 3]! * 2 + (b[q + 4]! >> 7),
        );
      }
      payload = p + 5 + length;
    }
    if (!(control & 1) || !unitStart || payload + 14 > p + TS_PACKET) return undefined;
    if (b[payload] !== 0 || b[payload + 1] !== 0 || b[payload + 2] !== 1) return undefined;
    const stream = b[payload + 3]!;
    // Stream ids without the optional PES header (padding, private 2, ECM/EMM, DSMCC, directory...).
    if ([0xbc, 0xbe, 0xbf, 0xf0, 0xf1, 0xf2, 0xf8, 0xff].includes(stream)) return undefined;
    if (!(b[payload + 7]! & 0x80)) return undefined;
    const t = payload + 9;
    const pts =
      ((b[t]! >> 1) & 7) * 2 ** 30 +
      b[t + 1]! * 2 ** 22 +
      (b[t + 2]! >> 1) * 2 ** 15 +
      b[t + 3]! * 2 ** 7 +
      (b[t + 4]! >> 1);
    this.pts.add(pts);
    return pts;
  }

  get mediaEnd(): number | undefined {
    const clock = this.pts.seen ? this.pts : this.pcr.seen ? this.pcr : undefined;
    if (!this.window || !clock) return undefined;
    return this.window.from + (clock.max - clock.min) / PTS_HZ;
  }

  finish(): void {
    if (this.offset === 0) throw new ContainerError("empty body");
    if (this.partialLength !== 0) {
      throw new ContainerError(
        `body ends inside an MPEG-TS packet (${this.offset} bytes is not a multiple of 188)`,
      );
    }
    const w = this.window;
    if (!w) return;
    const end = this.mediaEnd;
    if (end === undefined) {
      throw new ContainerError(
        "no PTS or PCR in the MPEG-TS body: cannot tell how much of the window it holds",
      );
    }
    shortError(w, end, false);
  }
}

/** A 33-bit 90 kHz clock followed across its wrap: values relative to the first one seen. */
class Unwrapped {
  seen = false;
  private lastRaw = 0;
  private last = 0;
  min = 0;
  max = 0;
  add(raw: number): void {
    if (!this.seen) {
      this.seen = true;
      this.lastRaw = raw;
      return;
    }
    let d = (raw - this.lastRaw + PTS_WRAP) % PTS_WRAP;
    if (d > PTS_WRAP / 2) d -= PTS_WRAP;
    this.last += d;
    this.lastRaw = raw;
    if (this.last < this.min) this.min = this.last;
    if (this.last > this.max) this.max = this.last;
  }
}

/** Largest `moov`/`moof` held to read its times (they are kilobytes; a 10-minute moof of 1 s fragments too). */
const MAX_HELD_BOX = 64 * 1024 * 1024;

class Mp4Check implements ContainerCheck {
  private offset = 0;
  /** Offset of the top-level box whose header is being read (or was read last). */
  private boxAt = 0;
  /** Header bytes of that box, gathered across chunks (size, type, optional 64-bit size). */
  private header: number[] = [];
  /** Bytes of the current box still to pass (not held). */
  private skip = 0;
  private boxes = 0;
  /** A `moov` or `moof` being gathered: its bytes so far and its full size. */
  private held: { type: string; parts: Buffer[]; length: number; size: number } | undefined;
  private tracks: Map<number, Mp4Track> | undefined;
  /** Media time of the first fragment and the furthest any fragment reaches, seconds (source timeline). */
  private first: number | undefined;
  private end = Number.NEGATIVE_INFINITY;
  private readonly window: MediaWindow | undefined;
  private readonly observer: ContainerObserver | undefined;

  constructor(window: MediaWindow | undefined, observer?: ContainerObserver) {
    this.window = window;
    this.observer = observer;
  }

  get skippable(): number {
    return this.skip;
  }

  passOver(n: number): void {
    if (n > this.skip) throw new Error(`cannot skip ${n} bytes: only ${this.skip} are skippable`);
    this.skip -= n;
    this.offset += n;
  }

  feed(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      const held = this.held;
      if (held) {
        const n = Math.min(held.size - held.length, chunk.length - i);
        held.parts.push(Buffer.from(chunk.subarray(i, i + n)));
        held.length += n;
        i += n;
        if (held.length === held.size) this.release();
        continue;
      }
      if (this.header.length === 0) this.boxAt = this.offset + i;
      this.header.push(chunk[i++]!);
      if (this.header.length < 8) continue;
      const size32 = this.headerSize32();
      if (size32 === 1 && this.header.length < 16) continue;
      this.boxHeader(size32);
    }
    this.offset += chunk.length;
  }

  /** A whole top-level box header is in `header`: check it and decide what to do with the box. */
  private boxHeader(size32: number): void {
    const size = size32 === 1 ? Number(Buffer.from(this.header.slice(8, 16)).readBigUInt64BE(0)) : size32;
    const type = String.fromCharCode(...this.header.slice(4, 8));
    if (!/^[A-Za-z0-9 ]{4}$/.test(type)) {
      throw new ContainerError(`not an MP4 box at byte ${this.boxAt} (type bytes ${JSON.stringify(type)})`);
    }
    if (size === 0) throw new ContainerError(`MP4 box "${type}" at byte ${this.boxAt} has open size`);
    const headerLength = this.header.length;
    if (size < headerLength) {
      throw new ContainerError(`MP4 box "${type}" at byte ${this.boxAt} has impossible size ${size}`);
    }
    this.boxes++;
    if (this.window && (type === "moov" || type === "moof")) {
      if (size > MAX_HELD_BOX) {
        throw new ContainerError(`MP4 box "${type}" at byte ${this.boxAt} is too large (${size} bytes)`);
      }
      this.held = { type, parts: [Buffer.from(this.header)], length: headerLength, size };
      if (size === headerLength) this.release();
    } else {
      this.skip = size - headerLength;
    }
    this.header = [];
  }

  private release(): void {
    const { type, parts } = this.held!;
    this.held = undefined;
    this.timedBox(type, Buffer.concat(parts));
  }

  private headerSize32(): number {
    const h = this.header;
    return ((h[0]! << 24) >>> 0) + (h[1]! << 16) + (h[2]! << 8) + h[3]!;
  }

  private timedBox(type: string, box: Buffer): void {
    try {
      if (type === "moov") {
        this.tracks = readInitSegment(box).tracks;
        this.observer?.init?.(this.boxAt, box, this.tracks);
        return;
      }
      if (!this.tracks) throw new ContainerError("media fragment (moof) before the init segment (moov)");
      const { trafs } = readMovieFragment(box, this.tracks);
      this.observer?.fragment?.(this.boxAt, trafs);
      for (const t of trafs) {
        const timescale = this.tracks.get(t.trackId)!.timescale;
        const start = t.decodeTime / timescale;
        this.first ??= start;
        if (start < this.first) this.first = start;
        this.end = Math.max(this.end, (t.decodeTime + t.duration) / timescale);
      }
    } catch (error) {
      if (error instanceof ContainerError) throw error;
      throw new ContainerError(`MP4 ${type} unreadable: ${(error as Error).message}`);
    }
  }

  /** Whether the first fragment's decode time reads as a unix time inside the window. */
  private get absolute(): boolean {
    const w = this.window;
    return (
      w !== undefined &&
      this.first !== undefined &&
      this.first >= w.from - MEDIA_END_TOLERANCE_SECONDS &&
      this.first <= w.from + w.duration
    );
  }

  get mediaEnd(): number | undefined {
    const w = this.window;
    if (!w || this.first === undefined) return undefined;
    return this.absolute ? this.end : w.from + (this.end - this.first);
  }

  finish(): void {
    if (this.offset === 0) throw new ContainerError("empty body");
    if (this.held || this.header.length > 0 || this.skip > 0) {
      const needs = this.held
        ? this.boxAt + this.held.size
        : this.skip > 0
          ? this.offset + this.skip
          : this.boxAt + Math.max(8, this.header.length + 1);
      throw new ContainerError(
        `body ends inside an MP4 box (${this.offset} bytes received, the last box needs ${needs})`,
      );
    }
    if (this.boxes === 0) throw new ContainerError("no MP4 box in body");
    const w = this.window;
    if (!w) return;
    if (!this.tracks) throw new ContainerError("no init segment (moov) in the MP4 body");
    const end = this.mediaEnd;
    if (end === undefined) {
      throw new ContainerError("no media fragment (moof with tfdt) in the MP4 body");
    }
    shortError(w, end, this.absolute);
  }
}
