import { describe, expect, it } from "vitest";
import {
  ContainerError,
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

// What each refusal says, and the edges of the framing and the media clock (issue 29: every
// mutant of the check either killed here or listed as equivalent in docs/mutation-testing.md).
describe("what a refused body is told", () => {
  const from = NOW - 600;
  const iso = (t: number) => new Date(t * 1000).toISOString().replace(".000Z", "Z");

  it("a short export names where its media ends, how much is missing and the window's end", () => {
    let error: unknown;
    try {
      checkWindow("mp4", body("mp4", from, 50), from, 60);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(MediaShortError);
    expect(error).toBeInstanceOf(ContainerError);
    expect((error as Error).name).toBe("MediaShortError");
    expect((error as MediaShortError).code).toBe("FB_MEDIA_SHORT");
    expect((error as Error).message).toBe(
      `media ends at ${iso(from + 50)}, 10.0 s before the window's end ${iso(from + 60)}: the export stopped early`,
    );
    expect((error as MediaShortError).missing).toEqual({ from: from + 50, to: from + 60 });
  });

  it("an MPEG-TS body says its times are taken from the window start, to the millisecond", () => {
    const base = (from * 90_000) % 2 ** 33;
    const halves = Array.from({ length: 80 }, (_, i) => pesPacket(base + i * 45_000)); // 0 .. 39.5 s
    let error: unknown;
    try {
      checkWindow("ts", [Buffer.concat(halves)], from, 60);
    } catch (e) {
      error = e;
    }
    expect((error as Error).message).toBe(
      `media ends at ${iso(from + 39.5)}, 20.5 s before the window's end ${iso(from + 60)} (timestamps taken from the window start): the export stopped early`,
    );
    expect(iso(from + 39.5)).toMatch(/\.500Z$/);
    expect((error as MediaShortError).missing).toEqual({ from: from + 39.5, to: from + 60 });
  });

  it("framing errors are ContainerErrors named so, each with the box or byte at fault", () => {
    const refusal = (format: "mp4" | "ts", parts: Buffer[], window?: { from: number; duration: number }) => {
      const c = containerCheck(format, window);
      try {
        for (const p of parts) c.feed(p);
        c.finish();
      } catch (e) {
        expect(e).toBeInstanceOf(ContainerError);
        expect((e as Error).name).toBe("ContainerError");
        expect((e as ContainerError).code).toBe("FB_CONTAINER");
        return (e as Error).message;
      }
      return "accepted";
    };
    const w = { from, duration: 60 };
    expect(refusal("ts", [])).toBe("empty body");
    expect(refusal("mp4", [])).toBe("empty body");
    expect(refusal("ts", [Buffer.from("<html>")])).toBe("MPEG-TS sync byte missing at byte 0");
    const sized = (size: number, type: string) => {
      const b = Buffer.alloc(8);
      b.writeUInt32BE(size, 0);
      b.write(type, 4, "ascii");
      return b;
    };
    expect(refusal("mp4", [box("ftyp", 4), sized(0, "mdat")])).toBe(
      'MP4 box "mdat" at byte 12 has open size',
    );
    expect(refusal("mp4", [box("ftyp", 4), sized(4, "free")])).toBe(
      'MP4 box "free" at byte 12 has impossible size 4',
    );
    const large = Buffer.alloc(16);
    large.writeUInt32BE(1, 0);
    large.write("mdat", 4, "ascii");
    large.writeBigUInt64BE(10n, 8);
    expect(refusal("mp4", [large])).toBe('MP4 box "mdat" at byte 0 has impossible size 10');
    // With a window the times are read: what is missing or out of order is named.
    expect(refusal("mp4", [box("ftyp", 4), box("mdat", 10)], w)).toBe(
      "no init segment (moov) in the MP4 body",
    );
    expect(refusal("mp4", [box("ftyp", 4), mp4Fragment(0, 50, 3600)], w)).toBe(
      "media fragment (moof) before the init segment (moov)",
    );
    expect(refusal("mp4", [box("ftyp", 4), box("moov", 100)], w)).toMatch(/^MP4 moov unreadable: ./);
    expect(refusal("mp4", [box("moov", 0)], w)).toBe("MP4 moov unreadable: init segment has no track");
  });

  it("a body cut inside a box says how many bytes came and how many the box needs", () => {
    const whole = Buffer.concat([box("ftyp", 12), box("moov", 100), box("moof", 40), box("mdat", 5000)]);
    const cutAt = (data: Buffer, n: number, window?: { from: number; duration: number }) => {
      const c = containerCheck("mp4", window);
      c.feed(data.subarray(0, n));
      return () => c.finish();
    };
    // Inside the skipped mdat, inside a box header, inside a 64-bit header.
    expect(cutAt(whole, whole.length - 1)).toThrow(
      `body ends inside an MP4 box (${whole.length - 1} bytes received, the last box needs ${whole.length})`,
    );
    expect(cutAt(whole, 23)).toThrow(
      "body ends inside an MP4 box (23 bytes received, the last box needs 28)",
    );
    const large = Buffer.alloc(16);
    large.writeUInt32BE(1, 0);
    large.write("mdat", 4, "ascii");
    large.writeBigUInt64BE(100n, 8);
    expect(cutAt(Buffer.concat([box("ftyp", 4), large]), 12 + 10)).toThrow(
      "body ends inside an MP4 box (22 bytes received, the last box needs 23)",
    );
    // Inside a moov being read for its times: the moov's own end.
    const init = mp4Init(90_000, 3600);
    expect(cutAt(init, init.length - 10, { from, duration: 60 })).toThrow(
      `body ends inside an MP4 box (${init.length - 10} bytes received, the last box needs ${init.length})`,
    );
  });
});

describe("MP4 framing edges", () => {
  it("accepts empty boxes (8 bytes, or 16 with a 64-bit size) anywhere, and boxes larger than 64 KiB", () => {
    const empty64 = Buffer.alloc(16);
    empty64.writeUInt32BE(1, 0);
    empty64.write("free", 4, "ascii");
    empty64.writeBigUInt64BE(16n, 8);
    const data = Buffer.concat([
      box("ftyp", 4),
      box("free", 0),
      box("mdat", 100_000),
      empty64,
      box("skip", 0),
    ]);
    for (const piece of [5, 1000, data.length]) {
      expect(() => feedInPieces("mp4", data, piece).finish(), String(piece)).not.toThrow();
    }
  });

  it("refuses to hold a moov or moof over 64 MiB, and holds one of 64 MiB", () => {
    const header = (size: number) => {
      const b = Buffer.alloc(8);
      b.writeUInt32BE(size, 0);
      b.write("moof", 4, "ascii");
      return b;
    };
    const at = { from: NOW, duration: 60 };
    expect(() => containerCheck("mp4", at).feed(header(64 * 1024 * 1024 + 1))).toThrow(
      'MP4 box "moof" at byte 0 is too large (67108865 bytes)',
    );
    expect(() => containerCheck("mp4", at).feed(header(64 * 1024 * 1024))).not.toThrow();
  });

  it("tells a reader how much of an mdat it may pass over, and counts what it passed", () => {
    const c = containerCheck("mp4");
    c.feed(box("ftyp", 4));
    c.feed(box("mdat", 5000).subarray(0, 8));
    expect(c.skippable).toBe(5000);
    expect(() => c.passOver(5001)).toThrow("cannot skip 5001 bytes: only 5000 are skippable");
    c.passOver(4000);
    expect(c.skippable).toBe(1000);
    expect(() => c.finish()).toThrow("(4020 bytes received, the last box needs 5020)");
    c.passOver(1000);
    expect(c.skippable).toBe(0);
    c.finish();
    const ts = containerCheck("ts");
    expect(ts.skippable).toBe(0);
    expect(() => ts.passOver(0)).not.toThrow();
    expect(() => ts.passOver(1)).toThrow("an MPEG-TS check reads every packet");
  });

  it("an observer may listen to some events only", () => {
    const from = NOW - 600;
    const fragments: number[] = [];
    const inits: number[] = [];
    const run = (format: "mp4" | "ts", observer: object) => {
      const c = containerCheck(format, { from, duration: 10 }, observer);
      for (const b of body(format, from, 10)) c.feed(b);
      c.finish();
    };
    run("mp4", { fragment: (offset: number) => fragments.push(offset) });
    run("mp4", { init: (offset: number) => inits.push(offset) });
    run("ts", { init: (offset: number) => inits.push(offset) });
    expect(fragments).toHaveLength(10);
    expect(inits).toHaveLength(1);
  });
});

describe("fMP4 media time edges", () => {
  const from = NOW - 600;
  it("reads a first fragment up to 2 s before the window, or at its very end, as unix time", () => {
    expect(checkWindow("mp4", body("mp4", from - 2, 62), from, 60).mediaEnd).toBe(from + 60);
    expect(checkWindow("mp4", body("mp4", from + 60, 5), from, 60).mediaEnd).toBe(from + 65);
    // Further out, the times are taken as counting from the window start: a body of another
    // window, after this one, is read as its first 10 s, and refused.
    expect(checkWindow("mp4", body("mp4", from - 3, 63), from, 60).mediaEnd).toBe(from + 63);
    expect(() => checkWindow("mp4", body("mp4", from + 100, 10), from, 60)).toThrow(
      /50\.0 s before the window.s end .*timestamps taken from the window start/,
    );
  });

  it("relative times from any origin: the window starts at the earliest fragment, in whatever order they come", () => {
    const init = mp4Init(90_000, 3600);
    const at = (s: number) => mp4Fragment((1000 + s) * 90_000, 50, 3600); // 2 s each
    const order = [2, 0, ...Array.from({ length: 298 }, (_, i) => 4 + 2 * i)];
    const c = checkWindow("mp4", [init, ...order.map(at)], from, 600, 4096);
    expect(c.mediaEnd).toBe(from + 600);
  });
});

/** `pesPacket` changed by `edit` (a decoy: it looks like a PTS far ahead but carries none). */
function decoy(pts: number, edit: (b: Buffer) => void): Buffer {
  const b = pesPacket(pts);
  edit(b);
  return b;
}

describe("MPEG-TS clock edges", () => {
  const from = NOW - 600;
  const base = (from * 90_000) % 2 ** 33;

  it("reads the PTS to the tick", () => {
    const packets = Array.from({ length: 600 }, (_, i) => pesPacket(base + i * 9001));
    const c = checkWindow("ts", [Buffer.concat(packets)], from, 60, 1000);
    expect(c.mediaEnd).toBe(from + (599 * 9001) / 90_000);
  });

  it("reads the PCR to the tick, across a carry into its top byte, from a minimal adaptation field too", () => {
    const start = 3 * 2 ** 25 - 30 * 90_000;
    const pcrPacket = (pcr: number, minimal: boolean) => {
      const b = tsPacket({ pcr });
      if (minimal) {
        b[3] = 0x30; // adaptation field and payload: a continuation of some PES
        b[4] = 7;
        b.fill(0xaa, 12);
      }
      return b;
    };
    const packets = Array.from({ length: 600 }, (_, i) => pcrPacket(start + i * 9001, i % 2 === 1));
    const c = checkWindow("ts", [Buffer.concat(packets)], from, 60, 1000);
    expect(c.mediaEnd).toBe(from + (599 * 9001) / 90_000);
  });

  it("spans from the earliest PTS when the body opens on a reordered frame", () => {
    const seconds = [2, 0, 1, ...Array.from({ length: 58 }, (_, i) => 3 + i)]; // 0 .. 60 s
    const packets = seconds.map((s) => pesPacket(base + s * 90_000));
    expect(checkWindow("ts", [Buffer.concat(packets)], from, 60).mediaEnd).toBe(from + 60);
  });

  it("reads no time from packets that carry none, however much they look like it", () => {
    const far = base + 5000 * 90_000;
    const decoys = [
      decoy(far, (b) => {
        b[1] = 0x01; // no payload unit start: a PES continuing
      }),
      decoy(far, (b) => {
        b[4] = 0x01; // not a PES start code (01 00 01)
      }),
      decoy(far, (b) => {
        b[5] = 0x01; // 00 01 01
      }),
      decoy(far, (b) => {
        b[6] = 0x02; // 00 00 02
      }),
      decoy(far, (b) => {
        b[7] = 0xbe; // a padding stream: no optional PES header
      }),
      decoy(far, (b) => {
        b[11] = 0x00; // PTS flag clear
      }),
      decoy(far, (b) => {
        // Adaptation field only (a one-byte field, no payload), PES-looking bytes after it.
        b[3] = 0x20;
        b.copyWithin(5, 4, 18);
        b[4] = 0;
      }),
      (() => {
        // An adaptation field that leaves no room for a PES header: the bytes after it run into
        // the next packet.
        const b = Buffer.alloc(188, 0xff);
        b.set([0x47, 0x41, 0x00, 0x30, 172, 0x00], 0);
        b.set([0x00, 0x00, 0x01, 0xe0, 0x00, 0x00, 0x80, 0x80, 0x05, 0x21, 0xff], 177);
        return b;
      })(),
      (() => {
        // Adaptation fields without a PCR: one with the flag clear, one too short for the PCR it flags.
        const b = tsPacket({ pcr: far });
        b[5] = 0x00;
        return b;
      })(),
      (() => {
        const b = tsPacket({ pcr: far });
        b[3] = 0x30;
        b[4] = 1;
        return b;
      })(),
    ];
    const real = (s: number) => pesPacket(base + s * 90_000);
    // The last second's PES header fills its packet to the last byte (after a 169-byte
    // adaptation field): it is read.
    const last = Buffer.alloc(188, 0xff);
    last.set([0x47, 0x41, 0x00, 0x30, 169, 0x00], 0);
    pesPacket(base + 60 * 90_000).copy(last, 174, 4, 18);
    const packets = [real(0), ...decoys, ...Array.from({ length: 59 }, (_, i) => real(i + 1)), last];
    for (const piece of [188, 1000]) {
      expect(checkWindow("ts", [Buffer.concat(packets)], from, 60, piece).mediaEnd).toBe(from + 60);
    }
    // Alone, the PCR decoys leave a body without time (their PCR is not read).
    expect(() => checkWindow("ts", [Buffer.concat(decoys.slice(-2))], from, 60)).toThrow(/no PTS or PCR/);
  });

  it("refuses a lost sync byte in whole packets fed at once, naming the byte", () => {
    const packets = Buffer.concat(Array.from({ length: 5 }, (_, i) => pesPacket(base + i * 9000)));
    packets[376] = 0;
    expect(() => feedInPieces("ts", packets, packets.length)).toThrow(
      "MPEG-TS sync byte missing at byte 376",
    );
  });
});
