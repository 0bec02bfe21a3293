import { describe, expect, it } from "vitest";
import {
  containerCheck,
  MEDIA_END_TOLERANCE_SECONDS,
  MediaShortError,
} from "../../functions/domain/container-check.ts";
import { windowChunks } from "../../simulator/content.ts";

function box(type: string, payload: number): Buffer {
  const b = Buffer.alloc(8 + payload, 7);
  b.writeUInt32BE(8 + payload, 0);
  b.write(type, 4, "ascii");
  return b;
}

function feedInPieces(format: "mp4" | "ts", data: Buffer, piece: number) {
  const c = containerCheck(format);
  for (let i = 0; i < data.length; i += piece) c.feed(data.subarray(i, i + piece));
  return c;
}

describe("MP4 box framing", () => {
  const whole = Buffer.concat([box("ftyp", 12), box("moov", 100), box("moof", 40), box("mdat", 5000)]);
  it("accepts whole top-level boxes in any chunking", () => {
    for (const piece of [1, 3, 7, 64, 100_000])
      expect(() => feedInPieces("mp4", whole, piece).finish()).not.toThrow();
  });
  it("accepts a 64-bit box size", () => {
    const large = Buffer.alloc(16 + 10);
    large.writeUInt32BE(1, 0);
    large.write("mdat", 4, "ascii");
    large.writeBigUInt64BE(26n, 8);
    expect(() => feedInPieces("mp4", Buffer.concat([box("ftyp", 4), large]), 5).finish()).not.toThrow();
  });
  it("rejects a body cut inside a box, even at a chunk boundary", () => {
    expect(() => feedInPieces("mp4", whole.subarray(0, whole.length - 1), 64).finish()).toThrow(
      /ends inside an MP4 box/,
    );
    expect(() => feedInPieces("mp4", whole.subarray(0, 20 + 3), 64).finish()).toThrow(
      /ends inside an MP4 box/,
    );
  });
  it("rejects an empty body and bytes that are not boxes", () => {
    expect(() => containerCheck("mp4").finish()).toThrow(/empty body/);
    expect(() => feedInPieces("mp4", Buffer.from("<html><body>error</body></html>"), 64)).toThrow(
      /not an MP4 box/,
    );
  });
});

describe("MPEG-TS packet framing", () => {
  const packets = Buffer.alloc(188 * 5, 1);
  for (let i = 0; i < 5; i++) packets[i * 188] = 0x47;
  it("accepts whole packets in any chunking", () => {
    for (const piece of [1, 100, 188, 1000])
      expect(() => feedInPieces("ts", packets, piece).finish()).not.toThrow();
  });
  it("rejects a cut packet and a lost sync byte", () => {
    expect(() => feedInPieces("ts", packets.subarray(0, 188 * 3 + 10), 50).finish()).toThrow(
      /inside an MPEG-TS packet/,
    );
    const broken = Buffer.from(packets);
    broken[188 * 2] = 0;
    expect(() => feedInPieces("ts", broken, 77)).toThrow(/sync byte missing at byte 376/);
  });
});

// Media time (issue 15 item 3): a body that stops cleanly at a fragment boundary before the
// window's end has whole framing; only its media clock shows the missing minutes.
const NOW = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);

function body(format: "mp4" | "ts", from: number, seconds: number, bitrateBps = 64_000): Buffer[] {
  return [...windowChunks("cam1", bitrateBps, [{ from, to: from + seconds }], format)].map((b) =>
    Buffer.from(b),
  );
}

function checkWindow(format: "mp4" | "ts", chunks: Buffer[], from: number, duration: number, piece?: number) {
  const c = containerCheck(format, { from, duration });
  const all = Buffer.concat(chunks);
  const step = piece ?? all.length;
  for (let i = 0; i < all.length; i += step) c.feed(all.subarray(i, i + step));
  c.finish();
  return c;
}

/** An fMP4 init segment: one track with `timescale`, `trex` default sample duration `defaultDuration`. */
function mp4Init(timescale: number, defaultDuration: number): Buffer {
  const full = (type: string, flags: number, payload: Buffer) => {
    const vf = Buffer.alloc(4);
    vf.writeUInt32BE(flags, 0);
    return mp4Box(type, Buffer.concat([vf, payload]));
  };
  const tkhd = Buffer.alloc(80);
  tkhd.writeUInt32BE(1, 8);
  const mdhd = Buffer.alloc(20);
  mdhd.writeUInt32BE(timescale, 8);
  const hdlr = Buffer.alloc(21);
  hdlr.write("vide", 4, "latin1");
  const trex = Buffer.alloc(20);
  trex.writeUInt32BE(1, 0);
  trex.writeUInt32BE(defaultDuration, 8);
  return Buffer.concat([
    mp4Box("ftyp", Buffer.from("isom\0\0\0\0", "latin1")),
    mp4Box(
      "moov",
      Buffer.concat([
        mp4Box(
          "trak",
          Buffer.concat([
            full("tkhd", 3, tkhd),
            mp4Box("mdia", Buffer.concat([full("mdhd", 0, mdhd), full("hdlr", 0, hdlr)])),
          ]),
        ),
        mp4Box("mvex", full("trex", 0, trex)),
      ]),
    ),
  ]);
}

function mp4Box(type: string, payload: Buffer): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(8 + payload.length, 0);
  b.write(type, 4, "latin1");
  return Buffer.concat([b, payload]);
}

/**
 * A `moof` + `mdat` of `count` samples from `decodeTime` (32-bit tfdt): per-sample durations in the
 * trun when `durations` is given, else none (the trex default applies).
 */
function mp4Fragment(decodeTime: number, count: number, durations?: number): Buffer {
  const tfhd = Buffer.alloc(8);
  tfhd.writeUInt32BE(0x020000, 0);
  tfhd.writeUInt32BE(1, 4);
  const tfdt = Buffer.alloc(8);
  tfdt.writeUInt32BE(decodeTime, 4);
  const perSample = durations !== undefined;
  const trun = Buffer.alloc(8 + (perSample ? 4 * count : 0));
  trun.writeUInt32BE(perSample ? 0x000100 : 0, 0);
  trun.writeUInt32BE(count, 4);
  for (let i = 0; perSample && i < count; i++) trun.writeUInt32BE(durations, 8 + 4 * i);
  const traf = mp4Box(
    "traf",
    Buffer.concat([mp4Box("tfhd", tfhd), mp4Box("tfdt", tfdt), mp4Box("trun", trun)]),
  );
  return Buffer.concat([
    mp4Box("moof", Buffer.concat([mp4Box("mfhd", Buffer.alloc(8)), traf])),
    mp4Box("mdat", Buffer.alloc(100, 1)),
  ]);
}

describe("fMP4 media time", () => {
  const from = NOW - 600;
  it("accepts the simulator's whole window in any chunking, and reads its end as unix time", () => {
    for (const piece of [1, 7, 100, 4096, undefined]) {
      const c = checkWindow("mp4", body("mp4", from, 60), from, 60, piece);
      expect(c.mediaEnd).toBe(from + 60);
    }
  });
  it("refuses a body cut cleanly after whole fragments, 10 s before the window's end", () => {
    const chunks = body("mp4", from, 50);
    // The framing alone accepts it: this is the cut the top-level box check let through.
    const framing = containerCheck("mp4");
    framing.feed(Buffer.concat(chunks));
    expect(() => framing.finish()).not.toThrow();
    expect(() => checkWindow("mp4", chunks, from, 60, 333)).toThrow(MediaShortError);
    expect(() => checkWindow("mp4", chunks, from, 60)).toThrow(
      /media ends at .*10\.0 s before the window's end/,
    );
  });
  it("accepts a body within the 2 s tolerance of the end and refuses one just beyond it", () => {
    expect(MEDIA_END_TOLERANCE_SECONDS).toBe(2);
    expect(() => checkWindow("mp4", body("mp4", from, 58), from, 60)).not.toThrow();
    expect(() => checkWindow("mp4", body("mp4", from, 57), from, 60)).toThrow(MediaShortError);
  });
  it("accepts a body that starts late (the source's retention removed its first seconds), refuses an init segment alone", () => {
    expect(checkWindow("mp4", body("mp4", from + 10, 50), from, 60).mediaEnd).toBe(from + 60);
    const init = body("mp4", from, 1)[0]!;
    expect(() => checkWindow("mp4", [init], from, 60)).toThrow(/no media fragment/);
  });
  it("relative tfdt (from 0): per-sample trun durations and trex defaults both count", () => {
    // 90 kHz, 2-second fragments of 50 samples of 3600 ticks (25 fps).
    const init = mp4Init(90_000, 3600);
    const fragments = (n: number, perSample: boolean) =>
      Array.from({ length: n }, (_, i) => mp4Fragment(i * 180_000, 50, perSample ? 3600 : undefined));
    for (const perSample of [true, false]) {
      const whole = checkWindow("mp4", [init, ...fragments(300, perSample)], from, 600, 1000);
      expect(whole.mediaEnd).toBe(from + 600);
      expect(() => checkWindow("mp4", [init, ...fragments(295, perSample)], from, 600)).toThrow(
        /10\.0 s before the window's end .*timestamps taken from the window start/,
      );
    }
  });
});

/** One MPEG-TS packet starting a video PES with this 90 kHz PTS (33 bits). */
function pesPacket(pts: number): Buffer {
  const b = Buffer.alloc(188, 0xff);
  b.set([0x47, 0x41, 0x00, 0x10], 0); // sync, payload unit start + PID 0x100, payload only
  b.set([0x00, 0x00, 0x01, 0xe0, 0x00, 0x00, 0x80, 0x80, 0x05], 4); // PES header, PTS only
  const v = pts % 2 ** 33;
  b[13] = 0x21 | (Math.floor(v / 2 ** 30) << 1);
  b[14] = Math.floor(v / 2 ** 22) & 0xff;
  b[15] = ((Math.floor(v / 2 ** 15) & 0x7f) << 1) | 1;
  b[16] = Math.floor(v / 2 ** 7) & 0xff;
  b[17] = ((v & 0x7f) << 1) | 1;
  return b;
}

/** An MPEG-TS packet with an adaptation field carrying `pcr` (90 kHz base), and a PES with `pts` if given. */
function tsPacket(o: { pcr: number; pts?: number }): Buffer {
  const b = Buffer.alloc(188, 0xff);
  const pes = o.pts !== undefined;
  b.set([0x47, pes ? 0x41 : 0x01, 0x00, pes ? 0x30 : 0x20], 0);
  const length = pes ? 7 : 183;
  b[4] = length;
  b[5] = 0x10; // PCR flag
  const v = o.pcr % 2 ** 33;
  b.set([Math.floor(v / 2 ** 25), Math.floor(v / 2 ** 17) & 0xff, Math.floor(v / 2 ** 9) & 0xff], 6);
  b[9] = Math.floor(v / 2) & 0xff;
  b[10] = ((v & 1) << 7) | 0x7e;
  b[11] = 0;
  if (pes) pesPacket(o.pts!).copy(b, 5 + length, 4, 4 + 14); // the PES header with its PTS after the field
  return b;
}

describe("MPEG-TS media time", () => {
  const from = NOW - 600;
  it("accepts the simulator's whole window in any chunking and refuses one cut after whole packets", () => {
    for (const piece of [1, 100, 188, 5000, undefined]) {
      expect(() => checkWindow("ts", body("ts", from, 60), from, 60, piece)).not.toThrow();
    }
    expect(() => checkWindow("ts", body("ts", from, 45), from, 60, 1000)).toThrow(
      /media ends at .*s before the window's end/,
    );
  });
  it("follows the PTS across its 33-bit wrap", () => {
    // The simulator's PTS is unix seconds x 90 kHz modulo 2^33: find a wrap near NOW.
    const wrapAt = Math.ceil((Math.ceil((NOW * 90_000) / 2 ** 33) * 2 ** 33) / 90_000);
    const start = wrapAt - 30;
    const whole = checkWindow("ts", body("ts", start, 60), start, 60, 777);
    expect(whole.mediaEnd).toBeGreaterThan(start + 59);
    expect(() => checkWindow("ts", body("ts", start, 40), start, 60)).toThrow(MediaShortError);
  });
  it("reads reordered presentation times (B-frames: PTS step back in decode order) as the span they cover", () => {
    // 25 fps in decode order I P B B P B B ...: PTS 0, 3, 1, 2, 6, 4, 5, ... frames.
    const framePts = (decoded: number) => (decoded === 0 ? 0 : decoded % 3 === 1 ? decoded + 2 : decoded - 1);
    const reordered = (start: number, seconds: number) => {
      const base = (start * 90_000) % 2 ** 33;
      const frames = seconds * 25;
      return [Buffer.concat(Array.from({ length: frames }, (_, i) => pesPacket(base + framePts(i) * 3600)))];
    };
    const whole = checkWindow("ts", reordered(from, 60), from, 60, 1000);
    expect(whole.mediaEnd! - from).toBeCloseTo(60, 2); // the highest PTS is frame 1500 (decoded 1498)
    // 40 s of such a body is 40 s, not a whole window (a backward step read as a forward jump would
    // make it look far longer).
    expect(() => checkWindow("ts", reordered(from, 40), from, 60, 1000)).toThrow(MediaShortError);
  });
  it("reads the PCR of adaptation fields when no PES carries a PTS, and prefers the PTS when one does", () => {
    const base = (from * 90_000) % 2 ** 33;
    const tenths = (seconds: number) => Array.from({ length: seconds * 10 }, (_, i) => base + i * 9000);
    const pcrOnly = (seconds: number) => [Buffer.concat(tenths(seconds).map((t) => tsPacket({ pcr: t })))];
    expect(checkWindow("ts", pcrOnly(60), from, 60, 500).mediaEnd! - from).toBeCloseTo(59.9, 3);
    expect(() => checkWindow("ts", pcrOnly(40), from, 60, 500)).toThrow(MediaShortError);
    // Adaptation field and PES in one packet: the PTS after the field counts, not the PCR.
    const both = (ptsSeconds: number, pcrSeconds: number) => {
      const pcr = tenths(pcrSeconds);
      return [
        Buffer.concat(tenths(ptsSeconds).map((t, i) => tsPacket({ pts: t, pcr: pcr[i] ?? pcr.at(-1)! }))),
      ];
    };
    expect(checkWindow("ts", both(60, 1), from, 60, 500).mediaEnd! - from).toBeCloseTo(59.9, 3);
    expect(() => checkWindow("ts", both(40, 60), from, 60, 500)).toThrow(MediaShortError);
  });
  it("refuses packets without any PTS or PCR when the window is known", () => {
    const packets = Buffer.alloc(188 * 5, 1);
    for (let i = 0; i < 5; i++) packets[i * 188] = 0x47;
    expect(() => checkWindow("ts", [packets], from, 60)).toThrow(/no PTS or PCR/);
  });
});
