/**
 * "Back up your own Flussonic" followed against the bundled simulator as a new user follows it:
 * `npm run simulator` with an admin login (a child process, as typed), the README's example
 * configuration pointed at it, then `config check`, `run --once --embedded`, `restore` (a file
 * ffprobe decodes) and `serve` (a playlist ffprobe decodes). The simulator serves real video by
 * default when ffmpeg is installed; without ffmpeg this test skips, saying why.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { childEnv, cli, ROOT, startCli, waitFor } from "../../dev/kit/cli-process.ts";
import { documentedConfig } from "../../dev/kit/documented.ts";

const hasFfmpeg = spawnSync("ffmpeg", ["-version"], { stdio: "ignore" }).status === 0;
const hasFfprobe = spawnSync("ffprobe", ["-version"], { stdio: "ignore" }).status === 0;
if (!hasFfmpeg || !hasFfprobe) {
  process.stdout.write(
    "simulator walkthrough skipped: ffmpeg and ffprobe are needed (real video, decode check)\n",
  );
}

function ffprobeSeconds(target: string): number {
  const r = spawnSync(
    "ffprobe",
    ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", target],
    {
      encoding: "utf8",
      timeout: 60_000,
    },
  );
  if (r.status !== 0) throw new Error(`ffprobe ${target}: ${r.stderr}`);
  return Number(r.stdout.trim());
}

describe.skipIf(!hasFfmpeg || !hasFfprobe)("Back up your own Flussonic, against `npm run simulator`", () => {
  let dir: string;
  let simulator: ChildProcess;
  let simOut = "";
  let url: string;
  const env = { STREAMER1_PASSWORD: "walkthrough-secret" };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fb-sim-walkthrough-"));
    // As typed in a second terminal: npm run simulator -- --username backup --password ...
    simulator = spawn(
      "npm",
      ["run", "--silent", "simulator", "--", "--port", "0", "--streams", "1", "--days", "0.05"].concat([
        "--username",
        "backup",
        "--password",
        env.STREAMER1_PASSWORD,
      ]),
      // Its own process group: stopping it stops npm and the simulator under it, as Ctrl-C does.
      { cwd: ROOT, env: childEnv(), stdio: ["ignore", "pipe", "pipe"], detached: true },
    );
    simulator.stdout!.on("data", (d: Buffer) => {
      simOut += d.toString();
    });
    url = await waitFor(
      "the simulator's address",
      async () => /Flussonic simulator on (http:\/\/\S+)/.exec(simOut)?.[1],
      60_000,
    );
    const config = documentedConfig();
    config.sources[0]!.url = url;
    writeFileSync(join(dir, "my-config.json"), JSON.stringify(config, null, 2));
  }, 90_000);

  afterAll(async () => {
    if (simulator?.pid !== undefined && simulator.exitCode === null) {
      const closed = new Promise((r) => simulator.once("close", r));
      process.kill(-simulator.pid, "SIGINT");
      await closed;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("says what it serves: real video, the admin login, the archive depth", () => {
    expect(simOut).toMatch(
      /\(real H\.264\/AAC video; admin login backup \(Basic\); 0\.05 day\(s\) of archive\)/,
    );
    expect(simOut).not.toContain(env.STREAMER1_PASSWORD);
  });

  it("config check, run --once, restore and serve: the restored file and the served playlist decode", async () => {
    const o = { cwd: dir, env, timeoutMs: 170_000 };
    const check = await cli(["config", "check", "my-config.json"], o);
    expect(check.code, check.stderr).toBe(0);
    const run = await cli(["run", "-c", "my-config.json", "--embedded", "./backup-state", "--once"], o);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toMatch(/^streamer1\s+cam1\s+.*\s100%/m);

    // Ten minutes well inside what was copied (the planner leaves the settle margin and the open
    // window: end 20 minutes before now, on a window boundary) and inside one recorded range, as
    // the simulator's admin API lists them.
    const listed = (await (
      await fetch(`${url}/streamer/api/v3/streams/cam1/dvr/ranges`, {
        headers: {
          authorization: `Basic ${Buffer.from(`backup:${env.STREAMER1_PASSWORD}`).toString("base64")}`,
        },
      })
    ).json()) as { ranges: { from: number; duration: number }[] };
    const latest = Math.floor((Date.now() / 1000 - 1200) / 600) * 600;
    const inside = listed.ranges
      .map((r) => ({
        from: Math.ceil(r.from / 600) * 600,
        to: Math.min(latest, Math.floor((r.from + r.duration) / 600) * 600),
      }))
      .filter((r) => r.to - r.from >= 600)
      .at(-1);
    expect(inside, JSON.stringify(listed)).toBeDefined();
    const to = inside!.to;
    const from = to - 600;
    const out = join(dir, "cam1.mp4");
    const restore = await cli(
      ["restore", "-c", "my-config.json", "--embedded", "./backup-state", "--source", "streamer1"].concat([
        "--stream",
        "cam1",
        "--from",
        String(from),
        "--to",
        String(to),
        "--out",
        out,
      ]),
      o,
    );
    expect(restore.code, restore.stderr).toBe(0);
    expect(Math.abs(ffprobeSeconds(out) - 600)).toBeLessThanOrEqual(1);

    const serve = startCli(
      ["serve", "-c", "my-config.json", "--embedded", "./backup-state", "--no-auth", "--port", "0"],
      { cwd: dir, env },
    );
    try {
      const base = await waitFor(
        "serve's address",
        async () => /(http:\/\/127\.0\.0\.1:\d+)/.exec(serve.stdout())?.[1],
      );
      const playlist = `${base}/streamer1/cam1/index-${from}-600.m3u8`;
      const answer = await fetch(playlist);
      expect(answer.status).toBe(200);
      await answer.text();
      expect(Math.abs(ffprobeSeconds(playlist) - 600)).toBeLessThanOrEqual(1);
    } finally {
      // Its exit on SIGTERM is serve.test.ts's: here only stopped, so that a failure above is the one shown.
      await serve.stop();
    }
  }, 180_000);
});
