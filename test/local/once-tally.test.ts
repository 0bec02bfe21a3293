/**
 * issue 26 item 3: `run --once` over a fleet kept every copier event (one per window, with its
 * message) until the end of the run, and the service fed the same list for as long as it ran. The
 * tally counts events and keeps only the dead-lettered ones, which the summary lists.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import type { CopierEvent } from "../../functions/copier/copy-messages.ts";
import { OnceTally, runOnce } from "../../local/once.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const message = {
  v: 1 as const,
  source: "s",
  stream: "cam",
  from: 0,
  duration: 600,
  format: "mp4" as const,
  leaseUntil: 0,
};

describe("OnceTally", () => {
  it("counts events without keeping them, except the dead-lettered ones", () => {
    const tally = new OnceTally();
    for (let i = 0; i < 10_000; i++) tally.add({ type: "copied", message, bytes: 3, seconds: 0.1 });
    tally.add({ type: "already-stored", message, bytes: 5, seconds: 0 });
    const dead: CopierEvent = { type: "dead-lettered", message, source: "s", body: "{}", reason: "bad" };
    tally.add(dead);
    expect(tally.events).toEqual([]);
    expect(tally.counts.copied).toBe(10_000);
    expect(tally.stored).toBe(10_001);
    expect(tally.bytes).toBe(30_000);
    expect(tally.deadLettered).toEqual([dead]);
    const keeping = new OnceTally({ keepEvents: true });
    keeping.add(dead);
    expect(keeping.events).toEqual([dead]);
  });
});

describe("run --once with a tally that keeps no events", () => {
  it("sums up each run from the counts: windows and bytes of that run only", async () => {
    const now = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
    h = await startHarness({
      sim: {
        streams: [{ name: "cam1", bitrateBps: 80_000, ranges: [{ from: now - 2 * HOUR, to: now + 1 }] }],
      },
      source: { retentionDays: 1 / 12 },
    });
    const tally = new OnceTally();
    const rt = await h.runtime({
      onEvent: (e) => {
        h!.tally.add(e);
        tally.add(e);
      },
    });
    const first = await runOnce(rt, tally);
    const copied = h.tally.events.filter((e) => e.type === "copied");
    expect(first.copied).toBeGreaterThan(0);
    expect(first.copied).toBe(copied.length);
    expect(first.bytes).toBe(copied.reduce((n, e) => n + (e.type === "copied" ? e.bytes : 0), 0));
    expect(first.ok).toBe(true);
    expect(tally.events).toEqual([]);
    // A second run over the same tally finds nothing new: its summary does not count the first's.
    const second = await runOnce(rt, tally);
    expect(second.copied).toBe(0);
    expect(second.bytes).toBe(0);
    expect(second.ok).toBe(true);
  });
});
