import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../functions/config/config.ts";
import { bandwidthAt } from "../../functions/domain/bandwidth-schedule.ts";
import { lowestCopyingMbps } from "../../functions/domain/windows.ts";
import { streamWindowSeconds } from "../../functions/planner/plan-backup.ts";

function config(source: Record<string, unknown>) {
  return parseConfig(
    JSON.stringify({
      bucket: "test-backup",
      sources: [{ name: "src1", url: "http://127.0.0.1:1", maxConcurrentCopies: 2, ...source }],
    }),
    "test-config.json",
  );
}

describe("window sizing under a bandwidth schedule", () => {
  it("sizes windows for the daytime cap: an 8 Mbit/s window fits a third of the 900 s timeout at 10 Mbit/s", () => {
    const c = config({
      maxBandwidthMbps: 100,
      bandwidthSchedule: [{ from: "08:00", to: "20:00", maxBandwidthMbps: 10 }],
    });
    const source = c.sources[0]!;
    const window = streamWindowSeconds(c, source, 8_000_000, 900);
    // Each copier's share of the daytime cap: 10 Mbit/s over 2 copies.
    const daytimeCopySeconds = (window * 8_000_000) / ((10 * 1_000_000) / 2);
    expect(daytimeCopySeconds).toBeLessThanOrEqual(900 / 3);
    expect(window).toBe(180);
  });

  it("counts the cap outside every period, skips no-copy periods, and follows a period past midnight", () => {
    const day = [{ from: "08:00", to: "20:00", maxBandwidthMbps: 10 }];
    expect(lowestCopyingMbps([], 100)).toBe(100);
    expect(lowestCopyingMbps(day, 100)).toBe(10);
    expect(lowestCopyingMbps(day, 5)).toBe(5);
    expect(lowestCopyingMbps([{ from: "18:00", to: "22:00", maxBandwidthMbps: 0 }], 100)).toBe(100);
    expect(lowestCopyingMbps([{ from: "00:00", to: "00:00", maxBandwidthMbps: 0 }], 100)).toBe(100);
    // 22:00-06:00 at 50, the rest of the day at 20 (the whole day covered: the default never applies).
    const whole = [
      { from: "22:00", to: "06:00", maxBandwidthMbps: 50 },
      { from: "06:00", to: "22:00", maxBandwidthMbps: 20 },
    ];
    expect(lowestCopyingMbps(whole, 5)).toBe(20);
  });

  it("gives the lowest positive cap the copier's schedule lookup applies in any minute of the day (generated schedules)", () => {
    const midnight = Math.floor(Date.UTC(2026, 10, 20) / 1000);
    const minuteOf = (t: string) => Number(t.slice(0, 2)) * 60 + Number(t.slice(3));
    const hhmm = fc
      .tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }))
      .map(([hh, mm]) => `${String(hh).padStart(2, "0")}:${String(mm).padStart(2, "0")}`);
    const period = fc.record({ from: hhmm, to: hhmm, maxBandwidthMbps: fc.integer({ min: 0, max: 100 }) });
    fc.assert(
      fc.property(fc.array(period, { maxLength: 5 }), fc.integer({ min: 1, max: 100 }), (periods, cap) => {
        // The lookup only changes where a period starts or ends: those minutes (and midnight) are
        // every minute of the day as far as caps go.
        const minutes = [0, ...periods.flatMap((p) => [p.from, p.to].map(minuteOf))];
        let lowest = Number.POSITIVE_INFINITY;
        for (const minute of minutes) {
          const mbps = bandwidthAt(periods, cap, midnight + minute * 60);
          if (mbps > 0) lowest = Math.min(lowest, mbps);
        }
        // No minute copies at all: windows are sized for the default cap.
        expect(lowestCopyingMbps(periods, cap)).toBe(Number.isFinite(lowest) ? lowest : cap);
      }),
      { numRuns: 300 },
    );
  });
});
