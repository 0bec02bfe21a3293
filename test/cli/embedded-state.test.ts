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
import { FlussonicSimulator } from "../../tools/simulator/simulator.ts";
import { cli } from "./cli-process.ts";

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

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fb-cli-embedded-state-"));
    sim = await FlussonicSimulator.start({ streams: 1, days: 0.01, bitrateBps: 8000, seed: 3 });
    configFile = join(dir, "c.json");
    writeFileSync(
      configFile,
      JSON.stringify({
        bucket: "state-backup",
        sources: [{ name: "cams", url: sim.url, streams: ["cam1"], retentionDays: 0.005 }],
      }),
    );
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
    const state = join(dir, "state");
    const run = await cli(["run", "-c", configFile, "--embedded", state, "--once"], { cwd: dir });
    expect(run.code, run.stderr).toBe(0);
    const before = tree(state);
    expect(Object.keys(before).some((k) => k.endsWith("fauxqs.db"))).toBe(true);
    const dry = await cli(["run", "-c", configFile, "--embedded", state, "--dry-run"], { cwd: dir });
    expect(dry.code, dry.stderr).toBe(0);
    // It read the stored backup: the stream is known to it (not "does not exist yet").
    expect(dry.stdout).not.toContain("does not exist yet");
    expect(tree(state)).toEqual(before);
  });
});
