import { describe, expect, it } from "vitest";
import { nonOverlappingCover } from "../../functions/domain/windows.ts";

const T = 20_000 * 86400;

describe("restore cover of stored windows", () => {
  it("takes one whole window rather than its halves, and never both", () => {
    const stored = [
      { from: T, duration: 300 },
      { from: T, duration: 600 },
      { from: T + 300, duration: 300 },
      { from: T + 600, duration: 600 },
    ];
    expect(nonOverlappingCover(stored, T, T + 1200)).toEqual([
      { from: T, duration: 600 },
      { from: T + 600, duration: 600 },
    ]);
  });

  it("takes the halves when only they reach the range's end", () => {
    const stored = [
      { from: T, duration: 600 },
      { from: T + 300, duration: 300 },
      { from: T + 600, duration: 300 },
      { from: T + 300, duration: 600 },
    ];
    const cover = nonOverlappingCover(stored, T, T + 900);
    expect(cover.reduce((n, w) => n + w.duration, 0)).toBe(900);
    for (let i = 1; i < cover.length; i++) {
      expect(cover[i]!.from).toBeGreaterThanOrEqual(cover[i - 1]!.from + cover[i - 1]!.duration);
    }
  });

  it("keeps windows around holes and ignores those outside the range", () => {
    const stored = [
      { from: T - 600, duration: 600 },
      { from: T, duration: 200 },
      { from: T + 400, duration: 200 },
      { from: T + 600, duration: 600 },
    ];
    expect(nonOverlappingCover(stored, T + 100, T + 700)).toEqual([
      { from: T, duration: 200 },
      { from: T + 400, duration: 200 },
      { from: T + 600, duration: 600 },
    ]);
  });
});
