/**
 * Builds a window's fragment index (fragment-index.ts) while its body streams through the
 * container check: the check parses every `moov`, `moof` and TS packet once and reports them to
 * this observer, which keeps only a few numbers per fragment (a 600-second window of 1-second
 * fragments is 600 entries). Nothing of the media payload is held.
 */

import type { ArchiveFormat } from "./archive.ts";
import {
  type ContainerCheck,
  type ContainerObserver,
  containerCheck,
  MEDIA_END_TOLERANCE_SECONDS,
  type MediaWindow,
} from "./container-check.ts";
import type { ByteRange, Fragment, WindowIndex } from "./fragment-index.ts";
import { initSegmentMedia } from "./mp4-codecs.ts";
import type { Mp4Track, Mp4TrackFragment } from "./mp4-join.ts";

const TS_PACKET = 188;
const PTS_WRAP = 2 ** 33;
const SAMPLE_IS_NON_SYNC = 0x10000;

/** A fragment seen, its time still on the media clock (seconds, or 90 kHz ticks for TS). */
interface RawFragment {
  offset: number;
  start: number;
  /** Media-clock end (fMP4); TS fragments end where the next starts. */
  end: number;
  keyframe: boolean;
}

/**
 * Observes one body (pass it to `containerCheck`, or use `indexingCheck`), then `result` gives the
 * window's index once the body is whole.
 */
export class FragmentIndexer implements ContainerObserver {
  readonly #format: ArchiveFormat;
  readonly #window: MediaWindow;
  readonly #raw: RawFragment[] = [];
  // fMP4
  #init: ByteRange | undefined;
  #media: { codecs?: string; width?: number; height?: number } = {};
  #primary: number | undefined;
  #timescales = new Map<number, number>();
  #pat: ByteRange | undefined;
  #pmt: ByteRange | undefined;
  #pmtPids = new Set<number>();
  /** PID whose random-access points cut fragments, and whether it is HEVC (for IDR detection). */
  #rapPid: number | undefined;
  #hevc = false;
  #clock: { lastRaw: number; value: number; min: number; max: number } | undefined;

  constructor(format: ArchiveFormat, window: MediaWindow) {
    this.#format = format;
    this.#window = window;
  }

  init(offset: number, moov: Buffer, tracks: ReadonlyMap<number, Mp4Track>): void {
    if (this.#init) return;
    this.#init = { offset: 0, length: offset + moov.length };
    this.#media = initSegmentMedia(moov);
    const all = [...tracks.values()];
    this.#primary = (all.find((t) => t.handler === "vide") ?? all[0])?.id;
    for (const t of all) this.#timescales.set(t.id, t.timescale);
  }

  fragment(offset: number, trafs: readonly Mp4TrackFragment[]): void {
    const t: Mp4TrackFragment | undefined = trafs.find((x) => x.trackId === this.#primary) ?? trafs[0];
    if (!t) return;
    const timescale = this.#timescales.get(t.trackId) ?? 1;
    this.#raw.push({
      offset,
      start: t.decodeTime / timescale,
      end: (t.decodeTime + t.duration) / timescale,
      // A fragment without the primary (video) track cannot start a segment a decoder can open.
      keyframe:
        t.trackId === this.#primary &&
        t.firstSampleFlags !== undefined &&
        (t.firstSampleFlags & SAMPLE_IS_NON_SYNC) === 0,
    });
  }

  packet(b: Uint8Array, p: number, offset: number, pts: number | undefined): void {
    const pid = ((b[p + 1]! & 0x1f) << 8) | b[p + 2]!;
    const unitStart = (b[p + 1]! & 0x40) !== 0;
    const control = (b[p + 3]! >> 4) & 3;
    let payload = p + 4;
    let randomAccess = false;
    if (control & 2) {
      const length = b[p + 4]!;
      randomAccess = length > 0 && (b[p + 5]! & 0x40) !== 0;
      payload = p + 5 + length;
    }
    if (pts !== undefined) this.#tick(pts);
    if (!(control & 1) || !unitStart || payload >= p + TS_PACKET) return;
    if (pid === 0) {
      if (!this.#pat) this.#pat = { offset, length: TS_PACKET };
      this.#readPat(b, payload, p + TS_PACKET);
      return;
    }
    if (this.#pmtPids.has(pid)) {
      if (!this.#pmt) this.#pmt = { offset, length: TS_PACKET };
      this.#readPmt(b, payload, p + TS_PACKET);
      return;
    }
    if (pts === undefined || pid !== this.#rapPid || !this.#clock) return;
    if (randomAccess || this.#startsIdr(b, payload, p + TS_PACKET)) {
      this.#raw.push({ offset, start: this.#clock.value, end: this.#clock.value, keyframe: true });
    }
  }

  /** Follows the 33-bit PTS across its wrap, relative to the first one seen. */
  #tick(raw: number): void {
    const c = this.#clock;
    if (!c) {
      this.#clock = { lastRaw: raw, value: 0, min: 0, max: 0 };
      return;
    }
    let d = (raw - c.lastRaw + PTS_WRAP) % PTS_WRAP;
    if (d > PTS_WRAP / 2) d -= PTS_WRAP;
    c.value += d;
    c.lastRaw = raw;
    c.min = Math.min(c.min, c.value);
    c.max = Math.max(c.max, c.value);
  }

  /** PAT section: the PMT PIDs of its programs. */
  #readPat(b: Uint8Array, payload: number, end: number): void {
    const s = payload + 1 + b[payload]!;
    if (s + 8 > end || b[s] !== 0x00) return;
    const sectionEnd = Math.min(s + 3 + (((b[s + 1]! & 0x0f) << 8) | b[s + 2]!) - 4, end);
    for (let q = s + 8; q + 4 <= sectionEnd; q += 4) {
      const program = (b[q]! << 8) | b[q + 1]!;
      if (program !== 0) this.#pmtPids.add(((b[q + 2]! & 0x1f) << 8) | b[q + 3]!);
    }
  }

  /** PMT section: the video PID (H.264, HEVC, MPEG-2/4 video), else the first elementary PID. */
  #readPmt(b: Uint8Array, payload: number, end: number): void {
    if (this.#rapPid !== undefined) return;
    const s = payload + 1 + b[payload]!;
    if (s + 12 > end || b[s] !== 0x02) return;
    const sectionEnd = Math.min(s + 3 + (((b[s + 1]! & 0x0f) << 8) | b[s + 2]!) - 4, end);
    let q = s + 12 + (((b[s + 10]! & 0x0f) << 8) | b[s + 11]!);
    let first: number | undefined;
    for (; q + 5 <= sectionEnd; q += 5 + (((b[q + 3]! & 0x0f) << 8) | b[q + 4]!)) {
      const type = b[q]!;
      const pid = ((b[q + 1]! & 0x1f) << 8) | b[q + 2]!;
      first ??= pid;
      if ([0x01, 0x02, 0x10, 0x1b, 0x24].includes(type)) {
        this.#rapPid = pid;
        this.#hevc = type === 0x24;
        return;
      }
    }
    this.#rapPid = first;
  }

  /** Whether the PES payload in this packet has an IDR or a sequence parameter set NAL unit. */
  #startsIdr(b: Uint8Array, payload: number, end: number): boolean {
    if (b[payload] !== 0 || b[payload + 1] !== 0 || b[payload + 2] !== 1) return false;
    for (let q = payload + 9 + b[payload + 8]!; q + 3 < end; q++) {
      if (b[q] !== 0 || b[q + 1] !== 0 || b[q + 2] !== 1) continue;
      const nal = b[q + 3]!;
      if (this.#hevc) {
        const type = (nal >> 1) & 0x3f;
        if ((type >= 16 && type <= 21) || (type >= 32 && type <= 34)) return true;
      } else if ((nal & 0x1f) === 5 || (nal & 0x1f) === 7) {
        return true;
      }
    }
    return false;
  }

  /**
   * The window's index, once the whole body (`size` bytes, stored as `key`) was fed and the check
   * finished without error.
   */
  result(key: string, size: number, etag?: string): WindowIndex {
    const w = this.#window;
    const base = {
      from: w.from,
      duration: w.duration,
      format: this.#format,
      key,
      size,
      ...(etag !== undefined ? { etag } : {}),
    };
    if (this.#format === "ts") {
      const psi = [this.#pat, this.#pmt].filter((r): r is ByteRange => r !== undefined);
      const clock = this.#clock;
      const ms = (ticks: number) => w.from * 1000 + Math.round((ticks - (clock?.min ?? 0)) / 90);
      const endMs = ms(clock?.max ?? 0);
      const fragments: Fragment[] = this.#raw.map((r, i) => {
        const next = this.#raw[i + 1];
        const startMs = ms(r.start);
        return {
          offset: r.offset,
          length: (next?.offset ?? size) - r.offset,
          startMs,
          durationMs: Math.max(0, (next ? ms(next.start) : endMs) - startMs),
          keyframe: true,
        };
      });
      return { ...base, origin: "window", psi, fragments };
    }
    const first = this.#raw[0]?.start;
    const absolute =
      first !== undefined && first >= w.from - MEDIA_END_TOLERANCE_SECONDS && first <= w.from + w.duration;
    const unixMs = (t: number) => Math.round((absolute ? t : w.from + (t - (first ?? 0))) * 1000);
    const fragments: Fragment[] = this.#raw.map((r, i) => {
      const startMs = unixMs(r.start);
      return {
        offset: r.offset,
        length: (this.#raw[i + 1]?.offset ?? size) - r.offset,
        startMs,
        durationMs: unixMs(r.end) - startMs,
        keyframe: r.keyframe,
      };
    });
    return {
      ...base,
      origin: absolute ? "absolute" : "window",
      ...(this.#init ? { init: this.#init } : {}),
      ...this.#media,
      fragments,
    };
  }
}

/** A container check of a window's body that also builds its fragment index. */
export function indexingCheck(
  format: ArchiveFormat,
  window: MediaWindow,
): { check: ContainerCheck; indexer: FragmentIndexer } {
  const indexer = new FragmentIndexer(format, window);
  return { check: containerCheck(format, window, indexer), indexer };
}
