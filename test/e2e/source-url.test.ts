/**
 * A wrong base URL is told apart from an unknown stream, run as a user runs `run --once`: a path
 * after the server's address (no admin API there) names `sources[0].url`; a stream the source does
 * not have names `sources[0].streams`.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli } from "../../dev/kit/cli-process.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";

describe("the source's URL and streams in planning errors", () => {
  let dir: string;
  let sim: FlussonicSimulator;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fb-cli-source-url-"));
    sim = await FlussonicSimulator.start({ streams: 1, days: 0.01, bitrateBps: 8000 });
  });
  afterAll(async () => {
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const runWith = async (name: string, source: Record<string, unknown>) => {
    const file = join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify({ bucket: "url-backup", sources: [{ name: "s1", ...source }] }));
    const r = await cli(["run", "-c", file, "--embedded", join(dir, name), "--once"], { cwd: dir });
    return { ...r, file };
  };

  it.concurrent.each([
    ["all streams", "all"],
    ["a listed stream", ["cam1"]],
  ])("a path after the address (%s): no admin API there, check sources[0].url", async (_, streams) => {
    const r = await runWith(`path-${typeof streams}`, { url: `${sim.url}/flussonic`, streams });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`no Flussonic admin API at ${sim.url}/flussonic/streamer/api/v3`);
    expect(r.stdout).toContain(`check "sources[0].url" in ${r.file}`);
    expect(r.stdout).not.toContain("sources[0].streams");
  });

  it.concurrent("a stream the source does not have: check sources[0].streams", async () => {
    const r = await runWith("unknown", { url: sim.url, streams: ["cmx1"] });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`has no stream "cmx1"`);
    expect(r.stdout).toContain(`check "sources[0].streams" in ${r.file}`);
  });
});
