/**
 * How completion records, retention and repairs change a manifest: what the next planner run and
 * `status` read from it (coverage, head, leases, the bitrate estimate, the source's Range answer),
 * and when the manifest is left as the same object so that nothing is written.
 */
import { describe, expect, it } from "vitest";
import {
  activeLeases,
  applyRecords,
  type CopyRecord,
  emptyManifest,
  keepStored,
  type Manifest,
  pruneBefore,
  storedBitrateBps,
  uncover,
} from "../../functions/domain/manifest.ts";

const T0 = 1_800_000_000;

function record(from: number, duration: number, o: Partial<CopyRecord> = {}): CopyRecord {
  return {
    source: "src1",
    stream: "cam1",
    from,
    duration,
    format: "mp4",
    key: `k-${from}-${duration}`,
    size: duration * 1000,
    sha256: "0".repeat(64),
    copiedAt: from + duration + 60,
    ...o,
  };
}

const manifest = (o: Partial<Manifest> = {}): Manifest => ({ ...emptyManifest("src1", "cam1"), ...o });

describe("a new stream's manifest", () => {
  it("claims nothing, leases nothing, and is marked as clipped at the retention", () => {
    expect(emptyManifest("src1", "cam1")).toEqual({
      version: 1,
      source: "src1",
      stream: "cam1",
      covered: [],
      leases: [],
      windows: 0,
      bytes: 0,
      coverageClipped: true,
      head: 0,
      updatedAt: 0,
    });
  });
});

describe("folding completion records in", () => {
  it("covers the window, counts it, moves the head to its end and ends its lease only", () => {
    const m = manifest({
      leases: [
        { from: T0, duration: 600, until: T0 + 9999 },
        { from: T0 + 600, duration: 600, until: T0 + 9999 },
      ],
    });
    const next = applyRecords(m, [record(T0, 600)], T0 + 700);
    expect(next).toMatchObject({
      covered: [{ from: T0, to: T0 + 600 }],
      leases: [{ from: T0 + 600, duration: 600, until: T0 + 9999 }],
      windows: 1,
      bytes: 600_000,
      head: T0 + 600,
      updatedAt: T0 + 700,
    });
    // An older window later: the head stays at the newest second stored.
    const older = applyRecords(next, [record(T0 - 1200, 600)], T0 + 800);
    expect(older.head).toBe(T0 + 600);
    expect(older.windows).toBe(2);
  });

  it("a replayed record (a crash between write and delete) changes nothing but ends its lease", () => {
    const once = applyRecords(manifest(), [record(T0, 600)], T0 + 700);
    const leased = { ...once, leases: [{ from: T0, duration: 600, until: T0 + 9999 }] };
    const again = applyRecords(leased, [record(T0, 600)], T0 + 800);
    expect(again).toEqual({ ...once, updatedAt: T0 + 800 });
    // Nothing to fold in: the same object, so nothing is written.
    expect(applyRecords(once, [], T0 + 900)).toBe(once);
  });

  it("a window that reaches before covered seconds is new: its earlier seconds become covered", () => {
    const m = applyRecords(manifest(), [record(T0 + 300, 300)], T0 + 700);
    const next = applyRecords(m, [record(T0, 600)], T0 + 800);
    expect(next.covered).toEqual([{ from: T0, to: T0 + 600 }]);
    expect(next.windows).toBe(2);
  });

  it("the newest paced copy says how the source answers; unpaced records leave it", () => {
    const paced = (at: number, reads: "slices" | "whole") =>
      record(T0 + at, 60, { copiedAt: T0 + at, reads });
    const whole = paced(100, "whole");
    const slices = paced(200, "slices");
    expect(applyRecords(manifest(), [whole, slices], T0 + 300).reads).toBe("slices");
    expect(applyRecords(manifest(), [slices, whole], T0 + 300).reads).toBe("slices");
    const unpaced = record(T0 + 300, 60, { copiedAt: T0 + 900 });
    expect(applyRecords(manifest(), [whole, unpaced], T0 + 1000).reads).toBe("whole");
    expect(applyRecords(manifest({ reads: "slices" }), [unpaced], T0 + 1000).reads).toBe("slices");
  });
});

describe("the bitrate estimate", () => {
  it("weighs the first windows alike until an hour of video is held", () => {
    let m = applyRecords(manifest(), [record(T0, 600, { size: 600 * 125_000 })], T0 + 700); // 1 Mbit/s
    m = applyRecords(m, [record(T0 + 600, 600, { size: 600 * 375_000 })], T0 + 1300); // 3 Mbit/s
    expect(storedBitrateBps(m)).toBe(2_000_000);
  });

  it("is unknown, not zero or infinite, when nothing measurable was stored", () => {
    const covered = [{ from: T0, to: T0 + 600 }];
    expect(storedBitrateBps(manifest())).toBeUndefined();
    expect(storedBitrateBps(manifest({ covered, bytes: 0 }))).toBeUndefined();
    expect(storedBitrateBps(manifest({ covered: [], bytes: 1000 }))).toBeUndefined();
    // An empty sample falls back to the totals.
    expect(storedBitrateBps(manifest({ covered, bytes: 300_000, sample: { bytes: 0, seconds: 600 } }))).toBe(
      4000,
    );
    expect(storedBitrateBps(manifest({ covered, bytes: 300_000, sample: { bytes: 9, seconds: 0 } }))).toBe(
      4000,
    );
  });
});

describe("leases", () => {
  it("a lease is active until the second it ends", () => {
    const m = { leases: [{ from: T0, duration: 600, until: T0 + 1200 }] };
    expect(activeLeases(m, T0 + 1199)).toEqual(m.leases);
    expect(activeLeases(m, T0 + 1200)).toEqual([]);
  });
});

describe("clipping at the retention and repairs", () => {
  it("drops every range older than the retention, not only when all are", () => {
    const m = manifest({
      covered: [
        { from: T0 - 200, to: T0 - 100 },
        { from: T0 + 100, to: T0 + 200 },
      ],
    });
    expect(pruneBefore(m, T0).covered).toEqual([{ from: T0 + 100, to: T0 + 200 }]);
  });

  it("leaves a clipped manifest with nothing older as the same object, so nothing is written", () => {
    const m = manifest({ covered: [{ from: T0, to: T0 + 600 }] });
    expect(pruneBefore(m, T0)).toBe(m);
    expect(pruneBefore(manifest(), T0)).toEqual(manifest());
    const legacy = { ...m, coverageClipped: undefined };
    expect(pruneBefore(legacy, T0)).toEqual(m);
  });

  it("keeps the manifest as it is when every checked second is stored", () => {
    const m = manifest({ covered: [{ from: T0, to: T0 + 600 }] });
    expect(keepStored(m, [{ from: T0, to: T0 + 600 }], [{ from: T0 - 60, to: T0 + 660 }])).toBe(m);
  });

  it("moves the head back to the end of the seconds just before a repaired newest window", () => {
    const m = manifest({ covered: [{ from: T0, to: T0 + 3600 }], head: T0 + 3600 });
    expect(uncover(m, T0 + 3000, T0 + 3600)).toMatchObject({
      covered: [{ from: T0, to: T0 + 3000 }],
      head: T0 + 3000,
    });
  });
});
