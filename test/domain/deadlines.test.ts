import { describe, expect, it } from "vitest";
import {
  byDeadline,
  type Candidate,
  deletionDeadline,
  latestStart,
  marginSeconds,
  marginWarningAt,
  scheduleEarliestDeadline,
  sourceDepth,
} from "../../functions/domain/deadlines.ts";

const NOW = 1_800_000_000;
const DAY = 86_400;

describe("the depth deadlines are computed from", () => {
  it("is the API's expiration when the source reports it, the retention otherwise", () => {
    const base = { oldest: NOW - DAY, previousOldest: undefined, retentionSeconds: 7 * DAY, now: NOW };
    expect(sourceDepth({ ...base, expirationSeconds: 2 * DAY })).toEqual({
      seconds: 2 * DAY,
      basis: "expiration",
    });
    expect(sourceDepth({ ...base, expirationSeconds: undefined })).toEqual({
      seconds: 7 * DAY,
      basis: "retention",
    });
  });

  it("is the moving oldest second when it moves and is shorter (a disk limit deletes sooner)", () => {
    const d = sourceDepth({
      expirationSeconds: 7 * DAY,
      oldest: NOW - 2 * DAY,
      previousOldest: NOW - 2 * DAY - 600,
      retentionSeconds: 7 * DAY,
      now: NOW,
    });
    expect(d).toEqual({ seconds: 2 * DAY, basis: "moving start" });
  });

  it("does not take a young archive's oldest second, which stands still, for a short depth", () => {
    const d = sourceDepth({
      expirationSeconds: 7 * DAY,
      oldest: NOW - 3600,
      previousOldest: NOW - 3600,
      retentionSeconds: 7 * DAY,
      now: NOW,
    });
    expect(d.basis).toBe("expiration");
  });

  it("keeps the expiration when the moving start is longer (the cleaner lags behind)", () => {
    const d = sourceDepth({
      expirationSeconds: DAY,
      oldest: NOW - DAY - 900,
      previousOldest: NOW - DAY - 1800,
      retentionSeconds: 7 * DAY,
      now: NOW,
    });
    expect(d).toEqual({ seconds: DAY, basis: "expiration" });
  });
});

describe("deadlines and margin", () => {
  const depth = { seconds: DAY, basis: "expiration" as const };
  it("a second goes depth seconds after it was recorded, an overdue one now", () => {
    expect(deletionDeadline(NOW - 3600, depth, NOW)).toBe(NOW - 3600 + DAY);
    expect(deletionDeadline(NOW - DAY - 60, depth, NOW)).toBe(NOW);
  });
  it("the margin is the time left for the oldest second lacking; none when nothing lacks", () => {
    expect(marginSeconds([{ from: NOW - 20 * 3600, to: NOW - 19 * 3600 }], depth, NOW)).toBe(4 * 3600);
    expect(marginSeconds([], depth, NOW)).toBeUndefined();
  });
  it("a copy slower than real time must also read the window's last second in time", () => {
    expect(latestStart({ from: 1000, duration: 600 }, depth, 60)).toBe(1000 + DAY);
    expect(latestStart({ from: 1000, duration: 600 }, depth, 900)).toBe(1000 + 600 + DAY - 900);
  });
});

function candidates(list: { from: number; latest: number; copy: number; stream?: string }[]) {
  return list.map(
    (c): Candidate<string> => ({
      item: c.stream ?? "s",
      window: { from: c.from, duration: 600 },
      latestStart: c.latest,
      copySeconds: c.copy,
    }),
  );
}

describe("earliest deadline first", () => {
  it("skips a window that cannot start in time, so the one after it is saved", () => {
    // One copier, each copy 100 s. Window A must start by now+50 (it can), B by now+60 (it
    // cannot: A runs till now+100), C by now+150 (it can, after A, if B is not started).
    const s = scheduleEarliestDeadline({
      candidates: candidates([
        { from: 1, latest: NOW + 50, copy: 100 },
        { from: 2, latest: NOW + 60, copy: 100 },
        { from: 3, latest: NOW + 150, copy: 100 },
      ]),
      slots: 1,
      now: NOW,
      startBy: NOW + 1000,
    });
    expect(s.chosen.map((c) => c.window.from)).toEqual([1, 3]);
    expect(s.late.map((c) => c.window.from)).toEqual([2]);
  });

  it("chooses only what starts before startBy, and still predicts the losses after it", () => {
    const s = scheduleEarliestDeadline({
      candidates: candidates([
        { from: 1, latest: NOW + 500, copy: 100 },
        { from: 2, latest: NOW + 500, copy: 100 },
        { from: 3, latest: NOW + 150, copy: 100 },
      ]),
      slots: 2,
      now: NOW,
      startBy: NOW + 50,
    });
    expect(s.chosen.map((c) => c.window.from)).toEqual([1, 2]);
    expect(s.late.map((c) => c.window.from)).toEqual([]);
  });

  it("merges the streams' windows by deadline", () => {
    const a = candidates([
      { from: 10, latest: 10, copy: 1, stream: "a" },
      { from: 30, latest: 30, copy: 1, stream: "a" },
    ]);
    const b = candidates([
      { from: 20, latest: 20, copy: 1, stream: "b" },
      { from: 25, latest: 25, copy: 1, stream: "b" },
      { from: 40, latest: 40, copy: 1, stream: "b" },
    ]);
    expect([...byDeadline([a, b, []])].map((c) => `${c.item}${c.window.from}`)).toEqual([
      "a10",
      "b20",
      "b25",
      "a30",
      "b40",
    ]);
  });
});

describe("marginWarningAt", () => {
  it("is the configured threshold, but never more than half the source's depth", () => {
    expect(marginWarningAt(21_600, 7 * 86_400)).toBe(21_600);
    // A 3-hour archive: a healthy backup's margin is about 3 h, which a 6 h threshold would call low.
    expect(marginWarningAt(21_600, 3 * 3600)).toBe(5400);
    expect(marginWarningAt(21_600, undefined)).toBe(21_600);
  });
});

describe("the depth when the source says little", () => {
  it("takes an expiration of 0 (the source keeps no fixed depth) as not said: the retention", () => {
    expect(
      sourceDepth({
        expirationSeconds: 0,
        oldest: undefined,
        previousOldest: undefined,
        retentionSeconds: DAY,
        now: NOW,
      }),
    ).toEqual({ seconds: DAY, basis: "retention" });
  });

  it("keeps the stated depth when the moving start is exactly as long", () => {
    const d = sourceDepth({
      expirationSeconds: DAY,
      oldest: NOW - DAY,
      previousOldest: NOW - DAY - 600,
      retentionSeconds: 7 * DAY,
      now: NOW,
    });
    expect(d).toEqual({ seconds: DAY, basis: "expiration" });
  });
});

describe("earliest deadline first, at its edges", () => {
  it("starts a window whose copy can begin exactly at its latest start, and chooses only copies starting before startBy", () => {
    const s = scheduleEarliestDeadline({
      candidates: candidates([
        { from: 1, latest: NOW, copy: 100 },
        { from: 2, latest: NOW + 100, copy: 100 },
      ]),
      slots: 1,
      now: NOW,
      startBy: NOW + 100,
    });
    // The first starts now, at its latest start; the second at NOW + 100, its latest start too,
    // but that is not before startBy: predicted, not chosen this run.
    expect(s.chosen.map((c) => c.window.from)).toEqual([1]);
    expect(s.late).toEqual([]);
    expect(s.complete).toBe(true);
  });

  it("waits for copies already leased: a slot busy past a window's latest start cannot save it", () => {
    const s = scheduleEarliestDeadline({
      candidates: candidates([
        { from: 1, latest: NOW + 100, copy: 50 },
        { from: 2, latest: NOW + 400, copy: 50 },
      ]),
      slots: 1,
      busyUntil: [NOW + 200],
      now: NOW,
      startBy: NOW + 1000,
    });
    expect(s.late.map((c) => c.window.from)).toEqual([1]);
    expect(s.chosen.map((c) => c.window.from)).toEqual([2]);
  });

  it("counts a slot free since the past as free now, not earlier", () => {
    const s = scheduleEarliestDeadline({
      candidates: candidates([{ from: 1, latest: NOW + 10, copy: 50 }]),
      slots: 1,
      busyUntil: [NOW - 500],
      now: NOW,
      startBy: NOW,
    });
    // Starting now is not before startBy = now: not chosen (a slot counted free at NOW - 500 would be).
    expect(s.chosen).toEqual([]);
    expect(s.late).toEqual([]);
  });

  it("stops after maxCandidates and says the prediction is incomplete", () => {
    const list = candidates([
      { from: 1, latest: NOW + 500, copy: 10 },
      { from: 2, latest: NOW + 500, copy: 10 },
      { from: 3, latest: NOW + 500, copy: 10 },
    ]);
    const cut = scheduleEarliestDeadline({
      candidates: list,
      slots: 1,
      now: NOW,
      startBy: NOW + 1000,
      maxCandidates: 2,
    });
    expect(cut.chosen.map((c) => c.window.from)).toEqual([1, 2]);
    expect(cut.complete).toBe(false);
    const whole = scheduleEarliestDeadline({
      candidates: list,
      slots: 1,
      now: NOW,
      startBy: NOW + 1000,
      maxCandidates: 3,
    });
    expect(whole.chosen.map((c) => c.window.from)).toEqual([1, 2, 3]);
    expect(whole.complete).toBe(true);
  });
});

describe("merging the streams' windows by deadline", () => {
  it("puts the older window first when two deadlines are equal", () => {
    const a = candidates([{ from: 50, latest: 100, copy: 1, stream: "a" }]);
    const b = candidates([{ from: 40, latest: 100, copy: 1, stream: "b" }]);
    expect([...byDeadline([a, b])].map((c) => c.item)).toEqual(["b", "a"]);
    expect([...byDeadline([b, a])].map((c) => c.item)).toEqual(["b", "a"]);
  });

  it("yields every window of many streams in deadline order, whatever the number of streams", () => {
    // A deterministic spread of deadlines over 1 to 9 streams, each stream in its own order.
    for (let streams = 1; streams <= 9; streams++) {
      let seed = streams * 7919;
      const next = () => {
        seed = (seed * 48_271) % 2_147_483_647;
        return seed;
      };
      const sequences = Array.from({ length: streams }, (_, s) => {
        let latest = 0;
        return candidates(
          Array.from({ length: 1 + (next() % 6) }, (_, i) => {
            latest += next() % 50;
            return { from: s * 1000 + i, latest, copy: 1, stream: `s${s}` };
          }),
        );
      });
      const merged = [...byDeadline(sequences)];
      const expected = sequences
        .flat()
        .sort((x, y) => x.latestStart - y.latestStart || x.window.from - y.window.from);
      expect(merged.map((c) => c.window.from)).toEqual(expected.map((c) => c.window.from));
    }
  });
});
