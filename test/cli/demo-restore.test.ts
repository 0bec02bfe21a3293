/**
 * The demo's `restore` line names 10 minutes its backup holds whole: inside one recorded range of
 * the simulated archive, whatever the clock (its gaps move with the time the demo runs).
 */
import { describe, expect, it } from "vitest";
import { demoRestoreStart } from "../../cli/commands/demo.ts";

const T = Math.floor(Date.UTC(2026, 11, 2, 3, 14, 0) / 1000);

describe("demoRestoreStart", () => {
  it("takes the newest whole 10 minutes that ended a quarter of an hour before the live edge", () => {
    const from = demoRestoreStart([{ from: T - 3600, to: T + 1 }], 1 / 24);
    expect(from % 600).toBe(0);
    expect(from).toBe(Math.floor((T + 1 - 900) / 600) * 600 - 600);
  });
  it("a gap ending just after a window boundary: the 10 minutes after it, not the boundary in the gap", () => {
    // The demo at 01:58:26 with 1 h kept: before the gap is past the retention, and the window
    // that starts at 01:20:00 misses its first 2 s (restore refused it as a hole).
    const at = (hms: string) => Date.parse(`2026-12-08T${hms}Z`) / 1000;
    const ranges = [
      { from: at("00:58:26"), to: at("01:08:09") },
      { from: at("01:20:02"), to: at("01:58:26") },
    ];
    expect(demoRestoreStart(ranges, 1 / 24)).toBe(at("01:30:00"));
  });
  it("steps back over a gap of the archive to a range that holds the whole 10 minutes", () => {
    // A gap 02:43:55-02:49:09: the last range is too short, the 10 minutes come before the gap.
    const ranges = [
      { from: T - 3600, to: Date.UTC(2026, 11, 2, 2, 43, 55) / 1000 },
      { from: Date.UTC(2026, 11, 2, 2, 49, 9) / 1000, to: T + 1 },
    ];
    const from = demoRestoreStart(ranges, 1 / 24);
    expect(from).toBe(Date.UTC(2026, 11, 2, 2, 30, 0) / 1000);
    expect(from + 600).toBeLessThanOrEqual(ranges[0]!.to);
    expect(from).toBeGreaterThanOrEqual(ranges[0]!.from);
  });
});
