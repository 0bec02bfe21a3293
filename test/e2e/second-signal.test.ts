/**
 * README "Run it as a service": a second SIGTERM/SIGINT aborts the running copies without waiting
 * for the grace period: the service exits 0 at once, no multipart upload left open, the windows
 * visible again in the queue.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, test } from "vitest";
import {
  openUploads,
  type RunProcess,
  startRun,
  waitFor,
  writeConfig,
} from "../../dev/kit/service-process.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  test(`a second ${signal} aborts the running copies at once, not after the 60 s grace period`, async () => {
    // Full windows of ~30 MB go up in parts of at most 12 MiB (smaller ones are one PutObject).
    // Downloads stall after 13 MiB: a full window's first part is uploaded, its copy never ends.
    // Without the spool (spoolMiB 0): spooled, such a window is one PutObject sent once the download
    // ends, no multipart upload to see open.
    const sim = await FlussonicSimulator.start({
      streams: 1,
      days: 1,
      liveOnlyStreams: 0,
      bitrateBps: 800_000,
      faults: { stallAfterBytes: 13 * 1024 * 1024 },
    });
    cleanups.push(() => sim.close());
    const dir = mkdtempSync(join(tmpdir(), "fb-second-signal-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const config = writeConfig(dir, sim.url, { maxConcurrentCopies: 2 }, { spoolMiB: 0 });
    const state = join(dir, "state");
    const p: RunProcess = startRun(["run", "-c", config, "--embedded", state, "--grace-seconds", "60"], {
      cwd: dir,
    });
    cleanups.push(() => {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
    });
    const context = () => `stdout:\n${p.stdout()}\nstderr:\n${p.stderr()}`;
    await waitFor(
      "a multipart upload with a part, its download stalled",
      () => (openUploads(state).some((parts) => parts >= 1) ? true : undefined),
      30_000,
      context,
    );

    p.signal(signal);
    await waitFor(
      "the stop to begin",
      () => (/stopping; taking no new window/.test(p.stdout()) ? true : undefined),
      10_000,
      context,
    );
    const second = performance.now();
    p.signal(signal);
    expect(await p.exited, context()).toBe(0);
    expect(performance.now() - second, "exit after the second signal").toBeLessThan(10_000);
    const stopped =
      /Stopped in [\d.]+ s: \d+ cop(?:y|ies) finished, (\d+) aborted and returned to the queue\./.exec(
        p.stdout(),
      );
    expect(Number(stopped?.[1]), context()).toBeGreaterThanOrEqual(1);
    expect(openUploads(state)).toEqual([]);
  }, 60_000);
}
