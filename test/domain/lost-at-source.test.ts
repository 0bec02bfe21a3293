import { describe, expect, it } from "vitest";
import { noteSourceArchive } from "../../functions/domain/lost-at-source.ts";
import { emptyManifest } from "../../functions/domain/manifest.ts";

const NOW = 1_800_000_000;

describe("lost at the source before backup", () => {
  it("counts what was owed and is now older than the source's oldest second, gaps apart, for good", () => {
    const m0 = { ...emptyManifest("src", "cam"), covered: [{ from: NOW - 1000, to: NOW - 800 }] };
    // Owed: two recorded pieces around a gap the source never recorded (not owed, never lost).
    const first = noteSourceArchive(m0, {
      oldest: NOW - 5000,
      lacking: [
        { from: NOW - 5000, to: NOW - 4000 },
        { from: NOW - 3000, to: NOW - 2000 },
      ],
      liveFrom: NOW - 100,
      retentionStart: NOW - 9000,
    });
    expect(first.lost).toEqual([]);
    expect(first.manifest.owed).toHaveLength(2);
    // Later: the source deleted up to NOW - 2500; meanwhile [-5000, -4500) was copied.
    const m1 = {
      ...first.manifest,
      covered: [...first.manifest.covered, { from: NOW - 5000, to: NOW - 4500 }].sort(
        (a, b) => a.from - b.from,
      ),
    };
    const second = noteSourceArchive(m1, {
      oldest: NOW - 2500,
      lacking: [{ from: NOW - 2500, to: NOW - 2000 }],
      liveFrom: NOW - 100,
      retentionStart: NOW - 9000,
    });
    expect(second.lost).toEqual([
      { from: NOW - 4500, to: NOW - 4000 },
      { from: NOW - 3000, to: NOW - 2500 },
    ]);
    expect(second.manifest.lostAtSource?.seconds).toBe(1000);
    // Counted once: the next run finds nothing new, and the count stays when the ranges leave the retention.
    const third = noteSourceArchive(second.manifest, {
      oldest: NOW - 2500,
      lacking: [{ from: NOW - 2500, to: NOW - 2000 }],
      liveFrom: NOW - 100,
      retentionStart: NOW - 2000,
    });
    expect(third.lost).toEqual([]);
    expect(third.manifest.lostAtSource).toEqual({ seconds: 1000, ranges: [] });
  });

  it("changes nothing (the same object) for a stream that owes nothing and whose oldest second was noted", () => {
    const m = { ...emptyManifest("src", "cam"), sourceOldest: NOW - 5000 };
    const noted = noteSourceArchive(m, {
      oldest: NOW - 4990,
      lacking: [],
      liveFrom: NOW - 100,
      retentionStart: NOW - 9000,
    });
    expect(noted.manifest).toBe(m);
  });

  it("keeps the lost ranges still in the retention, adding the new ones to those counted before", () => {
    const m = {
      ...emptyManifest("src", "cam"),
      owed: [{ from: NOW - 3000, to: NOW - 2000 }],
      lostAtSource: { seconds: 500, ranges: [{ from: NOW - 6000, to: NOW - 5500 }] },
      sourceOldest: NOW - 2500,
    };
    const noted = noteSourceArchive(m, {
      oldest: NOW - 2500,
      lacking: [{ from: NOW - 2500, to: NOW - 2000 }],
      liveFrom: NOW - 100,
      retentionStart: NOW - 9000,
    });
    expect(noted.lost).toEqual([{ from: NOW - 3000, to: NOW - 2500 }]);
    expect(noted.manifest.lostAtSource).toEqual({
      seconds: 1000,
      ranges: [
        { from: NOW - 6000, to: NOW - 5500 },
        { from: NOW - 3000, to: NOW - 2500 },
      ],
    });
    expect(noted.manifest.owed).toEqual([{ from: NOW - 2500, to: NOW - 2000 }]);
  });

  it("counts nothing lost while the source's oldest second is not known", () => {
    const m = { ...emptyManifest("src", "cam"), owed: [{ from: NOW - 3000, to: NOW - 2000 }] };
    const noted = noteSourceArchive(m, {
      oldest: undefined,
      lacking: [{ from: NOW - 3000, to: NOW - 2000 }],
      liveFrom: NOW - 100,
      retentionStart: NOW - 9000,
    });
    expect(noted.lost).toEqual([]);
    expect(noted.manifest.lostAtSource).toBeUndefined();
    expect(noted.manifest.sourceOldest).toBeUndefined();
    expect(noted.manifest).toBe(m);
  });

  it("notes the source's oldest second the first time, then again only once it moved an hour or more", () => {
    const base = emptyManifest("src", "cam");
    const note = (oldest: number) => ({
      oldest,
      lacking: [],
      liveFrom: NOW - 100,
      retentionStart: NOW - 90_000,
    });
    const first = noteSourceArchive(base, note(NOW - 50_000)).manifest;
    expect(first.sourceOldest).toBe(NOW - 50_000);
    // Less than an hour later: no write (the same object), the old note kept.
    expect(noteSourceArchive(first, note(NOW - 50_000 + 3599)).manifest).toBe(first);
    // An hour exactly: noted again.
    expect(noteSourceArchive(first, note(NOW - 50_000 + 3600)).manifest.sourceOldest).toBe(
      NOW - 50_000 + 3600,
    );
  });

  it("writes the owed seconds when only they changed, and drops the field once nothing is owed", () => {
    const m = { ...emptyManifest("src", "cam"), sourceOldest: NOW - 5000 };
    const owing = noteSourceArchive(m, {
      oldest: NOW - 5000,
      lacking: [{ from: NOW - 4000, to: NOW - 3000 }],
      liveFrom: NOW - 100,
      retentionStart: NOW - 9000,
    }).manifest;
    expect(owing).not.toBe(m);
    expect(owing.owed).toEqual([{ from: NOW - 4000, to: NOW - 3000 }]);
    expect(owing.sourceOldest).toBe(NOW - 5000);
    // The same owed range, moved by one second: written again.
    const moved = noteSourceArchive(owing, {
      oldest: NOW - 5000,
      lacking: [{ from: NOW - 3999, to: NOW - 3000 }],
      liveFrom: NOW - 100,
      retentionStart: NOW - 9000,
    }).manifest;
    expect(moved.owed).toEqual([{ from: NOW - 3999, to: NOW - 3000 }]);
    const moved2 = noteSourceArchive(moved, {
      oldest: NOW - 5000,
      lacking: [{ from: NOW - 3999, to: NOW - 3001 }],
      liveFrom: NOW - 100,
      retentionStart: NOW - 9000,
    }).manifest;
    expect(moved2.owed).toEqual([{ from: NOW - 3999, to: NOW - 3001 }]);
    // Copied since: nothing owed, nothing lost, and neither field left in the manifest.
    const paid = noteSourceArchive(moved2, {
      oldest: NOW - 5000,
      lacking: [],
      liveFrom: NOW - 100,
      retentionStart: NOW - 9000,
    });
    expect(paid.manifest).not.toHaveProperty("owed");
    expect(paid.manifest).not.toHaveProperty("lostAtSource");
    expect(paid.lost).toEqual([]);
  });

  it("writes the manifest when lost ranges leave the retention, though nothing new was lost", () => {
    const m = {
      ...emptyManifest("src", "cam"),
      lostAtSource: { seconds: 500, ranges: [{ from: NOW - 6000, to: NOW - 5500 }] },
      sourceOldest: NOW - 5000,
    };
    const noted = noteSourceArchive(m, {
      oldest: NOW - 5000,
      lacking: [],
      liveFrom: NOW - 100,
      retentionStart: NOW - 5800,
    });
    expect(noted.manifest.lostAtSource).toEqual({
      seconds: 500,
      ranges: [{ from: NOW - 5800, to: NOW - 5500 }],
    });
  });
});
