import { describe, expect, it } from "vitest";
import { coverage } from "../../functions/domain/coverage.ts";

const NOW = 100_000 + 17 * 60; // 17 minutes after a 600 s boundary (100_200 is not one; 99_600 is)

describe("coverage of a stream", () => {
  it("counts only due seconds: the settle margin and the open window are not yet due, not missing", () => {
    const c = coverage({
      archive: [{ from: NOW - 3600, to: NOW }],
      backedUp: [{ from: NOW - 3600, to: 100_200 }],
      retentionStart: NOW - 3600,
      now: NOW,
      settleSeconds: 120,
      windowSeconds: 600,
    });
    // horizon = NOW - 120 = 100_900; the last boundary before it is 100_800.
    expect(c.dueUntil).toBe(100_800);
    expect(c.missing).toEqual([{ from: 100_200, to: 100_800 }]);
    expect(c.notYetDue).toEqual([{ from: 100_800, to: NOW }]);
    expect(c.dueSeconds).toBe(100_800 - (NOW - 3600));
    expect(c.percent).toBeCloseTo((100 * (100_200 - (NOW - 3600))) / c.dueSeconds!, 6);
    expect(c.lagSeconds).toBe(NOW - 100_200);
  });

  it("reports archive gaps as neither missing nor covered, and backup the source no longer has as backed up", () => {
    const c = coverage({
      archive: [
        { from: NOW - 3000, to: NOW - 2000 },
        { from: NOW - 1900, to: NOW - 1000 },
      ],
      backedUp: [
        { from: NOW - 5000, to: NOW - 2000 },
        { from: NOW - 1900, to: NOW - 1000 },
      ],
      retentionStart: NOW - 3600,
      now: NOW,
      settleSeconds: 120,
      windowSeconds: 600,
    });
    expect(c.missing).toEqual([]);
    expect(c.notYetDue).toEqual([]);
    expect(c.percent).toBe(100);
    expect(c.backedUpSeconds).toBe(1600 + 900);
  });

  it("leaves coverage unknown when the archive could not be read", () => {
    const c = coverage({
      archive: undefined,
      backedUp: [{ from: NOW - 600, to: NOW - 300 }],
      retentionStart: NOW - 3600,
      now: NOW,
      settleSeconds: 120,
      windowSeconds: 600,
    });
    expect(c.percent).toBeUndefined();
    expect(c.missing).toBeUndefined();
    expect(c.head).toBe(NOW - 300);
  });
});
