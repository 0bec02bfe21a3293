/**
 * RFC 6381 codec strings and the resolution from an init segment's `moov`
 * (functions/domain/mp4-codecs.ts), on boxes built here byte by byte after ISO/IEC 14496-12/-14/-15:
 * what HLS `CODECS` and the DASH `codecs` attribute tell a player before it loads media. Real
 * H.264/AAC and HEVC files: test/domain/fragment-indexer.test.ts.
 */
import { describe, expect, it } from "vitest";
import { initSegmentMedia, readTrackCodecs } from "../../functions/domain/mp4-codecs.ts";

const u8 = (...b: number[]) => Buffer.from(b);
const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
function box(type: string, ...payload: Buffer[]): Buffer {
  const body = Buffer.concat(payload);
  return Buffer.concat([u32(8 + body.length), Buffer.from(type, "latin1"), body]);
}

/** `tkhd` version 0 or 1 with a track id and a display size (16.16 fixed point). */
function tkhd(id: number, width = 0, height = 0, version = 0): Buffer {
  const times = version === 1 ? Buffer.alloc(16) : Buffer.alloc(8);
  const duration = version === 1 ? Buffer.alloc(8) : Buffer.alloc(4);
  return box(
    "tkhd",
    u8(version, 0, 0, 7),
    times,
    u32(id),
    Buffer.alloc(4),
    duration,
    Buffer.alloc(8 + 8 + 36),
    u32(width * 65536),
    u32(height * 65536),
  );
}
const hdlr = (handler: string) =>
  box("hdlr", Buffer.alloc(8), Buffer.from(handler, "latin1"), Buffer.alloc(13));
const stsd = (entry: Buffer) => box("stsd", Buffer.alloc(4), u32(1), entry);
function trak(
  id: number,
  handler: string,
  entry: Buffer | undefined,
  size?: [number, number],
  tkhdVersion = 0,
): Buffer {
  const stbl = box("stbl", ...(entry ? [stsd(entry)] : []));
  return box(
    "trak",
    tkhd(id, size?.[0], size?.[1], tkhdVersion),
    box("mdia", box("mdhd", Buffer.alloc(24)), hdlr(handler), box("minf", stbl)),
  );
}
const moov = (...traks: Buffer[]) => box("moov", ...traks);

/** A visual sample entry (78 bytes of fields after the header) with its configuration boxes. */
function visual(type: string, width: number, height: number, ...config: Buffer[]): Buffer {
  const fields = Buffer.alloc(78);
  fields.writeUInt16BE(width, 24);
  fields.writeUInt16BE(height, 26);
  return box(type, fields, ...config);
}
const avcC = (profile: number, flags: number, level: number) =>
  box("avcC", u8(1, profile, flags, level, 0xff, 0xe0));
function hvcC(byte1: number, compat: number, constraints: number[], level: number): Buffer {
  return box("hvcC", u8(1, byte1), u32(compat), u8(...constraints), u8(level), Buffer.alloc(10));
}

/** An audio sample entry (version 0, 1 or 2 of the QuickTime layout) with an `esds`. */
function audio(type: string, version: number, ...config: Buffer[]): Buffer {
  const fields = Buffer.alloc(28 + (version === 1 ? 16 : version === 2 ? 36 : 0));
  fields.writeUInt16BE(version, 8);
  return box(type, fields, ...config);
}
/** An `esds` with an ES_Descriptor, its DecoderConfigDescriptor and optionally an AudioSpecificConfig. */
function esds(oti: number, specific?: number[], esFlags = 0): Buffer {
  const dsi = specific ? u8(0x05, specific.length, ...specific) : Buffer.alloc(0);
  const dcd = Buffer.concat([u8(0x04, 13 + dsi.length, oti, 0x15), Buffer.alloc(11), dsi]);
  const extra = Buffer.concat([
    esFlags & 0x80 ? u16(1) : Buffer.alloc(0),
    esFlags & 0x40 ? u8(3, 0x61, 0x62, 0x63) : Buffer.alloc(0),
    esFlags & 0x20 ? u16(2) : Buffer.alloc(0),
  ]);
  // The ES_Descriptor's size in the 4-byte form some muxers write (0x80 0x80 0x80 n).
  const esBody = Buffer.concat([u16(1), u8(esFlags), extra, dcd]);
  return box("esds", Buffer.alloc(4), u8(0x03, 0x80, 0x80, 0x80, esBody.length), esBody);
}

describe("codec strings of an init segment", () => {
  it("H.264: avc1.PPCCLL from the avcC, with the coded size of the sample entry", () => {
    const m = moov(
      trak(1, "vide", visual("avc1", 1280, 720, avcC(0x64, 0x00, 0x1f))),
      trak(2, "soun", audio("mp4a", 0, esds(0x40, [0x12, 0x10]))),
    );
    expect(readTrackCodecs(m)).toEqual([
      { trackId: 1, handler: "vide", codec: "avc1.64001f", width: 1280, height: 720 },
      { trackId: 2, handler: "soun", codec: "mp4a.40.2" },
    ]);
    expect(initSegmentMedia(m)).toEqual({ codecs: "avc1.64001f,mp4a.40.2", width: 1280, height: 720 });
  });

  it("HEVC: profile space, profile, reversed compatibility flags, tier and level, constraints without trailing zeros", () => {
    const main = readTrackCodecs(
      moov(trak(1, "vide", visual("hvc1", 640, 360, hvcC(0x01, 0x60000000, [0x90, 0, 0, 0, 0, 0], 93)))),
    );
    expect(main[0]!.codec).toBe("hvc1.1.6.L93.90");
    const high = readTrackCodecs(
      moov(trak(1, "vide", visual("hev1", 640, 360, hvcC(0x62, 0x20000000, [0xb0, 0, 0, 0, 0, 0x01], 120)))),
    );
    expect(high[0]!.codec).toBe("hev1.A2.4.H120.B0.0.0.0.0.1");
  });

  it("AAC object types from the AudioSpecificConfig, the escape for types past 30, other MPEG-4 audio by object type", () => {
    const codec = (entry: Buffer) => readTrackCodecs(moov(trak(2, "soun", entry)))[0]!.codec;
    expect(codec(audio("mp4a", 0, esds(0x40, [0x2b, 0x92])))).toBe("mp4a.40.5");
    // Object type 42 (USAC): 31, then 6 more bits (42 - 32 = 10).
    expect(codec(audio("mp4a", 0, esds(0x40, [0xf9, 0x40])))).toBe("mp4a.40.42");
    expect(codec(audio("mp4a", 0, esds(0x6b)))).toBe("mp4a.6B");
    // No AudioSpecificConfig: AAC-LC, the common case.
    expect(codec(audio("mp4a", 0, esds(0x40)))).toBe("mp4a.40.2");
    // Optional ES_Descriptor fields (dependsOn, URL, OCR stream) before the DecoderConfigDescriptor.
    expect(codec(audio("mp4a", 0, esds(0x40, [0x2b, 0x92], 0xe0)))).toBe("mp4a.40.5");
    // QuickTime sound descriptions version 1 and 2 carry their esds further in.
    expect(codec(audio("mp4a", 1, esds(0x40, [0x2b, 0x92])))).toBe("mp4a.40.5");
    expect(codec(audio("mp4a", 2, esds(0x40, [0x2b, 0x92])))).toBe("mp4a.40.5");
    expect(codec(audio("Opus", 0))).toBe("opus");
    expect(codec(audio("fLaC", 0))).toBe("flac");
    expect(codec(audio("ec-3", 0))).toBe("ec-3");
  });

  it("no CODECS unless every track's codec is known; the size from tkhd (version 0 or 1) when the entry has none", () => {
    const vp9 = moov(
      trak(1, "vide", visual("vp09", 0, 0), [1920, 1080]),
      trak(2, "soun", audio("mp4a", 0, esds(0x40))),
    );
    expect(readTrackCodecs(vp9)[0]).toEqual({
      trackId: 1,
      handler: "vide",
      codec: undefined,
      width: 1920,
      height: 1080,
    });
    expect(initSegmentMedia(vp9)).toEqual({ width: 1920, height: 1080 });
    const v1 = moov(trak(7, "vide", undefined, [640, 480], 1));
    expect(readTrackCodecs(v1)).toEqual([
      { trackId: 7, handler: "vide", codec: undefined, width: 640, height: 480 },
    ]);
    // An audio track's tkhd size is not a resolution; no track at all is no CODECS.
    expect(initSegmentMedia(moov(trak(2, "soun", audio("mp4a", 0, esds(0x40)), [10, 10])))).toEqual({
      codecs: "mp4a.40.2",
    });
    expect(initSegmentMedia(moov())).toEqual({});
  });
});

describe("codec strings, more layouts", () => {
  it("reads the shortest avcC and hvcC, constraint flags of H.264, and every HEVC profile space", () => {
    const codec = (entry: Buffer) => readTrackCodecs(moov(trak(1, "vide", entry)))[0]!.codec;
    // avcC of 12 bytes: header, version, profile, constraint flags, level.
    expect(codec(visual("avc1", 640, 360, box("avcC", u8(1, 0x4d, 0x40, 0x1e))))).toBe("avc1.4d401e");
    // hvcC of 21 bytes: header and the 13 bytes the string is read from.
    const short = (byte1: number, compat: number) =>
      box("hvcC", u8(1, byte1), u32(compat), u8(0, 0, 0, 0, 0, 0), u8(90));
    expect(codec(visual("hvc1", 640, 360, short(0x03, 0x30000000)))).toBe("hvc1.3.C.L90");
    expect(codec(visual("hvc1", 640, 360, short(0x81, 0x40000000)))).toBe("hvc1.B1.2.L90");
    expect(codec(visual("hvc1", 640, 360, short(0xc1, 0x40000000)))).toBe("hvc1.C1.2.L90");
    expect(readTrackCodecs(moov(trak(2, "soun", audio("ac-3", 0))))[0]!.codec).toBe("ac-3");
  });

  it("ignores the other boxes of a sample table and of a sample entry (stts after stsd, btrt after esds)", () => {
    const withStts = box(
      "trak",
      tkhd(1),
      box(
        "mdia",
        hdlr("soun"),
        box(
          "minf",
          box(
            "stbl",
            stsd(audio("mp4a", 0, esds(0x40, [0x2b, 0x92]), box("btrt", Buffer.alloc(12)))),
            box("stts", Buffer.alloc(8)),
          ),
        ),
      ),
    );
    expect(readTrackCodecs(moov(withStts))[0]!.codec).toBe("mp4a.40.5");
  });

  it("a track without tkhd or hdlr is listed as unknown; the entry's coded size wins over tkhd's; audio gets no size", () => {
    expect(readTrackCodecs(moov(box("trak")))).toEqual([{ trackId: 0, handler: "", codec: undefined }]);
    const m = moov(
      trak(2, "soun", audio("mp4a", 0, esds(0x40)), [10, 10]),
      trak(1, "vide", visual("avc1", 1280, 720, avcC(0x64, 0, 0x1f)), [1920, 1080]),
    );
    expect(readTrackCodecs(m)).toEqual([
      { trackId: 2, handler: "soun", codec: "mp4a.40.2" },
      { trackId: 1, handler: "vide", codec: "avc1.64001f", width: 1280, height: 720 },
    ]);
    expect(initSegmentMedia(m)).toEqual({ codecs: "mp4a.40.2,avc1.64001f", width: 1280, height: 720 });
  });
});
