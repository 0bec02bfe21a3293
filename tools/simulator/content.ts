/**
 * Deterministic archive bytes. An `.mp4` window is an init segment (`ftyp`, `moov`) followed by
 * one `moof` + `mdat` fragment per recorded second; a `.ts` window is 188-byte packets. Every
 * second's payload starts with its unix time, so a window stored at the wrong place, reordered or
 * cut shows in a byte comparison. Bodies are produced as slices of a per-stream pattern buffer,
 * so the simulator can serve gigabytes without allocating them.
 */
import { createHash } from "node:crypto";
import type { TimeRange } from "../../functions/domain/ranges.ts";
import { prng } from "./archive-model.ts";

export type SimFormat = "mp4" | "ts";

const PATTERN_BYTES = 1 << 20;
const SLICE = 64 * 1024;
const TS_PACKET = 188;
const TS_PAYLOAD = 184;
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

/** `ftyp` + `moov`: the same for every window of a stream. */
function initSegment(stream: string, bitrateBps: number): Buffer {
  const ftyp = box("ftyp", Buffer.from("iso6\0\0\x02\0iso6mp41", "latin1"));
  const info = Buffer.alloc(40);
  createHash("sha256").update(stream).digest().copy(info, 0);
  info.writeUInt32BE(bitrateBps >>> 0, 32);
  return Buffer.concat([ftyp, box("moov", info)]);
}

/** Bytes of one second's `mdat` payload (the fragment is 32 bytes more). */
function mp4PayloadBytes(bitrateBps: number): number {
  return Math.max(16, Math.round(bitrateBps / 8) - 32);
}

function tsPackets(bitrateBps: number): number {
  return Math.max(1, Math.ceil(bitrateBps / 8 / TS_PACKET));
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
  return initSegment(stream, bitrateBps).length + n * (32 + mp4PayloadBytes(bitrateBps));
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
        const head = Buffer.alloc(40);
        head.writeUInt32BE(24, 0);
        head.write("moof", 4, "latin1");
        head.writeUInt32BE(16, 8);
        head.write("mfhd", 12, "latin1");
        head.writeUInt32BE(s >>> 0, 20);
        head.writeUInt32BE(8 + payload, 24);
        head.write("mdat", 28, "latin1");
        head.writeBigUInt64BE(BigInt(s), 32);
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
        second[at + 1] = k === 0 ? 0x41 : 0x01;
        second[at + 2] = 0x00;
        second[at + 3] = 0x10 | (k & 0x0f);
        second.writeUInt32BE(s >>> 0, at + 4);
        second.writeUInt32BE(k, at + 8);
        const offset = (((s * packets + k) * TS_PAYLOAD) >>> 0) % (PATTERN_BYTES - TS_PAYLOAD);
        p.copy(second, at + 12, offset, offset + TS_PAYLOAD - 8);
      }
      yield second;
    }
  }
}
