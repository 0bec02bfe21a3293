/**
 * `run` without `--once`: the long-running service (systemd, a container). Plans now and then on
 * the schedule, copies continuously. SIGTERM/SIGINT stop it cleanly: no new window is taken, the
 * copies running get a grace period to finish, the rest are aborted (their multipart uploads
 * aborted, their messages visible again at once) and the process exits 0. A second signal aborts
 * the running copies without waiting for the rest of the grace period.
 */
import type { PlanReport } from "../functions/planner/plan-backup.ts";
import type { BackupMetrics } from "./metrics.ts";
import type { QueuePoller } from "./poller.ts";
import type { LocalRuntime } from "./runtime.ts";

export interface ServiceOptions {
  /** Milliseconds between planner runs. */
  everyMs: number;
  /** How long running copies may take to finish after a stop signal. */
  graceSeconds: number;
  out: NodeJS.WritableStream;
  onPlan?: (report: PlanReport) => void;
  metrics?: BackupMetrics;
  /** Stops the service (tests); SIGINT and SIGTERM always do. */
  signal?: AbortSignal;
  /** The signals caught while the service started: one that came stops it at once. */
  startupSignals?: StartupSignals;
}

/**
 * SIGTERM/SIGINT while the service starts (the emulator, the runtime, the metrics server), before
 * runService listens: without a listener Node ends the process with the signal (status 143 or 130)
 * wherever the start is. Caught instead, from the start of `run`; runService then stops at once and
 * exits 0. A second one exits 0 at once: nothing is copying yet.
 */
export class StartupSignals {
  #first: NodeJS.Signals | undefined;
  readonly #out: NodeJS.WritableStream;
  readonly #on = (name: NodeJS.Signals) => {
    if (this.#first !== undefined) process.exit(0);
    this.#first = name;
    this.#out.write(`${name} while starting: stopping as soon as started (${name} again: at once).\n`);
  };

  constructor(out: NodeJS.WritableStream) {
    this.#out = out;
    process.on("SIGINT", this.#on);
    process.on("SIGTERM", this.#on);
  }

  /** Stops catching; returns the signal that came meanwhile, if one did. */
  release(): NodeJS.Signals | undefined {
    process.off("SIGINT", this.#on);
    process.off("SIGTERM", this.#on);
    return this.#first;
  }
}

export async function runService(rt: LocalRuntime, o: ServiceOptions): Promise<number> {
  const stop = new AbortController();
  let stopping: Promise<void> | undefined;
  let stoppedAt = 0;
  let running = 0;
  const pollers: QueuePoller[] = [];
  const beginStop = (why: string) => {
    if (stop.signal.aborted) {
      o.out.write(`${why} again: aborting the copies still running.\n`);
      rt.abortCopies();
      return;
    }
    stop.abort();
    stoppedAt = performance.now();
    pollers.push(...rt.pollers.values());
    running = pollers.reduce((n, p) => n + p.busy, 0);
    o.out.write(
      `${why}: stopping; taking no new window, ${running} cop${running === 1 ? "y" : "ies"} running get up to ${o.graceSeconds} s to finish.\n`,
    );
    // At once, not after a planner run under way: the pollers stop receiving and the grace starts.
    stopping = rt.stopCopiers(o.graceSeconds * 1000);
  };
  const onSignal = (name: NodeJS.Signals) => beginStop(name);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const onStopRequested = () => beginStop("stop requested");
  o.signal?.addEventListener("abort", onStopRequested, { once: true });
  o.out.write(`Running: planning every ${Math.round(o.everyMs / 1000)} s; Ctrl-C or SIGTERM to stop.\n`);
  // Taken over only now that this loop listens: no moment without a listener.
  const early = o.startupSignals?.release();
  if (early !== undefined) beginStop(early);
  try {
    while (!stop.signal.aborted) {
      try {
        // Sources resumed or inside their allowed hours again get their copiers back.
        await rt.startCopiers();
        if (stop.signal.aborted) break;
        const report = await rt.plan();
        o.metrics?.planned(report);
        o.onPlan?.(report);
      } catch (error) {
        o.metrics?.planFailed();
        o.out.write(`planning failed: ${(error as Error).message}\n`);
      }
      // The wait ends at the next run or at the stop, and takes its listener with it either way. A
      // stop that came during the run above has fired already: no wait (an abort listener added
      // now would never be called, and the service would wait a whole period for its next run).
      if (stop.signal.aborted) break;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          stop.signal.removeEventListener("abort", done);
          resolve();
        };
        const t = setTimeout(done, o.everyMs);
        stop.signal.addEventListener("abort", done, { once: true });
      });
    }
    await stopping;
    // Copiers a start under way at the signal added meanwhile stop the same way.
    await rt.stopCopiers(o.graceSeconds * 1000);
    const aborted = pollers.reduce((n, p) => n + p.aborted, 0);
    const finished = Math.max(0, running - aborted);
    o.out.write(
      `Stopped in ${((performance.now() - stoppedAt) / 1000).toFixed(1)} s: ${finished} cop${finished === 1 ? "y" : "ies"} finished, ${aborted} aborted and returned to the queue.\n`,
    );
    return 0;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    o.signal?.removeEventListener("abort", onStopRequested);
  }
}
