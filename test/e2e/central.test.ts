/**
 * A Flussonic Central source, run as a user runs it (the real binary): `run --once` backs up every
 * server Central lists; after a server joins and another leaves, the next run backs up the new one
 * with the same config, and `status --json` reports the one that left as retired, its backup kept.
 * A central source's config mistake is one sentence and exit code 2.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli } from "../../dev/kit/cli-process.ts";
import { CentralSimulator } from "../../simulator/central.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";

interface StatusJson {
  sources: { source: string; streams: { stream: string; windows: number; retired?: { reason: string } }[] }[];
}

describe("flussonic-backup with a Flussonic Central source", () => {
  let dir: string;
  let central: CentralSimulator;
  const sims: FlussonicSimulator[] = [];
  const sim = async (streams: number) => {
    const s = await FlussonicSimulator.start({ streams, days: 0.01, bitrateBps: 8000 });
    sims.push(s);
    return s;
  };
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fb-cli-central-"));
    central = await CentralSimulator.start({ pageSize: 1 });
  });
  afterAll(async () => {
    for (const s of sims) await s.close();
    await central?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("backs up the fleet, then a server added, and shows a removed one as retired", async () => {
    central.addServer({ hostname: "a.example", sim: await sim(1) });
    central.addServer({ hostname: "b.example", sim: await sim(1) });
    const file = join(dir, "fleet.json");
    writeFileSync(
      file,
      JSON.stringify({
        bucket: "fleet-backup",
        settleSeconds: 0,
        sources: [{ name: "fleet", kind: "central", url: central.url, retentionDays: 0.005 }],
      }),
    );
    const state = join(dir, "state");
    const first = await cli(["run", "-c", file, "--embedded", state, "--once"], { cwd: dir });
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toContain("a.example/cam1");
    expect(first.stdout).toContain("b.example/cam1");

    central.addServer({ hostname: "c.example", sim: await sim(1) });
    central.removeServer("b.example");
    const second = await cli(["run", "-c", file, "--embedded", state, "--once"], { cwd: dir });
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(second.stdout).toContain("c.example/cam1");

    const status = await cli(["status", "-c", file, "--embedded", state, "--json"], { cwd: dir });
    const json = JSON.parse(status.stdout) as StatusJson;
    const streams = json.sources[0]!.streams;
    expect(streams.map((s) => [s.stream, s.retired?.reason])).toEqual([
      ["a.example/cam1", undefined],
      ["b.example/cam1", "gone at the source"],
      ["c.example/cam1", undefined],
    ]);
    expect(streams.every((s) => s.windows > 0)).toBe(true);
  });

  it("a central source with archiveUrl: one sentence naming the field, exit code 2", async () => {
    const file = join(dir, "bad.json");
    writeFileSync(
      file,
      JSON.stringify({
        bucket: "fleet-backup",
        sources: [{ name: "fleet", kind: "central", url: central.url, archiveUrl: "http://127.0.0.1:1" }],
      }),
    );
    const r = await cli(["config", "check", file], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `${file}: sources[0].archiveUrl: a central source reads each server at the address Central gives it (api_url, private_payload_url): remove archiveUrl, or make this source kind "server"`,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
