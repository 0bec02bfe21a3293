/**
 * `run` without `--once`: the long-running service (systemd, a container). Plans now and then on
 * the schedule, copies continuously. SIGTERM/SIGINT stop it cleanly: no new window is taken, the
 * copies running get a grace period to finish, the rest are aborted (their multipart uploads
 * aborted, their messages visible again at once) and the process exits 0. A second signal aborts
 * the running copies without waiting for the rest of the grace period.
 */
import type { PlanReport } from "../functions/plan-backup.ts";
import type { BackupMetrics } from "./metrics.ts";
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
}

export async function runService(rt: LocalRuntime, o: ServiceOptions): Promise<number> {
  const stop = new AbortController();
  let signals = 0;
  const onSignal = (name: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      stop.abort();
      const running = [...rt.pollers.values()].reduce((n, p) => n + p.busy, 0);
      o.out.write(
        `${name}: stopping; taking no new window, ${running} cop${running === 1 ? "y" : "ies"} running get up to ${o.graceSeconds} s to finish.\n`,
      );
    } else {
      o.out.write(`${name} again: aborting the copies still running.\n`);
      rt.abortCopies();
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  o.signal?.addEventListener("abort", () => stop.abort(), { once: true });
  o.out.write(`Running: planning every ${Math.round(o.everyMs / 1000)} s; Ctrl-C or SIGTERM to stop.\n`);
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
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, o.everyMs);
        stop.signal.addEventListener(
          "abort",
          () => {
            clearTimeout(t);
            resolve();
          },
          { once: true },
        );
      });
    }
    const started = performance.now();
    const pollers = [...rt.pollers.values()];
    const running = pollers.reduce((n, p) => n + p.busy, 0);
    await rt.stopCopiers(o.graceSeconds * 1000);
    const aborted = pollers.reduce((n, p) => n + p.aborted, 0);
    o.out.write(
      `Stopped in ${((performance.now() - started) / 1000).toFixed(1)} s: ${Math.max(0, running - aborted)} cop${running - aborted === 1 ? "y" : "ies"} finished, ${aborted} aborted and returned to the queue.\n`,
    );
    return 0;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
