/**
 * The progress line of a run: its window total is known from the first line, and the bytes left
 * follow what was actually copied, never nothing left while windows remain (a demo estimated
 * 97.6 MiB against 188.7 MiB copied and showed "~0 B left, ETA -" from window 40 of 76).
 */
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import type { BackupConfig } from "../../functions/config/config.ts";
import type { CopyMessage } from "../../functions/copier/copy-window.ts";
import type { PlanReport } from "../../functions/planner/plan-backup.ts";
import { Progress } from "../../ops/progress.ts";

function sink(): { out: NodeJS.WriteStream; text: () => string } {
  let text = "";
  const w = new Writable({
    write(chunk, _enc, done) {
      text += String(chunk);
      done();
    },
  });
  return { out: w as unknown as NodeJS.WriteStream, text: () => text };
}

const config = { sources: [{ name: "demo", maxBandwidthMbps: 100 }] } as unknown as BackupConfig;
const windows: CopyMessage[] = Array.from({ length: 76 }, (_, i) => ({
  source: "demo",
  stream: "cam1",
  from: 1_000_000 + i * 600,
  duration: 600,
  format: "mp4",
})) as unknown as CopyMessage[];
const plan: PlanReport = {
  at: 0,
  sources: [
    {
      source: "demo",
      paused: false,
      planned: windows,
      deferred: 0,
      recordsCompacted: 0,
      // The planner's estimate: about half of what the windows really hold.
      plannedBytes: Math.round(97.6 * 1024 * 1024),
      errors: [],
    } as unknown as PlanReport["sources"][number],
  ],
};
const realBytesPerWindow = Math.round((188.7 * 1024 * 1024) / 76);

describe("progress of a run", () => {
  it("draws nothing before the first plan, then counts windows against the planned total", () => {
    const s = sink();
    const p = new Progress(config, s.out);
    // Copies can start before the planner's report arrives.
    p.bytes("demo", realBytesPerWindow);
    p.event({ type: "copied", message: windows[0]!, bytes: realBytesPerWindow, seconds: 1 });
    p.draw(true);
    expect(s.text()).toBe("");
    p.planned(plan);
    expect(p.lines()[0]).toMatch(/^demo: windows 1\/76 left 75,/);
  });

  it("the bytes left follow the bytes per media second copied; never ~0 B while windows remain", () => {
    const p = new Progress(config, sink().out);
    p.planned(plan);
    for (const [i, w] of windows.entries()) {
      const line = p.lines()[0]!;
      const left = 76 - i;
      expect(line).toContain(`left ${left},`);
      expect(line).not.toMatch(/~0 B left|~-/);
      if (i >= 1) {
        // After one window, the estimate is the real size of what is left (within 1%).
        const expected = (left * realBytesPerWindow) / 1024 / 1024;
        const shown = Number(/~([\d.]+) MiB left/.exec(line)?.[1]);
        expect(Math.abs(shown - expected) / expected).toBeLessThan(0.01);
      }
      // Half of the window read, then the copy ends.
      p.bytes("demo", realBytesPerWindow / 2);
      expect(p.lines()[0]).not.toMatch(/~0 B left/);
      p.bytes("demo", realBytesPerWindow / 2);
      p.event({ type: "copied", message: w, bytes: realBytesPerWindow, seconds: 1 });
    }
    expect(p.lines()[0]).toMatch(/windows 76\/76 left 0, .* ~0 B left/);
  });
});
