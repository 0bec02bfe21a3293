/**
 * `run` re-executes itself with its memory settings (cli/main.ts runtimeSettings): the installed
 * binary in a child process, as a user starts it. The process that runs the copies is the one the
 * user started (same pid: signals reach it, its exit status is the command's, stdout and stderr are
 * its own) and it runs with `--liftoff-only` and MALLOC_ARENA_MAX=2; other commands, and `run` with
 * FLUSSONIC_BACKUP_REEXEC set, start once, as before.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, test } from "vitest";
import { cli } from "../../dev/kit/cli-process.ts";
import { metricsUrl, sample, scrape, startRun, waitFor, writeConfig } from "../../dev/kit/service-process.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "fb-reexec-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface Probe {
  pid: number;
  execArgv: string[];
  arena: string | undefined;
  marker: string | undefined;
}

/**
 * A module preloaded into the command's Node (NODE_OPTIONS --require, kept across the re-exec)
 * that writes, when the process exits, its pid, its Node flags and the variables set for it. A
 * process image replaced by execve never exits, so only the image that ran the command writes.
 */
function probe(dir: string): { env: Record<string, string>; read: () => Probe[] } {
  const out = join(dir, "probe.jsonl");
  const file = join(dir, "probe.cjs");
  writeFileSync(
    file,
    `process.on("exit", () => require("node:fs").appendFileSync(${JSON.stringify(out)}, JSON.stringify({ pid: process.pid, execArgv: process.execArgv, arena: process.env.MALLOC_ARENA_MAX, marker: process.env.FLUSSONIC_BACKUP_REEXEC }) + "\\n"));\n`,
  );
  return {
    env: { NODE_OPTIONS: `--require ${file}` },
    read: () =>
      readFileSync(out, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Probe),
  };
}

test("run re-executes itself with its memory settings: same process, exit status and stderr its own", async () => {
  const dir = tempDir();
  const p = probe(dir);
  const r = await cli(["run", "--once", "-c", join(dir, "missing.json")], { cwd: dir, env: p.env });
  expect(r.stderr).toContain("missing.json: cannot read the config file");
  expect(r.stdout).toBe("");
  expect(r.code).toBe(2);
  const [ran, ...more] = p.read();
  expect(more).toEqual([]);
  expect(ran!.execArgv).toContain("--liftoff-only");
  expect(ran!.arena).toBe("2");
  expect(ran!.marker).toBe("1");
});

test("a MALLOC_ARENA_MAX of the user's is kept; FLUSSONIC_BACKUP_REEXEC=0 and other commands start once", async () => {
  const dir = tempDir();
  const kept = probe(dir);
  await cli(["run", "-c", join(dir, "missing.json")], {
    cwd: dir,
    env: { ...kept.env, MALLOC_ARENA_MAX: "4" },
  });
  expect(kept.read()[0]!.arena).toBe("4");

  const off = probe(tempDir());
  const r = await cli(["run", "-c", join(dir, "missing.json")], {
    cwd: dir,
    env: { ...off.env, FLUSSONIC_BACKUP_REEXEC: "0" },
  });
  expect(r.code).toBe(2);
  expect(off.read()[0]!.execArgv).not.toContain("--liftoff-only");
  expect(off.read()[0]!.arena).toBeUndefined();

  const other = probe(tempDir());
  const v = await cli(["--version"], { cwd: dir, env: other.env });
  expect(v.stdout).toMatch(/^flussonic-backup \d/);
  expect(other.read()[0]!.execArgv).not.toContain("--liftoff-only");
  expect(other.read()[0]!.marker).toBeUndefined();
});

test("the re-executed service is the process that was started: it prints, serves and stops on SIGTERM", async () => {
  const dir = tempDir();
  const sim = await FlussonicSimulator.start({ streams: 1, days: 1, liveOnlyStreams: 0 });
  cleanups.push(() => sim.close());
  const p = probe(dir);
  const config = writeConfig(dir, sim.url);
  const run = startRun(
    ["run", "-c", config, "--embedded", join(dir, "state"), "--metrics-port", "0", "--grace-seconds", "1"],
    {
      cwd: dir,
      env: p.env,
    },
  );
  cleanups.push(() => {
    if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill("SIGKILL");
  });
  const base = await waitFor(
    "the metrics line",
    () => metricsUrl(run.stdout()),
    30_000,
    () => run.stderr(),
  );
  // A window copied first: the service is past its start-up and first plan.
  await waitFor(
    "a window copied",
    async () =>
      (sample(await scrape(base), "flussonic_backup_windows_total", { source: "src1", outcome: "copied" }) ??
        0) > 0
        ? true
        : undefined,
    45_000,
    () => run.stdout() + run.stderr(),
  );
  run.signal("SIGTERM");
  expect(await run.exited, run.stdout() + run.stderr()).toBe(0);
  expect(run.stdout()).toMatch(/SIGTERM: stopping/);
  const [ran] = p.read();
  expect(ran!.pid).toBe(run.child.pid);
  expect(ran!.execArgv).toContain("--liftoff-only");
});
