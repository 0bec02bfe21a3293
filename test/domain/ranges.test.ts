import { describe, expect, it } from "vitest";
import {
  clipRanges,
  intersectRanges,
  normalizeRanges,
  subtractRanges,
  totalSeconds,
} from "../../functions/domain/ranges.ts";

describe("normalizeRanges", () => {
  it("sorts, drops empty ranges and merges overlapping and touching ones", () => {
    expect(
      normalizeRanges([
        { from: 50, to: 60 },
        { from: 10, to: 20 },
        { from: 20, to: 30 },
        { from: 25, to: 28 },
        { from: 40, to: 40 },
      ]),
    ).toEqual([
      { from: 10, to: 30 },
      { from: 50, to: 60 },
    ]);
  });

  it("gives a list already in normal form back as copies (its objects are never shared)", () => {
    const normal = [
      { from: 10, to: 30 },
      { from: 31, to: 40 },
      { from: 50, to: 60 },
    ];
    const out = normalizeRanges(normal);
    expect(out).toEqual(normal);
    expect(out.some((r, i) => r === normal[i])).toBe(false);
    // Touching, unsorted or empty: not normal, merged as usual.
    expect(
      normalizeRanges([
        { from: 10, to: 30 },
        { from: 30, to: 40 },
      ]),
    ).toEqual([{ from: 10, to: 40 }]);
    expect(
      normalizeRanges([
        { from: 50, to: 60 },
        { from: 10, to: 20 },
        { from: 70, to: 70 },
      ]),
    ).toEqual([
      { from: 10, to: 20 },
      { from: 50, to: 60 },
    ]);
  });
});

describe("subtractRanges", () => {
  it("removes holes, keeping what lies between them", () => {
    const r = subtractRanges(
      [
        { from: 0, to: 100 },
        { from: 200, to: 300 },
      ],
      [
        { from: 10, to: 20 },
        { from: 90, to: 210 },
        { from: 250, to: 260 },
      ],
    );
    expect(r).toEqual([
      { from: 0, to: 10 },
      { from: 20, to: 90 },
      { from: 210, to: 250 },
      { from: 260, to: 300 },
    ]);
  });
  it("returns the ranges unchanged without holes, and nothing when all is covered", () => {
    expect(subtractRanges([{ from: 5, to: 9 }], [])).toEqual([{ from: 5, to: 9 }]);
    expect(subtractRanges([{ from: 5, to: 9 }], [{ from: 0, to: 100 }])).toEqual([]);
  });
});

describe("clip, intersect, total", () => {
  it("clips to a span and intersects two lists", () => {
    expect(
      clipRanges(
        [
          { from: 0, to: 10 },
          { from: 20, to: 30 },
        ],
        5,
        25,
      ),
    ).toEqual([
      { from: 5, to: 10 },
      { from: 20, to: 25 },
    ]);
    expect(
      intersectRanges(
        [
          { from: 0, to: 10 },
          { from: 20, to: 30 },
        ],
        [{ from: 8, to: 22 }],
      ),
    ).toEqual([
      { from: 8, to: 10 },
      { from: 20, to: 22 },
    ]);
    expect(
      totalSeconds([
        { from: 0, to: 10 },
        { from: 20, to: 25 },
      ]),
    ).toBe(15);
  });
});

describe("ranges at their edges", () => {
  it("drops an empty range at the head of an otherwise sorted list", () => {
    expect(
      normalizeRanges([
        { from: 5, to: 5 },
        { from: 10, to: 20 },
      ]),
    ).toEqual([{ from: 10, to: 20 }]);
  });

  it("intersects lists of different lengths, and ranges that only touch share nothing", () => {
    expect(
      intersectRanges(
        [{ from: 0, to: 10 }],
        [
          { from: 5, to: 20 },
          { from: 30, to: 40 },
        ],
      ),
    ).toEqual([{ from: 5, to: 10 }]);
    expect(intersectRanges([{ from: 0, to: 10 }], [{ from: 10, to: 20 }])).toEqual([]);
  });
});
