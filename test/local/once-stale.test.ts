/**
 * issue 15 item 5: `run --once` whose copier timeout outlasts the leases (every window left stale)
 * used to report success with nothing copied. It fails and says why.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runCommand } from "../../cli/commands/run.ts";
import { statusCommand } from "../../cli/commands/status.ts";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { operatorTarget, TextSink } from "../../dev/kit/ops-target.ts";
import { ConfigError } from "../../functions/config/config.ts";
import { formatSummary, runOnce } from "../../local/once.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe("run --once with windows left stale", () => {
  it("fails (not ok) and says that windows were not copied because their lease ended", async () => {
    const now = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
    h = await startHarness({
      sim: { streams: [{ name: "cam1", bitrateBps: 80_000, ranges: [{ from: now - HOUR, to: now + 1 }] }] },
      source: { retentionDays: 1 / 24 },
    });
    // The config's lease (3600 s) is shorter than this copier's timeout: every message is stale.
    const rt = await h.runtime({ copyTimeoutSeconds: h.config.leaseSeconds + 100 });
    const summary = await runOnce(rt, h.tally);
    expect(summary.planned).toBeGreaterThan(0);
    expect(summary.copied).toBe(0);
    expect(summary.stale).toBe(summary.planned);
    expect(summary.ok).toBe(false);
    // Logged as a warning (it was info, so a default run said nothing).
    expect(h.logs.some((l) => /^\S+ WARN {2}stale window left to a re-plan/.test(l))).toBe(true);
    expect(formatSummary(summary, h.clock.now())).toContain(
      `${summary.stale} window(s) were not copied: their lease ended before a copy could finish`,
    );
  });
});

describe("run and status check --copy-timeout against leaseSeconds", () => {
  it("refuse a --copy-timeout the config's leases cannot carry, naming the file, the field and the flag", async () => {
    h = await startHarness({ source: { retentionDays: 1 / 24 } });
    const file = operatorTarget(h);
    const expected = `${file}: leaseSeconds: 3600 s is shorter than --copy-timeout 3500 s plus 300 s to start a copy`;
    const status = statusCommand({
      config: file,
      copyTimeoutSeconds: 3500,
      now: h.clock.now(),
      out: new TextSink(),
    });
    await expect(status).rejects.toThrow(ConfigError);
    await expect(status).rejects.toThrow(expected);
    const stateDir = join(h.dir, "run-state");
    const run = runCommand({
      configFile: file,
      once: true,
      embedded: stateDir,
      verbose: false,
      copyTimeoutSeconds: 3500,
    });
    await expect(run).rejects.toThrow(expected);
    // Refused before anything started: no embedded state was created.
    expect(existsSync(stateDir)).toBe(false);
  });
});
