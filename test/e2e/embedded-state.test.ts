/**
 * `--embedded dir` as a user meets it: the operator commands look at the backup a run made and never
 * create an empty one (a folder that does not exist is refused, exit 2, and stays absent); the dry
 * run writes nothing at all, neither into a new folder nor into an existing one.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli } from "../../dev/kit/cli-process.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";

/** Every file under `dir` with its size and SHA-256. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else
        out[p.slice(dir.length)] =
          `${statSync(p).size} ${createHash("sha256").update(readFileSync(p)).digest("hex")}`;
    }
  };
  walk(dir);
  return out;
}

describe("--embedded dir: read-only commands and the dry run write no state", () => {
  let dir: string;
  let sim: FlussonicSimulator;
  let configFile: string;
  /** A backup `run --once` made, before every test. */
  let state: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fb-cli-embedded-state-"));
    // 43 minutes of archive at the source; the backup keeps 29 (past the settle margin and the open
    // window, several windows are due whatever the clock).
    sim = await FlussonicSimulator.start({ streams: 1, days: 0.03, bitrateBps: 8000, seed: 3 });
    configFile = join(dir, "c.json");
    writeFileSync(
      configFile,
      JSON.stringify({
        bucket: "state-backup",
        sources: [{ name: "cams", url: sim.url, streams: ["cam1"], retentionDays: 0.02 }],
      }),
    );
    state = join(dir, "state");
    const run = await cli(["run", "-c", configFile, "--embedded", state, "--once"], { cwd: dir });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^Copied [1-9]\d* window\(s\)/m);
  });
  afterAll(async () => {
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.concurrent("status and restore refuse a folder that does not exist and do not create it", async () => {
    const missing = join(dir, "never-ran");
    const [status, restore] = await Promise.all([
      cli(["status", "-c", configFile, "--embedded", missing], { cwd: dir }),
      cli(
        ["restore", "-c", configFile, "--embedded", missing, "--source", "cams", "--stream", "cam1"].concat([
          "--from",
          "0",
          "--to",
          "60",
          "--out",
          join(dir, "x.mp4"),
        ]),
        { cwd: dir },
      ),
    ]);
    for (const r of [status, restore]) {
      expect(r.code).toBe(2);
      expect(r.stderr.trim()).toBe(
        `--embedded ${missing}: no such directory; give the directory \`run --embedded\` keeps the backup in (the one after --embedded in your run command)`,
      );
    }
    expect(existsSync(missing)).toBe(false);
  });

  it.concurrent("run --dry-run into a new folder creates nothing there", async () => {
    const fresh = join(dir, "fresh");
    const r = await cli(["run", "-c", configFile, "--embedded", fresh, "--dry-run"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("would copy");
    expect(existsSync(fresh)).toBe(false);
  });

  it("run --dry-run over a backup a run made changes no byte of its folder", async () => {
    const before = tree(state);
    expect(Object.keys(before).some((k) => k.endsWith("fauxqs.db"))).toBe(true);
    const dry = await cli(["run", "-c", configFile, "--embedded", state, "--dry-run"], { cwd: dir });
    expect(dry.code, dry.stderr).toBe(0);
    // It read the stored backup: the stream is known to it (not "does not exist yet").
    expect(dry.stdout).not.toContain("does not exist yet");
    expect(tree(state)).toEqual(before);
  });

  const restore = (stream: string, from: number, to: number) =>
    cli(
      ["restore", "-c", configFile, "--embedded", state, "--source", "cams", "--stream", stream].concat([
        "--from",
        String(from),
        "--to",
        String(to),
        "--out",
        join(dir, `${stream}-${from}.mp4`),
      ]),
      { cwd: dir },
    );

  it("restore of a stream the backup does not have says so and names the close one", async () => {
    const now = Math.floor(Date.now() / 1000);
    const r = await restore("cma1", now - 300, now - 240);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'the backup has no stream "cma1" of source cams (did you mean "cam1"? streams it holds: 1)',
    );
  });

  it("restore outside what the backup holds says from when to when it holds the stream", async () => {
    const r = await restore("cam1", 1_000_000_000, 1_000_000_600);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /the backup holds nothing of stream "cam1" of source cams in 2001-09-09T01:46:40Z – 2001-09-09T01:56:40Z; it holds it from \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ to \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/,
    );
  });
});
