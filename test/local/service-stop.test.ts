/**
 * The service's stop (local/service.ts) when it comes during a planner run: the loop ends once the
 * run is over, not after the wait for the next one (a whole schedule period: an abort listener
 * added to a signal already aborted is never called). With a period of 10 minutes, a stop that
 * waited for it would time this test out.
 */
import { PassThrough } from "node:stream";
import { afterEach, expect, it } from "vitest";
import { type Harness, startHarness } from "../../dev/kit/harness.ts";
import { runService } from "../../local/service.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

it("a stop during a planner run ends the service after that run, not after the next period", async () => {
  h = await startHarness({ sim: { streams: [{ name: "cam1", bitrateBps: 40_000 }] } });
  const rt = await h.runtime();
  const stop = new AbortController();
  let runs = 0;
  const out = new PassThrough();
  let text = "";
  out.on("data", (d: Buffer) => {
    text += d.toString();
  });
  const code = await runService(rt, {
    everyMs: 600_000,
    graceSeconds: 1,
    out,
    signal: stop.signal,
    onPlan: () => {
      runs++;
      // Still inside the loop's planner run: the stop comes before the wait for the next one.
      stop.abort();
    },
  });
  expect(code).toBe(0);
  expect(runs).toBe(1);
  expect(text).toMatch(/stop requested: stopping; taking no new window/);
  expect(text).toMatch(/Stopped in [\d.]+ s: /);
}, 20_000);
