/**
 * The Flussonic simulator in a process of its own, so that its meter (acknowledged bytes sampled
 * every 10 ms) runs on an event loop the copiers do not keep busy: in the copiers' process a busy
 * loop counts a burst tens of milliseconds late, which can put two bursts in one measured second.
 * The bench's figure 6 measures the source this way. The meter's figures come back over stdin and
 * stdout, one JSON line each.
 *
 * Run as a script (`node dev/kit/simulator-process.ts '<options JSON>'`) it prints `{"url": ...}`
 * once it listens, answers each `meter` line on stdin with the meter's figures (once every finished
 * download's bytes were acknowledged) and each `reset` line with `{}`, and stops on SIGTERM or when
 * stdin closes.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { RateBuckets } from "../../simulator/meter.ts";
import type { SimulatorOptions } from "../../simulator/simulator.ts";

/** The simulator's options that cross a process boundary: no functions; `now` as a fixed time. */
export type SimulatorProcessOptions = Omit<SimulatorOptions, "now" | "faults"> & {
  /** The simulator's clock, fixed at this unix time (default: the real time). */
  nowSeconds?: number;
};

/** What the child's meter counted (see simulator/meter.ts). */
export interface MeterFigures {
  mode: "wire" | "write";
  downloads: number;
  peakActive: number;
  bytesServed: number;
  /** Bytes per second from the first to the last byte counted. */
  averageRate: number;
  /** [bucket start (ms, the child's performance.now()), bytes] per 10 ms bucket that counted bytes. */
  series: [number, number][];
  /** Meter samples more than 20 ms after the previous one: [previous, this] (ms, same clock). */
  lateSamples: [number, number][];
  /** Archive requests since the start or the last reset: [arrived, response ended] (ms, same clock). */
  archiveRequests: [number, number][];
}

export interface SimulatorProcess {
  url: string;
  pid: number;
  /** The meter's figures once every finished download's bytes were acknowledged. */
  meter(): Promise<MeterFigures>;
  /** Starts a new measurement in the child's meter. */
  reset(): Promise<void>;
  /** SIGTERM, then waits for the process to exit (SIGKILL after 5 s). */
  stop(): Promise<void>;
}

/** Highest bytes per second over any window of `windowMs` in a meter's series (10 ms resolution). */
export function maxRateOf(series: readonly [number, number][], windowMs: number): number {
  const rates = new RateBuckets();
  for (const [at, bytes] of series) rates.add(bytes, at);
  return rates.maxRate(windowMs);
}

/** Starts the simulator in a child `node` process and waits until it listens. */
export async function startSimulatorProcess(o: SimulatorProcessOptions = {}): Promise<SimulatorProcess> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), JSON.stringify(o)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  const lines = createInterface({ input: child.stdout! });
  const waiting: ((line: string) => void)[] = [];
  const gone = new Error("simulator process exited");
  lines.on("line", (line) => waiting.shift()?.(line));
  const next = () =>
    new Promise<string>((resolve, reject) => {
      waiting.push(resolve);
      child.once("close", (code) => reject(new Error(`${gone.message} (code ${code})`)));
    });
  const first = next();
  child.once("error", () => undefined);
  const url = (JSON.parse(await first) as { url: string }).url;
  /** One request at a time: each answer is the next line. */
  let queue: Promise<unknown> = Promise.resolve();
  const ask = (command: string): Promise<string> => {
    const turn = queue.then(() => {
      const answer = next();
      child.stdin!.write(`${command}\n`);
      return answer;
    });
    queue = turn.catch(() => undefined);
    return turn;
  };
  return {
    url,
    pid: child.pid ?? 0,
    async meter() {
      return JSON.parse(await ask("meter")) as MeterFigures;
    },
    async reset() {
      await ask("reset");
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(killer);
    },
  };
}

if (import.meta.main) {
  const { FlussonicSimulator } = await import("../../simulator/simulator.ts");
  const { nowSeconds, ...options } = JSON.parse(process.argv[2] ?? "{}") as SimulatorProcessOptions;
  let since = 0;
  const sim = await FlussonicSimulator.start({
    ...options,
    ...(nowSeconds !== undefined ? { now: () => nowSeconds } : {}),
  });
  process.stdout.write(`${JSON.stringify({ url: sim.url })}\n`);
  const stop = () => void sim.close().finally(() => process.exit(0));
  process.once("SIGTERM", stop);
  const input = createInterface({ input: process.stdin });
  input.on("close", stop);
  // Commands are answered in order, each after the previous one.
  let turn: Promise<void> = Promise.resolve();
  input.on("line", (line) => {
    turn = turn.then(async () => {
      if (line === "meter") {
        await sim.meter.settled();
        const m = sim.meter;
        const figures: MeterFigures = {
          mode: m.mode,
          downloads: m.downloads,
          peakActive: m.peakActive,
          bytesServed: m.bytesServed,
          averageRate: m.averageRate(),
          series: m.series(),
          lateSamples: m.lateSamples,
          archiveRequests: sim.requests
            .filter((r) => r.kind === "archive" && r.startedAt >= since)
            .map((r) => [r.startedAt, r.endedAt]),
        };
        process.stdout.write(`${JSON.stringify(figures)}\n`);
      } else if (line === "reset") {
        sim.meter.reset();
        since = performance.now();
        process.stdout.write("{}\n");
      } else {
        process.stdout.write(`${JSON.stringify({ error: `unknown command "${line}"` })}\n`);
      }
    });
  });
}
