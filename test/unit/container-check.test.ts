import { describe, expect, it } from "vitest";
import { containerCheck } from "../../functions/domain/container-check.ts";

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
