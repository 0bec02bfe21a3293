import { describe, expect, it } from "vitest";
import {
  applyRecords,
  type CopyRecord,
  emptyManifest,
  keepStored,
  pruneBefore,
  storedBitrateBps,
  unverifiedClaims,
} from "../../functions/domain/manifest.ts";
import { expiryDays } from "../../infra/backup-bucket.ts";

const DAY = 86400;
const T0 = 20_000 * DAY;

function record(from: number, duration: number, bitrateBps: number): CopyRecord {
  return {
    source: "src1",
    stream: "cam1",
    from,
    duration,
    format: "mp4",
    key: `k-${from}-${duration}`,
    size: Math.round((duration * bitrateBps) / 8),
    sha256: "0".repeat(64),
    copiedAt: from + duration + 120,
  };
}

/**
 * A planner running every `step` seconds for `days`, copying what was recorded since, pruning at
 * `retentionDays`. With `gap`, the source misses that many seconds at the start of every step.
 */
function runFor(days: number, retentionDays: number, bitrateBps: number, step = 3600, gap = 0) {
  let m = emptyManifest("src1", "cam1");
  for (let now = T0 + step; now <= T0 + days * DAY; now += step) {
    m = applyRecords(m, [record(now - step + gap, step - gap, bitrateBps)], now);
    m = pruneBefore(m, now - retentionDays * DAY);
  }
  return m;
}

describe("manifest coverage and retention", () => {
  it("never claims a second older than the retention, even inside one long continuous range", () => {
    const m = runFor(20, 7, 4_000_000);
    const now = T0 + 20 * DAY;
    expect(m.covered).toEqual([{ from: now - 7 * DAY, to: now }]);
    // Every claimed second is younger than the bucket's lifecycle expiry of a 7-day retention
    // (objects are written after their last second, so none of them can be expired yet).
    expect(m.covered[0]!.from).toBeGreaterThan(now - expiryDays(7) * DAY);
  });

  it("after retention is raised from 7 to 30 days, the span older than the old retention is missing, not covered", () => {
    let m = runFor(20, 7, 4_000_000);
    const now = T0 + 20 * DAY;
    m = pruneBefore(m, now - 30 * DAY);
    const covered = m.covered.reduce((n, r) => n + r.to - r.from, 0);
    expect(covered).toBe(7 * DAY);
  });
});

describe("manifests from the older version (no coverageClipped)", () => {
  it("checks only claims inside the retention and older than the shortest lifecycle expiry (2 days)", () => {
    const now = T0 + 40 * DAY;
    const legacy = {
      ...emptyManifest("src1", "cam1"),
      coverageClipped: undefined,
      covered: [{ from: T0, to: now }],
    };
    expect(unverifiedClaims(legacy, now - 30 * DAY, now)).toEqual([
      { from: now - 30 * DAY, to: now - 2 * DAY },
    ]);
    expect(unverifiedClaims(legacy, now - DAY, now)).toEqual([]);
    expect(unverifiedClaims(runFor(20, 7, 4_000_000), T0, T0 + 20 * DAY)).toEqual([]);
    // Keeps what the bucket holds, drops the rest of the checked span, leaves the younger claims.
    const checked = unverifiedClaims(legacy, now - 30 * DAY, now);
    const kept = keepStored(legacy, checked, [{ from: now - 10 * DAY, to: now - DAY }]);
    expect(kept.covered).toEqual([
      { from: T0, to: now - 30 * DAY },
      { from: now - 10 * DAY, to: now },
    ]);
    expect(pruneBefore(kept, now - 30 * DAY)).toMatchObject({
      covered: [{ from: now - 10 * DAY, to: now }],
      coverageClipped: true,
    });
  });
});

describe("stored bitrate estimate", () => {
  it("stays within 10% of the true bitrate after 60 days of pruning at a 7-day retention", () => {
    // A one-second gap every hour: the covered ranges are many, and old ones are dropped.
    const m = runFor(60, 7, 4_000_000, 3600, 1);
    const estimate = storedBitrateBps(m)!;
    expect(Math.abs(estimate - 4_000_000) / 4_000_000).toBeLessThan(0.1);
  });

  it("follows a bitrate change within two hours of copies", () => {
    let m = runFor(10, 7, 4_000_000);
    for (let now = T0 + 10 * DAY + 600; now <= T0 + 10 * DAY + 7200; now += 600) {
      m = applyRecords(m, [record(now - 600, 600, 1_000_000)], now);
    }
    expect(storedBitrateBps(m)!).toBeLessThan(2_000_000);
  });

  it("reads a manifest written before the sample (no new fields) as before", () => {
    const legacy = {
      version: 1 as const,
      source: "src1",
      stream: "cam1",
      covered: [{ from: T0, to: T0 + 600 }],
      leases: [],
      windows: 1,
      bytes: 300_000,
      head: T0 + 600,
      updatedAt: T0 + 700,
    };
    expect(storedBitrateBps(legacy)).toBe(4000);
    const next = applyRecords(legacy, [record(T0 + 600, 600, 8000)], T0 + 1400);
    expect(storedBitrateBps(next)).toBe(8000);
    expect(next.bytes).toBe(900_000);
  });
});
