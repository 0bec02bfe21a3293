/**
 * The "backlog race" bench figure (dev/bench/backlog-race.ts) on one scenario: a source with 6 hours
 * of retention whose backup was down 5 hours, its cap below what the backlog needs. The planner's
 * order loses no more than an offline earliest-deadline schedule of the same windows (within 2%),
 * and fewer seconds than the previous order (live edge first, then back-fill).
 */
import { expect, it } from "vitest";
import { backlogRace, RACE_SCENARIOS } from "../../dev/bench/backlog-race.ts";

it("the planner's order loses within 2% of the offline optimum, and fewer seconds than the old order", () => {
  const r = backlogRace({
    retentionHours: 6,
    downHours: 5,
    streams: 4,
    bitrateMbps: 2,
    capMbps: 7,
    copies: 3,
  });
  expect(r.lostOptimum).toBeGreaterThan(0);
  expect(r.gapToOptimumPercent).toBeLessThanOrEqual(2);
  expect(r.lostNew).toBeLessThan(r.lostOld);
});

it("every scenario of the figure meets the goal as tested: within 2% of the optimum, no more lost than the old order", () => {
  for (const scenario of RACE_SCENARIOS) {
    const r = backlogRace(scenario);
    expect(r.gapToOptimumPercent, `cap ${scenario.capMbps} Mbit/s`).toBeLessThanOrEqual(2);
    expect(r.lostNew, `cap ${scenario.capMbps} Mbit/s`).toBeLessThanOrEqual(r.lostOld);
    expect(r.meetsGoal).toBe(true);
    // What the new order gave up is paid for: it saved more the old order lost than the reverse.
    expect(r.savedNewLostByOld).toBeGreaterThanOrEqual(r.lostNewSavedByOld);
  }
});
