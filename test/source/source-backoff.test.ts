/**
 * Back-off towards one source (functions/source/source-pressure.ts), as README "Back-off" promises:
 * a 429/503 pauses the source for its Retry-After, at most 60 s; refused, reset and stalled
 * connections and slow first bytes make the copier slow down too (fewer windows in parallel). The
 * gate's own arithmetic with a moved clock, then each fault from the simulator through a real copier.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "../../dev/kit/harness.ts";
import { type PressureChange, SourcePressure } from "../../functions/source/source-pressure.ts";
import type { SimFaults } from "../../simulator/simulator.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe("the back-off gate", () => {
  it("pauses for Retry-After up to 60 s, doubles its own pause without one, halves the parallel windows", async () => {
    let now = 1_000_000;
    const gate = new SourcePressure({ maxConcurrent: 4, nowMs: () => now });
    await gate.acquire();
    gate.release("overload", 7);
    expect(gate.pausedUntilMs - now).toBe(7000);
    expect(gate.limit).toBe(2);
    now += 7000;
    await gate.acquire();
    gate.release("overload", 3600); // an hour asked: the gate pauses 60 s; the message's delay does the rest
    expect(gate.pausedUntilMs - now).toBe(60_000);
    expect(gate.limit).toBe(1);
    now += 60_000;
    await gate.acquire();
    gate.release("overload"); // third in a row, no Retry-After: 1 s doubled twice
    expect(gate.pausedUntilMs - now).toBe(4000);
    expect(gate.limit).toBe(1);
  });

  it("takes one parallel window away for first bytes slower than 5 s, never below one", () => {
    const gate = new SourcePressure({ maxConcurrent: 3, nowMs: () => 0 });
    gate.responded(4999);
    expect(gate.limit).toBe(3);
    gate.responded(5000);
    expect(gate.limit).toBe(2);
    gate.responded(60_000);
    gate.responded(60_000);
    expect(gate.limit).toBe(1);
    expect(gate.pausedUntilMs).toBe(0); // slow is not refused: no pause
  });
});

/**
 * One source (2 copies at most) whose first download meets `faults`: the gate's first change and
 * how long it pauses, measured when it happens.
 */
async function firstBackoff(
  faults: SimFaults,
  timeouts: Record<string, number> = {},
): Promise<{ change: PressureChange; pauseMs: number }> {
  h = await startHarness({
    sim: { streams: [{ name: "cam1", bitrateBps: 800_000, ranges: [{ from: 0, to: 4e9 }] }] },
    source: {
      retentionDays: 0.05,
      timeouts: { connectSeconds: 1, headersSeconds: 30, bodyIdleSeconds: 1, ...timeouts },
    },
  });
  const changes: { change: PressureChange; pauseMs: number }[] = [];
  const rt = await h.runtime({
    onPressure: (_source, change) =>
      changes.push({ change, pauseMs: Math.max(0, change.pausedUntilMs - performance.now()) }),
  });
  h.sim.setFaults({ ...faults, bodyFaultNext: 1 });
  expect((await rt.plan()).sources[0]!.planned.length).toBeGreaterThan(1);
  await rt.startCopiers();
  await expect.poll(() => changes.length, { timeout: 20_000, interval: 20 }).toBeGreaterThan(0);
  await rt.stopCopiers(0);
  return changes[0]!;
}

describe("the copier backs off a source that", () => {
  it("answers 503 with Retry-After 120: pause of 60 s, the cap, and one window at a time", async () => {
    const { change, pauseMs } = await firstBackoff({
      target: "archive",
      failNext: 1,
      errorStatus: 503,
      retryAfterSeconds: 120,
    });
    expect(change.reason).toMatch(/^overload: pause 60000 ms/);
    expect(change.limit).toBe(1);
    expect(pauseMs).toBeGreaterThan(55_000);
    expect(pauseMs).toBeLessThanOrEqual(60_000);
  });

  for (const [what, faults] of [
    ["resets the connection", { resetAfterBytes: 10_000 }],
    ["stalls the body past the idle timeout", { stallAfterBytes: 10_000 }],
  ] as const) {
    it(`${what}: a pause and one window at a time`, async () => {
      const { change, pauseMs } = await firstBackoff(faults);
      expect(change.reason).toMatch(/^overload: pause \d+ ms, 1 parallel$/);
      expect(change.limit).toBe(1);
      expect(pauseMs).toBeGreaterThan(0);
    });
  }

  it("refuses connections: a pause and one window at a time", async () => {
    h = await startHarness({
      sim: { streams: [{ name: "cam1", bitrateBps: 800_000, ranges: [{ from: 0, to: 4e9 }] }] },
      source: { retentionDays: 0.05, timeouts: { connectSeconds: 1, headersSeconds: 5, bodyIdleSeconds: 5 } },
    });
    const changes: PressureChange[] = [];
    const rt = await h.runtime({ onPressure: (_source, change) => changes.push(change) });
    expect((await rt.plan()).sources[0]!.planned.length).toBeGreaterThan(1);
    await h.sim.pauseListening(); // the index was read; now the port refuses
    await rt.startCopiers();
    await expect.poll(() => changes.length, { timeout: 20_000, interval: 20 }).toBeGreaterThan(0);
    await rt.stopCopiers(0);
    expect(changes[0]!.reason).toMatch(/^overload: pause \d+ ms, 1 parallel$/);
    const refused = h.tally.events.find((e) => e.type === "retry");
    expect(refused && "reason" in refused ? refused.reason : "").toMatch(/refused|ECONNREFUSED/);
  });

  it("sends its first bytes after more than 5 s: one window fewer in parallel, no pause", async () => {
    const { change } = await firstBackoff({ latencyMs: 5500 });
    expect(change.reason).toMatch(/^slow first bytes \(\d+ ms\): 1 parallel$/);
    expect(change.limit).toBe(1);
    expect(change.pausedUntilMs).toBe(0);
  }, 60_000);
});
