/**
 * docs/service.md: SIGTERM stops the service at any moment, also while it starts: the installed
 * binary, the simulator and the embedded emulator, the signal sent right after the "Metrics on"
 * line (the service loop not listening yet, or its first planner run under way), during the first
 * planner run (its index requests held by the simulator) and while the runtime is created (its
 * bucket request held by the S3 fault proxy). Each run exits 0, in seconds: before the fix it either
 * ended by the signal (status null, 143 in a shell) or waited a whole schedule period (60 s) after
 * a planner run that the stop had come during.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, test } from "vitest";
import { S3FaultProxy } from "../../dev/kit/s3-fault-proxy.ts";
import { type RunProcess, startRun, waitFor, writeConfig } from "../../dev/kit/service-process.ts";
import { startEmbedded } from "../../local/embedded.ts";
import { FlussonicSimulator, type SimFaults } from "../../simulator/simulator.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Far below the 60 s a stop used to wait for the next planner run, far above a clean stop. */
const EXIT_WITHIN_MS = 15_000;

async function setUp(faults: SimFaults = {}) {
  const sim = await FlussonicSimulator.start({ streams: 1, days: 1, liveOnlyStreams: 0, faults });
  cleanups.push(() => sim.close());
  const dir = mkdtempSync(join(tmpdir(), "fb-early-signal-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return { sim, dir, config: writeConfig(dir, sim.url) };
}

function service(
  dir: string,
  config: string,
  state: string,
  o: { args?: string[]; env?: Record<string, string> } = {},
): RunProcess {
  const p = startRun(
    [
      "run",
      "-c",
      config,
      ...(o.args ?? ["--embedded", join(dir, state)]),
      "--metrics-port",
      "0",
      "--grace-seconds",
      "1",
    ],
    { cwd: dir, ...(o.env ? { env: o.env } : {}) },
  );
  cleanups.push(() => {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  });
  return p;
}

/** The exit code, or "still running" when the process has not exited within `ms`. */
async function exitWithin(p: RunProcess, ms: number): Promise<number | null | "still running"> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"still running">((r) => {
    timer = setTimeout(() => r("still running"), ms);
  });
  try {
    return await Promise.race([p.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

test("SIGTERM right after the Metrics line ends the service with exit 0 (4 starts)", async () => {
  const { dir, config } = await setUp();
  for (let i = 0; i < 4; i++) {
    const p = service(dir, config, `state-${i}`);
    const context = () => `start ${i}\nstdout:\n${p.stdout()}\nstderr:\n${p.stderr()}`;
    await waitFor(
      "the Metrics line",
      () => (/Metrics on /.test(p.stdout()) ? true : undefined),
      30_000,
      context,
    );
    p.signal("SIGTERM");
    expect(await exitWithin(p, EXIT_WITHIN_MS), context()).toBe(0);
    expect(p.stdout(), context()).toMatch(/SIGTERM: stopping; taking no new window/);
    expect(p.stdout(), context()).toMatch(/Stopped in [\d.]+ s: /);
  }
}, 120_000);

test("SIGTERM during the first planner run ends the service with exit 0 once the run is over", async () => {
  // Each index request waits 1 s in the simulator: the planner run is under way while one is open.
  const { sim, dir, config } = await setUp({ target: "index", latencyMs: 1000 });
  const p = service(dir, config, "state");
  const context = () => `stdout:\n${p.stdout()}\nstderr:\n${p.stderr()}`;
  await waitFor("the Running line", () => (/Running: /.test(p.stdout()) ? true : undefined), 30_000, context);
  await waitFor(
    "an index request of the planner",
    () => (sim.inFlight > 0 ? true : undefined),
    10_000,
    context,
  );
  p.signal("SIGTERM");
  expect(await exitWithin(p, EXIT_WITHIN_MS), context()).toBe(0);
  expect(p.stdout(), context()).toMatch(/SIGTERM: stopping; taking no new window, 0 copies running/);
  expect(p.stdout(), context()).toMatch(/Stopped in [\d.]+ s: 0 copies finished, 0 aborted/);
}, 60_000);

for (const again of [false, true]) {
  test(`SIGTERM while the runtime is created (its bucket request held) ends the service with exit 0${again ? ", a second one at once" : ""}`, async () => {
    const { dir, config } = await setUp();
    // An S3 endpoint (the emulator, in this process) behind the fault proxy, the queues embedded: the
    // service's first bucket request is held until the signal has been sent.
    const store = await startEmbedded(join(dir, "store"));
    cleanups.push(() => store.stop());
    const proxy = await S3FaultProxy.start(store.endpoints.s3Endpoint!);
    cleanups.push(() => proxy.close());
    let release = () => {};
    const held = proxy.inject({
      op: "BucketOperation",
      fault: "stall-request",
      until: new Promise<void>((r) => {
        release = r;
      }),
    });
    const p = service(dir, config, "queues", {
      args: ["--queues", "embedded", "--state-dir", "queues"],
      env: {
        AWS_ENDPOINT_URL_S3: proxy.url,
        // Nothing listens on the discard port: the queues are the embedded ones.
        AWS_ENDPOINT_URL_SQS: "http://127.0.0.1:9",
        AWS_REGION: "us-east-1",
        AWS_ACCESS_KEY_ID: "test",
        AWS_SECRET_ACCESS_KEY: "test",
      },
    });
    cleanups.push(() => release());
    const context = () => `stdout:\n${p.stdout()}\nstderr:\n${p.stderr()}`;
    await waitFor("the held bucket request", () => (held.hits > 0 ? true : undefined), 30_000, context);
    p.signal("SIGTERM");
    // Handled while the request is held (before the fix, the signal ended the process here).
    await waitFor(
      "the signal handled or the process ended",
      () => (/SIGTERM while starting: /.test(p.stdout()) || p.child.signalCode !== null ? true : undefined),
      10_000,
      context,
    );
    if (again) {
      // The request still held: the second signal does not wait for the start to end.
      p.signal("SIGTERM");
      expect(await exitWithin(p, EXIT_WITHIN_MS), context()).toBe(0);
      expect(p.stdout(), context()).not.toMatch(/Running: /);
      return;
    }
    release();
    expect(await exitWithin(p, EXIT_WITHIN_MS), context()).toBe(0);
    expect(p.stdout(), context()).toMatch(/SIGTERM: stopping; taking no new window, 0 copies running/);
  }, 60_000);
}
