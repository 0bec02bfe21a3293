/**
 * Deterministic archive bytes. An `.mp4` window is an init segment (`ftyp`, `moov`) followed by
 * one `moof` + `mdat` fragment per recorded second; a `.ts` window is 188-byte packets. Every
 * second's payload starts with its unix time, so a window stored at the wrong place, reordered or
 * cut shows in a byte comparison. Bodies are produced as slices of a per-stream pattern buffer,
 * so the simulator can serve gigabytes without allocating them.
 */
import { createHash } from "node:crypto";
import type { TimeRange } from "../functions/domain/ranges.ts";
import { prng } from "./archive-model.ts";

export type SimFormat = "mp4" | "ts";

const PATTERN_BYTES = 1 << 20;
const SLICE = 64 * 1024;
const TS_PACKET = 188;
const TS_PAYLOAD = 184;
const PTS_WRAP = 2 ** 33;
const patterns = new Map<string, Buffer>();

function pattern(stream: string): Buffer {
  let p = patterns.get(stream);
  if (!p) {
    const random = prng(createHash("sha256").update(stream).digest().readUInt32BE(0));
    p = Buffer.allocUnsafe(PATTERN_BYTES);
    for (let i = 0; i < PATTERN_BYTES; i += 4) p.writeUInt32BE(Math.floor(random() * 4294967296), i);
    patterns.set(stream, p);
  }
  return p;
}

function box(type: string, payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(8 + payload.length, 0);
  header.write(type, 4, "latin1");
  return Buffer.concat([header, payload]);
}

function fullBox(type: string, version: number, flags: number, payload: Buffer): Buffer {
  const vf = Buffer.alloc(4);
  vf.writeUInt32BE(((version & 0xff) << 24) | (flags & 0xffffff), 0);
  return box(type, Buffer.concat([vf, payload]));
}

/** Track timescale of synthetic MP4 (milliseconds), track id 1, one 1-second sample per fragment. */
const TIMESCALE = 1000;
const TRACK_ID = 1;

/**
 * `ftyp` + `moov`: the same for every window of a stream. One track with a timescale (`mdhd`) and
 * fragment defaults (`trex`), so the media clock of the fragments can be read, but no sample
 * description (`stsd`): the bytes are not decodable and restore says so.
 */
function initSegment(stream: string, bitrateBps: number): Buffer {
  const ftyp = box("ftyp", Buffer.from("iso6\0\0\x02\0iso6mp41", "latin1"));
  const mvhd = Buffer.alloc(96);
  mvhd.writeUInt32BE(TIMESCALE, 8);
  mvhd.writeUInt32BE(0x00010000, 16);
  mvhd.writeUInt16BE(0x0100, 20);
  mvhd.writeUInt32BE(TRACK_ID + 1, 92);
  const tkhd = Buffer.alloc(80);
  tkhd.writeUInt32BE(TRACK_ID, 8);
  const mdhd = Buffer.alloc(20);
  mdhd.writeUInt32BE(TIMESCALE, 8);
  mdhd.writeUInt16BE(0x55c4, 16);
  const hdlr = Buffer.alloc(21);
  hdlr.write("vide", 4, "latin1");
  const trex = Buffer.alloc(20);
  trex.writeUInt32BE(TRACK_ID, 0);
  trex.writeUInt32BE(1, 4);
  trex.writeUInt32BE(TIMESCALE, 8);
  const info = Buffer.alloc(40);
  createHash("sha256").update(stream).digest().copy(info, 0);
  info.writeUInt32BE(bitrateBps >>> 0, 32);
  const moov = box(
    "moov",
    Buffer.concat([
      fullBox("mvhd", 0, 0, mvhd),
      box(
        "trak",
        Buffer.concat([
          fullBox("tkhd", 0, 3, tkhd),
          box("mdia", Buffer.concat([fullBox("mdhd", 0, 0, mdhd), fullBox("hdlr", 0, 0, hdlr)])),
        ]),
      ),
      box("mvex", fullBox("trex", 0, 0, trex)),
      box("free", info),
    ]),
  );
  return Buffer.concat([ftyp, moov]);
}

/**
 * `moof` (`mfhd`, `traf` with `tfhd`, a 64-bit `tfdt` holding the second's unix time in ms, `trun`
 * of one sample lasting 1 s) and the `mdat` header, for the second `s`.
 */
const MOOF_BYTES = 96;
const FRAGMENT_HEAD = MOOF_BYTES + 8;

function fragmentHead(s: number, payload: number): Buffer {
  const head = Buffer.alloc(FRAGMENT_HEAD + 8);
  let p = 0;
  const boxHeader = (size: number, type: string, versionFlags?: number) => {
    head.writeUInt32BE(size, p);
    head.write(type, p + 4, "latin1");
    p += 8;
    if (versionFlags !== undefined) {
      head.writeUInt32BE(versionFlags >>> 0, p);
      p += 4;
    }
  };
  boxHeader(MOOF_BYTES, "moof");
  boxHeader(16, "mfhd", 0);
  head.writeUInt32BE(s >>> 0, p);
  p += 4;
  boxHeader(72, "traf");
  boxHeader(16, "tfhd", 0x020000); // default-base-is-moof
  head.writeUInt32BE(TRACK_ID, p);
  p += 4;
  boxHeader(20, "tfdt", 0x01000000);
  head.writeBigUInt64BE(BigInt(s) * BigInt(TIMESCALE), p);
  p += 8;
  boxHeader(28, "trun", 0x000301); // data offset, sample duration, sample size
  head.writeUInt32BE(1, p);
  head.writeUInt32BE(FRAGMENT_HEAD, p + 4);
  head.writeUInt32BE(TIMESCALE, p + 8);
  head.writeUInt32BE(payload, p + 12);
  p += 16;
  boxHeader(8 + payload, "mdat");
  head.writeBigUInt64BE(BigInt(s), p);
  return head;
}

/** Bytes of one second's `mdat` payload (the fragment is FRAGMENT_HEAD bytes more). */
function mp4PayloadBytes(bitrateBps: number): number {
  return Math.max(16, Math.round(bitrateBps / 8) - FRAGMENT_HEAD);
}

function tsPackets(bitrateBps: number): number {
  return Math.max(1, Math.ceil(bitrateBps / 8 / TS_PACKET));
}

/** Writes a PES header with only a PTS (90 kHz, 33 bits) at `at`: 14 bytes. */
function writePesHeader(b: Buffer, at: number, pts: number): void {
  b[at] = 0;
  b[at + 1] = 0;
  b[at + 2] = 1;
  b[at + 3] = 0xe0;
  b[at + 4] = 0;
  b[at + 5] = 0;
  b[at + 6] = 0x80;
  b[at + 7] = 0x80;
  b[at + 8] = 5;
  b[at + 9] = 0x21 | ((Math.floor(pts / 2 ** 30) & 7) << 1);
  b[at + 10] = Math.floor(pts / 2 ** 22) & 0xff;
  b[at + 11] = ((Math.floor(pts / 2 ** 15) & 0x7f) << 1) | 1;
  b[at + 12] = Math.floor(pts / 2 ** 7) & 0xff;
  b[at + 13] = ((pts & 0x7f) << 1) | 1;
}

/**
 * A chunk that differs per request (`variant`), as a source that re-muxes each export would send:
 * a top-level `free` box after the MP4 init segment, or a null packet first in MPEG-TS.
 */
export function variantChunk(format: SimFormat, variant: number): Buffer {
  if (format === "mp4") {
    const v = Buffer.alloc(8);
    v.writeBigUInt64BE(BigInt(variant));
    return box("free", v);
  }
  const packet = Buffer.alloc(TS_PACKET, 0xff);
  packet[0] = 0x47;
  packet[1] = 0x1f;
  packet[2] = 0xff;
  packet[3] = 0x10;
  packet.writeUInt32BE(variant >>> 0, 4);
  return packet;
}

/** Size in bytes of a window made of the given recorded seconds. */
export function windowBytes(
  stream: string,
  bitrateBps: number,
  seconds: TimeRange[],
  format: SimFormat,
): number {
  const n = seconds.reduce((sum, r) => sum + (r.to - r.from), 0);
  if (n === 0) return 0;
  if (format === "ts") return n * tsPackets(bitrateBps) * TS_PACKET;
  return initSegment(stream, bitrateBps).length + n * (FRAGMENT_HEAD + mp4PayloadBytes(bitrateBps));
}

/** The window's bytes as a sequence of buffers (slices; do not modify them). */
export function* windowChunks(
  stream: string,
  bitrateBps: number,
  seconds: TimeRange[],
  format: SimFormat,
): Generator<Buffer> {
  const p = pattern(stream);
  if (format === "mp4") {
    yield initSegment(stream, bitrateBps);
    const payload = mp4PayloadBytes(bitrateBps);
    for (const r of seconds) {
      for (let s = r.from; s < r.to; s++) {
        const head = fragmentHead(s, payload);
        yield head;
        let left = payload - 8;
        let offset = (Math.imul(s, 2654435761) >>> 0) % PATTERN_BYTES;
        while (left > 0) {
          const n = Math.min(left, SLICE, PATTERN_BYTES - offset);
          yield p.subarray(offset, offset + n);
          left -= n;
          offset = (offset + n) % PATTERN_BYTES;
        }
      }
    }
    return;
  }
  const packets = tsPackets(bitrateBps);
  for (const r of seconds) {
    for (let s = r.from; s < r.to; s++) {
      const second = Buffer.allocUnsafe(packets * TS_PACKET);
      for (let k = 0; k < packets; k++) {
        const at = k * TS_PACKET;
        second[at] = 0x47;
        second[at + 1] = 0x41;
        second[at + 2] = 0x00;
        second[at + 3] = 0x10 | (k & 0x0f);
        writePesHeader(second, at + 4, (s * 90_000 + Math.floor((k * 90_000) / packets)) % PTS_WRAP);
        second.writeUInt32BE(s >>> 0, at + 18);
        second.writeUInt32BE(k, at + 22);
        const offset = (((s * packets + k) * TS_PAYLOAD) >>> 0) % (PATTERN_BYTES - TS_PAYLOAD);
        p.copy(second, at + 26, offset, offset + TS_PAYLOAD - 22);
      }
      yield second;
    }
  }
}
