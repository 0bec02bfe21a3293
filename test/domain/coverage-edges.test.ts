/**
 * Coverage at its edges, as `status` and the planner read it: when the range still recording is due
 * up to the settle margin, what counts as backed up (only seconds inside the retention, each once),
 * and what is unknown rather than zero.
 */
import { describe, expect, it } from "vitest";
import { coverage, dueRanges } from "../../functions/domain/coverage.ts";

const NOW = 100_000 + 17 * 60;
const base = { retentionStart: NOW - 3600, now: NOW, settleSeconds: 120, windowSeconds: 600 };

describe("due seconds", () => {
  it("the range still recording is due up to the last window boundary before the settle margin", () => {
    expect(dueRanges([{ from: 90_000, to: 101_000 }], 90_000, 100_900, 600)).toEqual([
      { from: 90_000, to: 100_800 },
    ]);
    // On a boundary, up to the horizon itself.
    expect(dueRanges([{ from: 90_000, to: 101_000 }], 90_000, 100_800, 600)).toEqual([
      { from: 90_000, to: 100_800 },
    ]);
    // A range that closed before the horizon is due whole, even off a boundary.
    expect(dueRanges([{ from: 90_000, to: 100_850 }], 90_000, 100_900, 600)).toEqual([
      { from: 90_000, to: 100_850 },
    ]);
  });

  it("a recording that began after the last boundary has nothing due yet, and no empty range", () => {
    const ranges = [
      { from: 90_000, to: 95_000 },
      { from: 100_810, to: 101_000 },
    ];
    expect(dueRanges(ranges, 90_000, 100_900, 600)).toEqual([{ from: 90_000, to: 95_000 }]);
    expect(dueRanges([{ from: 100_810, to: 101_000 }], 90_000, 100_900, 600)).toEqual([]);
  });
});

describe("a stream's coverage", () => {
  it("counts backed-up seconds inside the retention only, and each second once", () => {
    const c = coverage({
      ...base,
      archive: [{ from: NOW - 7200, to: NOW }],
      backedUp: [
        { from: NOW - 7200, to: NOW - 3000 },
        { from: NOW - 3300, to: NOW - 2400 },
      ],
    });
    expect(c.backedUpSeconds).toBe(1200);
    expect(c.archiveSeconds).toBe(3600);
    expect(c.head).toBe(NOW - 2400);
    expect(c.lagSeconds).toBe(2400);
    expect(c.coveredSeconds).toBe(1200);
    expect(c.missing).toEqual([{ from: NOW - 2400, to: 100_800 }]);
  });

  it("with nothing stored: no head and no lag (unknown), 0 % of what is due", () => {
    const c = coverage({ ...base, archive: [{ from: NOW - 3600, to: NOW }], backedUp: [] });
    expect(c.head).toBeUndefined();
    expect(c.lagSeconds).toBeUndefined();
    expect(c.backedUpSeconds).toBe(0);
    expect(c.percent).toBe(0);
  });

  it("with nothing recorded: 100 %, nothing missing, due until the settle margin", () => {
    const c = coverage({ ...base, archive: [], backedUp: [] });
    expect(c).toMatchObject({ percent: 100, dueSeconds: 0, coveredSeconds: 0, missing: [], notYetDue: [] });
    expect(c.dueUntil).toBe(NOW - 120);
  });

  it("with the archive unknown, says so for every archive figure and still reports what is stored", () => {
    expect(coverage({ ...base, archive: undefined, backedUp: [{ from: NOW - 600, to: NOW - 300 }] })).toEqual(
      {
        backedUpSeconds: 300,
        head: NOW - 300,
        lagSeconds: 300,
        dueUntil: NOW - 120,
        archiveSeconds: undefined,
        dueSeconds: undefined,
        coveredSeconds: undefined,
        percent: undefined,
        missing: undefined,
        notYetDue: undefined,
      },
    );
  });
});
