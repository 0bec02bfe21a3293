import { describe, expect, it } from "vitest";
import { windowKey } from "../../functions/domain/keys.ts";
import {
  decodeKeySegment,
  encodeKeySegment,
  sourceNameProblem,
  streamNameProblem,
} from "../../functions/domain/names.ts";

describe("stream and source names", () => {
  it("accepts Flussonic-style stream names with slashes, dots and dashes", () => {
    for (const n of ["cam1", "live/cam1", "tv.channel-1", "a_b", "Кам 1"])
      expect(streamNameProblem(n)).toBeUndefined();
  });
  it("refuses names that cannot be a path", () => {
    for (const n of ["", "/cam", "cam/", "a//b", ".", "..", "a/../b", "a/./b", "x\ny", "x".repeat(256)]) {
      expect(streamNameProblem(n), n).toMatch(/stream name must be/);
    }
  });
  it("restricts source names to identifiers", () => {
    for (const n of ["streamer1", "a", "x".repeat(40)]) expect(sourceNameProblem(n), n).toBeUndefined();
    for (const n of ["", ".hidden", "a/b", "a b", "x".repeat(41)])
      expect(sourceNameProblem(n), n).toMatch(/^source name must be /);
  });
});

describe("encodeKeySegment", () => {
  it("keeps readable names readable and encodes '/' and '%' so a name stays one segment", () => {
    expect(encodeKeySegment("cam1")).toBe("cam1");
    expect(encodeKeySegment("tv.channel-1")).toBe("tv.channel-1");
    expect(encodeKeySegment("live/cam1")).toBe("live%2Fcam1");
    expect(encodeKeySegment("100%")).toBe("100%25");
  });
  it("never yields '.', '..' or a hidden segment", () => {
    expect(encodeKeySegment(".")).toBe("%2E");
    expect(encodeKeySegment("..")).toBe("%2E.");
    expect(encodeKeySegment(".x")).toBe("%2Ex");
  });
  it("is one-to-one: decoding gives the name back", () => {
    for (const n of ["live/cam1", "a%2Fb", "Кам 1", "..", "x+y=z?&#"]) {
      const e = encodeKeySegment(n);
      expect(e).toMatch(/^[A-Za-z0-9._%-]+$/);
      expect(decodeKeySegment(e)).toBe(n);
    }
  });
});

describe("windowKey", () => {
  it("reads as source, stream, UTC date and time, duration and format", () => {
    const from = Date.UTC(2026, 10, 25, 14, 30, 0) / 1000;
    expect(windowKey("flussonic/", { source: "s1", stream: "live/cam1", from, duration: 600 }, "mp4")).toBe(
      "flussonic/s1/live%2Fcam1/2026-11-25/143000Z-600s.mp4",
    );
  });
});

describe("name limits and encoding at their edges", () => {
  it("accepts a stream name of exactly 255 characters (the documented limit)", () => {
    expect(streamNameProblem("x".repeat(255))).toBeUndefined();
  });
  it("writes a byte below 0x10 as two hex digits, so decoding gives it back", () => {
    expect(encodeKeySegment("a\u0001b")).toBe("a%01b");
    expect(decodeKeySegment(encodeKeySegment("a\u0001b"))).toBe("a\u0001b");
  });
});
