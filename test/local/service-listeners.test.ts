/**
 * The service's wait between planner runs (local/service.ts) leaves nothing behind (issue 20 §6):
 * 230 runs left 206 abort listeners on its stop signal. Twenty planner runs against the simulator
 * and the embedded emulator; the service's own AbortController is seen by making the controllers
 * made during the run recordable (a subclass, nothing else changed), and its signal's listeners
 * are counted with node:events getEventListeners.
 */
import { getEventListeners } from "node:events";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "../../dev/kit/harness.ts";
import { runService } from "../../local/service.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe("service: planner runs", () => {
  it("adds no abort listener per planner run that outlives the run (at most 2 on the stop signal after 20 runs)", async () => {
    h = await startHarness({ sim: { streams: [{ name: "cam1", bitrateBps: 40_000 }] } });
    const rt = await h.runtime();
    const made: AbortController[] = [];
    const Original = globalThis.AbortController;
    globalThis.AbortController = class extends Original {
      constructor() {
        super();
        made.push(this);
      }
    };
    try {
      const stop = new Original();
      let runs = 0;
      let most = 0;
      const out = new PassThrough();
      out.resume();
      const code = await runService(rt, {
        everyMs: 1,
        graceSeconds: 1,
        out,
        signal: stop.signal,
        onPlan: () => {
          runs++;
          for (const c of made) most = Math.max(most, getEventListeners(c.signal, "abort").length);
          if (runs === 20) stop.abort();
        },
      });
      expect(code).toBe(0);
      expect(runs).toBe(20);
      expect(made.length).toBeGreaterThan(0);
      expect(most).toBeLessThanOrEqual(2);
    } finally {
      globalThis.AbortController = Original;
    }
  }, 60_000);
});
