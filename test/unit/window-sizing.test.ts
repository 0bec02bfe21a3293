import { describe, expect, it } from "vitest";
import { parseConfig } from "../../functions/config.ts";
import { bandwidthAt } from "../../functions/domain/bandwidth-schedule.ts";
import { lowestCopyingMbps } from "../../functions/domain/windows.ts";
import { streamWindowSeconds } from "../../functions/plan-backup.ts";

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
    // Same answer as the copier's schedule lookup, minute by minute.
    const noon = Math.floor(Date.UTC(2026, 10, 20, 12, 0, 0) / 1000);
    expect(bandwidthAt(whole, 5, noon)).toBe(20);
  });
});
