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
});
