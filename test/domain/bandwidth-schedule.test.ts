import { describe, expect, it } from "vitest";
import { parseConfig } from "../../functions/config/config.ts";
import { bandwidthAt, isKnownTimeZone, minutesOfDay } from "../../functions/domain/bandwidth-schedule.ts";

const at = (iso: string) => Date.parse(iso) / 1000;
const day = [{ from: "08:00", to: "20:00", maxBandwidthMbps: 10 }];
const evening = [{ from: "22:00", to: "02:00", maxBandwidthMbps: 0 }];

describe("bandwidth schedule", () => {
  it("applies a period's cap inside it (from inclusive, to exclusive) and the default outside", () => {
    expect(bandwidthAt(day, 100, at("2026-11-20T07:59:00Z"))).toBe(100);
    expect(bandwidthAt(day, 100, at("2026-11-20T08:00:00Z"))).toBe(10);
    expect(bandwidthAt(day, 100, at("2026-11-20T19:59:59Z"))).toBe(10);
    expect(bandwidthAt(day, 100, at("2026-11-20T20:00:00Z"))).toBe(100);
  });
  it("handles a period across midnight", () => {
    expect(bandwidthAt(evening, 100, at("2026-11-20T21:59:00Z"))).toBe(100);
    expect(bandwidthAt(evening, 100, at("2026-11-20T22:00:00Z"))).toBe(0);
    expect(bandwidthAt(evening, 100, at("2026-11-20T23:30:00Z"))).toBe(0);
    expect(bandwidthAt(evening, 100, at("2026-11-21T01:59:00Z"))).toBe(0);
    expect(bandwidthAt(evening, 100, at("2026-11-21T02:00:00Z"))).toBe(100);
  });
  it("a period ending where it starts covers no minute, as the window sizing reads it (lowestCopyingMbps)", () => {
    const empty = [{ from: "08:00", to: "08:00", maxBandwidthMbps: 0 }];
    expect(bandwidthAt(empty, 100, at("2026-11-20T08:00:00Z"))).toBe(100);
    expect(bandwidthAt(empty, 100, at("2026-11-20T20:00:00Z"))).toBe(100);
  });
  it("reads the wall clock of the schedule's time zone", () => {
    // 07:30 UTC is 10:30 in Moscow (UTC+3): inside the 08:00-20:00 period there.
    expect(bandwidthAt(day, 100, at("2026-11-20T07:30:00Z"), "Europe/Moscow")).toBe(10);
    expect(bandwidthAt(day, 100, at("2026-11-20T07:30:00Z"), "UTC")).toBe(100);
  });
  it("rejects a malformed period or an unknown time zone, naming the field", () => {
    const bad = (source: Record<string, unknown>) => () =>
      parseConfig(
        JSON.stringify({ bucket: "my-bucket", sources: [{ name: "s", url: "http://x", ...source }] }),
        "c.json",
      );
    expect(bad({ bandwidthSchedule: [{ from: "8:00", to: "20:00", maxBandwidthMbps: 5 }] })).toThrow(
      /c\.json: sources\[0\]\.bandwidthSchedule\[0\]\.from: expected a time of day like "08:00"/,
    );
    expect(bad({ bandwidthSchedule: [{ from: "08:00", to: "20:00", maxBandwidthMbps: -1 }] })).toThrow(
      /maxBandwidthMbps: expected 0 \(no copying\) or more/,
    );
    expect(bad({ timeZone: "Mars/Olympus" })).toThrow(/sources\[0\]\.timeZone: expected an IANA time zone/);
  });
});

describe("times of day and time zones", () => {
  it("reads HH:MM as minutes of the day and refuses anything else, saying what it got", () => {
    expect(minutesOfDay("00:00")).toBe(0);
    expect(minutesOfDay("23:59")).toBe(23 * 60 + 59);
    expect(() => minutesOfDay("24:00")).toThrow('expected a time of day as HH:MM, got "24:00"');
  });

  it("knows IANA time zones and UTC, not made-up ones", () => {
    expect(isKnownTimeZone("UTC")).toBe(true);
    expect(isKnownTimeZone("Europe/Moscow")).toBe(true);
    expect(isKnownTimeZone("Mars/Olympus")).toBe(false);
  });
});
