/**
 * `npm run simulator -- --central 2` (a child process, as typed) serves a Flussonic Central listing
 * two simulated media servers; `run --once` with a source of kind "central" at its address backs up
 * the streams of both without naming either.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { childEnv, cli, ROOT, waitFor } from "../../dev/kit/cli-process.ts";

describe("npm run simulator -- --central", () => {
  let dir: string;
  let simulator: ChildProcess;
  let out = "";
  let url: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fb-sim-central-"));
    simulator = spawn(
      "npm",
      ["run", "--silent", "simulator", "--", "--central", "2", "--port", "0"].concat([
        "--streams",
        "1",
        "--days",
        "0.01",
        "--media",
        "synthetic",
      ]),
      // Its own process group: stopping it stops npm and the simulator under it, as Ctrl-C does.
      { cwd: ROOT, env: childEnv(), stdio: ["ignore", "pipe", "pipe"], detached: true },
    );
    simulator.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
    });
    url = await waitFor(
      "the Central simulator's address",
      async () =>
        out.includes("Ctrl-C") ? /Flussonic Central simulator on (http:\/\/\S+)/.exec(out)?.[1] : undefined,
      60_000,
    );
  }, 90_000);

  afterAll(async () => {
    if (simulator?.pid !== undefined && simulator.exitCode === null) {
      const closed = new Promise((r) => simulator.once("close", r));
      process.kill(-simulator.pid, "SIGINT");
      await closed;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("lists two servers, and a central source backs up both", async () => {
    expect(out).toContain(`listing 2 media server(s): a source of kind "central" with url ${url}`);
    expect(out).toMatch(/streamer1\.local: Flussonic simulator on http:\/\/127\.0\.0\.1:\d+/);
    expect(out).toMatch(/streamer2\.local: Flussonic simulator on http:\/\/127\.0\.0\.1:\d+/);
    const file = join(dir, "fleet.json");
    writeFileSync(
      file,
      JSON.stringify({
        bucket: "fleet-backup",
        sources: [{ name: "fleet", kind: "central", url, retentionDays: 0.02 }],
      }),
    );
    const r = await cli(["run", "-c", file, "--embedded", join(dir, "state"), "--once"], { cwd: dir });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain("streamer1.local/cam1");
    expect(r.stdout).toContain("streamer2.local/cam1");
  });
});
