import { describe, expect, it } from "vitest";
import {
  countWindows,
  cutWindows,
  cutWindowsNewestFirst,
  lowestCopyingMbps,
  missingRanges,
  nonOverlappingCover,
  recordedSecondsIn,
  windowLengthFor,
} from "../../functions/domain/windows.ts";

const DAY = 86400;
const T0 = 20_000 * DAY; // a UTC midnight

describe("cutWindows", () => {
  it("aligns windows to UTC boundaries and gives shorter windows where a range starts or ends inside one", () => {
    const w = [...cutWindows([{ from: T0 + 130, to: T0 + 1500 }], 600, T0 + 10_000)];
    expect(w).toEqual([
      { from: T0 + 130, duration: 470 },
      { from: T0 + 600, duration: 600 },
      { from: T0 + 1200, duration: 300 },
    ]);
  });
  it("never crosses a gap", () => {
    const w = [
      ...cutWindows(
        [
          { from: T0, to: T0 + 400 },
          { from: T0 + 500, to: T0 + 700 },
        ],
        600,
        T0 + 10_000,
      ),
    ];
    expect(w).toEqual([
      { from: T0, duration: 400 },
      { from: T0 + 500, duration: 100 },
      { from: T0 + 600, duration: 100 },
    ]);
  });
  it("leaves the piece still being recorded at the horizon for a later run", () => {
    const horizon = T0 + 1000;
    expect([...cutWindows([{ from: T0, to: horizon }], 600, horizon)]).toEqual([{ from: T0, duration: 600 }]);
    // On a boundary the last window is complete.
    expect([...cutWindows([{ from: T0, to: T0 + 1200 }], 600, T0 + 1200)]).toHaveLength(2);
  });
  it("newest first yields the same windows in reverse", () => {
    const missing = [
      { from: T0 + 10, to: T0 + 2000 },
      { from: T0 + 3000, to: T0 + 4000 },
    ];
    const forward = [...cutWindows(missing, 300, T0 + 9999)];
    expect([...cutWindowsNewestFirst(missing, 300, T0 + 9999)]).toEqual(forward.reverse());
  });
  it("countWindows agrees with cutWindows", () => {
    const cases = [
      { missing: [{ from: T0 + 130, to: T0 + 1500 }], horizon: T0 + 99_999 },
      { missing: [{ from: T0, to: T0 + 1000 }], horizon: T0 + 1000 },
      { missing: [{ from: T0 + 700, to: T0 + 1000 }], horizon: T0 + 1000 },
      // The horizon on a window boundary: the last window is whole, and counted.
      { missing: [{ from: T0, to: T0 + 1200 }], horizon: T0 + 1200 },
      {
        missing: [
          { from: T0 + 1, to: T0 + 2 },
          { from: T0 + 600, to: T0 + 1800 },
        ],
        horizon: T0 + 5000,
      },
    ];
    for (const c of cases) {
      expect(countWindows(c.missing, 600, c.horizon)).toBe([...cutWindows(c.missing, 600, c.horizon)].length);
    }
  });
});

describe("missingRanges", () => {
  it("is what was recorded inside retention and before the horizon, minus stored and leased windows", () => {
    const missing = missingRanges({
      recorded: [{ from: T0, to: T0 + 3600 }],
      covered: [{ from: T0 + 600, to: T0 + 1200 }],
      leased: [{ from: T0 + 1200, duration: 600 }],
      retentionStart: T0 + 100,
      horizon: T0 + 3000,
    });
    expect(missing).toEqual([
      { from: T0 + 100, to: T0 + 600 },
      { from: T0 + 1800, to: T0 + 3000 },
    ]);
  });

  it("counts covered ranges out of normal form (a manifest edited by hand) as their union, leases overlapping them too", () => {
    const input = {
      recorded: [
        { from: T0, to: T0 + 3600 },
        { from: T0 + 4000, to: T0 + 5000 },
      ],
      leased: [
        { from: T0 + 2400, duration: 600 },
        { from: T0 + 1000, duration: 600 },
      ],
      retentionStart: T0,
      horizon: T0 + 6000,
    };
    const expected = [
      { from: T0 + 300, to: T0 + 600 },
      { from: T0 + 1600, to: T0 + 2400 },
      { from: T0 + 3000, to: T0 + 3600 },
      { from: T0 + 4000, to: T0 + 5000 },
    ];
    const normal = [
      { from: T0, to: T0 + 300 },
      { from: T0 + 600, to: T0 + 1200 },
    ];
    expect(missingRanges({ ...input, covered: normal })).toEqual(expected);
    // Unsorted, overlapping, touching and empty ranges of the same union.
    const edited = [
      { from: T0 + 900, to: T0 + 1200 },
      { from: T0 + 100, to: T0 + 300 },
      { from: T0 + 600, to: T0 + 1000 },
      { from: T0 + 700, to: T0 + 700 },
      { from: T0, to: T0 + 200 },
    ];
    expect(missingRanges({ ...input, covered: edited })).toEqual(expected);
  });
});

describe("windowLengthFor", () => {
  it("takes the configured maximum for ordinary streams", () => {
    expect(
      windowLengthFor({
        maxWindowSeconds: 600,
        bitrateBps: 4e6,
        copierBandwidthBps: 50e6,
        copyBudgetSeconds: 300,
      }),
    ).toBe(600);
  });
  it("shortens windows of high-bitrate streams so one copy fits the copier's budget at its bandwidth share", () => {
    // 40 Mbit/s stream, 10 Mbit/s per copier, 300 s budget: at most 75 s of video per window.
    expect(
      windowLengthFor({
        maxWindowSeconds: 600,
        bitrateBps: 40e6,
        copierBandwidthBps: 10e6,
        copyBudgetSeconds: 300,
      }),
    ).toBe(60);
    expect(
      windowLengthFor({
        maxWindowSeconds: 600,
        bitrateBps: 10e6,
        copierBandwidthBps: 10e6,
        copyBudgetSeconds: 300,
      }),
    ).toBe(300);
  });
  it("returns a divisor of a day", () => {
    for (const bitrate of [1e5, 1e6, 5e6, 2e7, 1e8]) {
      const n = windowLengthFor({
        maxWindowSeconds: 3600,
        bitrateBps: bitrate,
        copierBandwidthBps: 1e7,
        copyBudgetSeconds: 300,
      });
      expect(DAY % n).toBe(0);
    }
  });
});

describe("windowLengthFor, a source without Range (one request per window)", () => {
  // 32 kbit/s: 2.4 MB per 600 s window, one burst at the source (below the kernels' buffers).
  // 2 Mbit/s cap, 2 copies: 1 Mbit/s per copier, half a second of it is 62.5 kB.
  const audio = {
    maxWindowSeconds: 600,
    bitrateBps: 32_000,
    copierBandwidthBps: 1e6,
    copyBudgetSeconds: 300,
  };
  it("cuts windows below the kernel buffers short, to minWindowSeconds when no length fits the burst budget", () => {
    expect(windowLengthFor(audio)).toBe(60);
    expect(windowLengthFor({ ...audio, reads: "whole" })).toBe(60);
    expect(windowLengthFor({ ...audio, minWindowSeconds: 30 })).toBe(30);
  });
  it("takes the longest length whose burst fits half a second of the copier's bandwidth", () => {
    // 15 s = 60 kB <= 62.5 kB; 20 s = 80 kB does not fit.
    expect(windowLengthFor({ ...audio, minWindowSeconds: 10 })).toBe(15);
    expect(windowLengthFor({ ...audio, minWindowSeconds: 15 })).toBe(15);
    // 8 Mbit/s per copier: 500 kB per burst, 120 s of 32 kbit/s.
    expect(windowLengthFor({ ...audio, copierBandwidthBps: 8e6 })).toBe(120);
  });
  it("keeps the full length for a source known to answer Range (paced slices), or when a window already fits", () => {
    expect(windowLengthFor({ ...audio, reads: "slices", minWindowSeconds: 15 })).toBe(600);
    // 100 Mbit/s cap over 2 copies: 3.1 MB per burst holds a whole 2.4 MB window.
    expect(windowLengthFor({ ...audio, copierBandwidthBps: 50e6, minWindowSeconds: 15 })).toBe(600);
  });
  it("leaves windows larger than the kernel buffers alone: their burst is the kernels' lead, not the window", () => {
    // 512 kbit/s: 38 MB per 600 s window; 8 Mbit/s per copier (500 kB per burst).
    expect(
      windowLengthFor({ ...audio, bitrateBps: 512_000, copierBandwidthBps: 8e6, minWindowSeconds: 15 }),
    ).toBe(600);
  });
  it("does not shorten when the shortest allowed window would not even halve the burst", () => {
    // 62.5 kB per burst; 48 kbit/s x 360 s = 2.16 MB; at least 240 s (1.44 MB) allowed: not half.
    expect(
      windowLengthFor({ ...audio, maxWindowSeconds: 360, bitrateBps: 48_000, minWindowSeconds: 240 }),
    ).toBe(360);
  });
});

describe("window sizing without a known bitrate, and the schedule's lowest cap", () => {
  it("sizes windows of a stream of unknown bitrate as for the assumed bitrate", () => {
    const input = { maxWindowSeconds: 3600, copierBandwidthBps: 10e6, copyBudgetSeconds: 300 };
    // 300 s at 10 Mbit/s over 8 Mbit/s: 375 s of video; the longest allowed length below is 360.
    expect(windowLengthFor({ ...input, bitrateBps: undefined })).toBe(360);
    expect(windowLengthFor({ ...input, bitrateBps: 8_000_000 })).toBe(360);
  });

  it("a period starting where another ends takes effect at its first minute", () => {
    // Listed out of order: the minute 20:00 belongs to the one-minute period only.
    const periods = [
      { from: "08:00", to: "20:00", maxBandwidthMbps: 50 },
      { from: "20:01", to: "21:00", maxBandwidthMbps: 50 },
      { from: "20:00", to: "20:01", maxBandwidthMbps: 10 },
    ];
    expect(lowestCopyingMbps(periods, 100)).toBe(10);
  });
});

describe("recordedSecondsIn", () => {
  it("counts the recorded seconds inside the span, gaps apart", () => {
    const recorded = [
      { from: T0, to: T0 + 100 },
      { from: T0 + 200, to: T0 + 400 },
    ];
    expect(recordedSecondsIn(recorded, T0 + 50, T0 + 300)).toBe(150);
    expect(recordedSecondsIn(recorded, T0 + 100, T0 + 200)).toBe(0);
  });
});

describe("nonOverlappingCover against every choice", () => {
  it("covers as many seconds as the best set of windows without overlap, with as few windows, oldest first", () => {
    let seed = 12_345;
    const next = (n: number) => {
      seed = (seed * 48_271) % 2_147_483_647;
      return seed % n;
    };
    const durations = [100, 200, 300, 600];
    for (let round = 0; round < 300; round++) {
      const windows = Array.from({ length: 1 + next(8) }, () => ({
        from: T0 + 100 * next(12),
        duration: durations[next(durations.length)]!,
      }));
      const from = T0 + 100 * next(6);
      const to = from + 100 * (1 + next(12));
      const weight = (w: { from: number; duration: number }) =>
        Math.max(0, Math.min(w.from + w.duration, to) - Math.max(w.from, from));
      // Every subset without overlap: the most seconds, then the fewest windows.
      let best = { seconds: -1, count: 0 };
      for (let mask = 0; mask < 1 << windows.length; mask++) {
        const set = windows.filter((_, i) => mask & (1 << i)).filter((w) => weight(w) > 0);
        if (set.length !== windows.filter((_, i) => mask & (1 << i)).length) continue;
        const sorted = [...set].sort((a, b) => a.from - b.from);
        if (sorted.some((w, i) => i > 0 && w.from < sorted[i - 1]!.from + sorted[i - 1]!.duration)) continue;
        const seconds = set.reduce((n, w) => n + weight(w), 0);
        if (seconds > best.seconds || (seconds === best.seconds && set.length < best.count))
          best = { seconds, count: set.length };
      }
      const cover = nonOverlappingCover(windows, from, to);
      const label = JSON.stringify({ windows, from, to });
      expect(
        cover.reduce((n, w) => n + weight(w), 0),
        label,
      ).toBe(best.seconds);
      expect(cover.length, label).toBe(best.count);
      for (let i = 1; i < cover.length; i++)
        expect(cover[i]!.from, label).toBeGreaterThanOrEqual(cover[i - 1]!.from + cover[i - 1]!.duration);
    }
  });
});
