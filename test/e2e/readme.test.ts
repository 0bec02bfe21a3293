/**
 * The README's own command lines, read from README.md and run as written (the installed binary,
 * real argv, in a fresh directory), so the README cannot drift from what works: `my-config.json` is
 * the README's example configuration pointed at the simulator (its basic auth included), the
 * `--demo` lines run after the demo (`npm start`'s command, at a small size), the endpoint lines
 * against an emulator process reached through the AWS variables.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  awayFromWindowEdge,
  awsClients,
  bucketSnapshot,
  type CliResult,
  cli,
  ROOT,
  readmeCommands,
  startCli,
  waitFor,
  windowsIn,
} from "../../dev/kit/cli-process.ts";
import { documentedConfig } from "../../dev/kit/documented.ts";
import { type EmulatorProcess, startEmulatorProcess } from "../../dev/kit/emulator-process.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";

const hasFfmpeg = spawnSync("ffmpeg", ["-version"], { stdio: "ignore" }).status === 0;
const hasFfprobe = spawnSync("ffprobe", ["-version"], { stdio: "ignore" }).status === 0;

/** argv of a README line; `[--flag]` gives the line without and with it. */
function variants(line: string): string[][] {
  const words = line.split(/\s+/).slice(2);
  const optional = words.findIndex((w) => /^\[.+\]$/.test(w));
  if (optional < 0) return [words];
  const without = words.filter((_, i) => i !== optional);
  const withIt = words.map((w, i) => (i === optional ? w.slice(1, -1) : w));
  return [
    ...variants(["npx", "flussonic-backup", ...without].join(" ")),
    ...variants(["npx", "flussonic-backup", ...withIt].join(" ")),
  ];
}

describe("the README's commands, run as written", () => {
  let dir: string;
  let sim: FlussonicSimulator;
  let emulator: EmulatorProcess;
  let aws: ReturnType<typeof awsClients>;
  let demoRestore: { from: string; to: string } | undefined;
  const lines = readmeCommands();
  const transcript: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fb-cli-readme-"));
    const config = documentedConfig();
    [sim, emulator] = await Promise.all([
      // 43 minutes of archive, the source's own retention deleting what is older, as a Flussonic
      // does: the README's 20-day retention copies all of it, racing that deletion at the oldest edge.
      FlussonicSimulator.start({
        streams: 2,
        days: 0.03,
        bitrateBps: 8000,
        seed: 3,
        auth: { basic: { username: "backup", password: "readme-secret" } },
      }),
      startEmulatorProcess({ dir: join(dir, "emulator") }),
    ]);
    aws = awsClients(emulator.url);
    config.sources[0]!.url = sim.url;
    writeFileSync(join(dir, "my-config.json"), JSON.stringify(config, null, 2));
  });

  afterAll(async () => {
    aws?.close();
    await emulator?.stop();
    await sim?.close();
    process.stdout.write(`README commands run:\n${transcript.join("\n")}\n`);
    rmSync(dir, { recursive: true, force: true });
  });

  it("npx flussonic-backup, with the machine's own Node and npm, prints only the program's output", async (ctx) => {
    // The PATH a user's shell has: without node_modules/.bin (npm scripts put it first).
    const PATH = (process.env.PATH ?? "")
      .split(":")
      .filter((p) => !p.endsWith("node_modules/.bin"))
      .join(":");
    const npx = spawnSync("npx", ["--version"], { env: { ...process.env, PATH }, encoding: "utf8" });
    ctx.skip(npx.status !== 0, "no npx on the PATH outside node_modules/.bin");
    const r = spawnSync(
      "npx",
      ["flussonic-backup", "config", "check", join(dir, "my-config.json"), "--no-env"],
      {
        cwd: ROOT,
        env: { PATH, HOME: process.env.HOME ?? "" },
        encoding: "utf8",
      },
    );
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe(
      `${join(dir, "my-config.json")}: valid; bucket my-dvr-backup, prefix "flussonic/", sources: streamer1 (all streams)\n`,
    );
    expect(r.status).toBe(0);
  });

  it("README.md has the command lines this test knows how to run", () => {
    expect(lines.length).toBeGreaterThanOrEqual(8);
    for (const l of lines)
      expect(l).toMatch(
        /^npx flussonic-backup (config|run|status|verify|restore|redrive|pause|resume|demo)\b/,
      );
    // The demo's archive is the hours before it ran: a fixed date in its restore line never matches
    // a fresh demo (the range comes from what `npm start` printed).
    const demoRestores = lines.filter((l) => /^npx flussonic-backup restore --demo\b/.test(l));
    expect(demoRestores.length).toBeGreaterThan(0);
    for (const l of demoRestores) expect(l).not.toMatch(/\d{4}-\d{2}-\d{2}|--(from|to) \d/);
  });

  it("every README line works: exit status and what it prints", async () => {
    const env = { ...emulator.env, STREAMER1_PASSWORD: "readme-secret" };
    const record = (argv: string[], r: CliResult | { code: number | null; stdout: string; stderr: string }) =>
      transcript.push(
        `$ npx flussonic-backup ${argv.join(" ")}\n${`${r.stdout}${r.stderr}`.trimEnd().split("\n").slice(0, 12).join("\n")}\n(exit ${r.code})`,
      );
    let ran = 0;
    for (const line of lines) {
      for (const argv0 of variants(line)) {
        let argv = argv0;
        const [command, sub] = argv;
        ran++;
        if (command === "run" && !argv.includes("--once") && !argv.includes("--dry-run")) {
          // The service: it plans and copies until stopped; stop it once a window is in the bucket.
          const service = startCli(argv, { cwd: dir, env });
          const config = documentedConfig();
          await waitFor(
            "a window copied by the service",
            async () => {
              const objects = await bucketSnapshot(aws.s3, config.bucket).catch(() => undefined);
              const n = objects
                ? windowsIn(objects.keys(), `flussonic/${config.sources[0]!.name}/`).length
                : 0;
              return n > 0 ? n : undefined;
            },
            30_000,
          );
          const code = await service.stop();
          record(argv, { code, stdout: service.stdout(), stderr: service.stderr() });
          expect(code, service.stderr()).toBe(0);
          continue;
        }
        if (argv.includes("--demo") && demoRestore === undefined) {
          // `npm start` (the demo) first: the --demo lines need its backup; small and quick. Not
          // just before a window boundary, so that status right after sees what the demo copied.
          await awayFromWindowEdge(600, 120, 20);
          const demo = await cli(["demo", "--streams", "1", "--hours", "1"], { cwd: dir });
          expect(demo.code, demo.stderr).toBe(0);
          const m = /restore --demo --source demo --stream cam1 --from (\S+) --to (\S+) --out cam1\.mp4/.exec(
            demo.stdout,
          );
          expect(m, demo.stdout).not.toBeNull();
          demoRestore = { from: m![1]!, to: m![2]! };
        }
        const range = demoRestore;
        if (command === "restore" && argv.includes("--demo") && range) {
          // The README's line has START and END: the demo prints a range of its own archive.
          argv = argv.map((w, i) =>
            argv[i - 1] === "--from" ? range.from : argv[i - 1] === "--to" ? range.to : w,
          );
        }
        const usesEndpoint = !argv.includes("--embedded") && !argv.includes("--demo");
        const r = await cli(argv, {
          cwd: dir,
          env: usesEndpoint ? env : { STREAMER1_PASSWORD: "readme-secret" },
        });
        record(argv, r);
        if (command === "restore" && !hasFfmpeg) {
          // Documented: without ffmpeg the demo's media is synthetic and restore refuses it, saying so.
          process.stdout.write(
            "README restore line: ffprobe check skipped: ffmpeg not installed (synthetic demo media)\n",
          );
          expect(r.code).toBe(1);
          expect(r.stderr).toMatch(/^restore refused: .*not decodable media/m);
          continue;
        }
        expect(r.code, `${argv.join(" ")}\n${r.stdout}${r.stderr}`).toBe(0);
        if (command === "config" && sub === "check")
          expect(r.stdout).toContain("my-config.json: valid; bucket my-dvr-backup");
        if (command === "run" && argv.includes("--dry-run")) {
          expect(r.stdout).toMatch(/^Dry run: nothing queued, leased or written/m);
          expect(r.stdout).toMatch(/^streamer1 \(http:\/\/127\.0\.0\.1:\d+\): would copy \d+ window\(s\)/m);
        } else if (command === "run") {
          // A line run after others on the same backup may find everything already copied or leased.
          expect(r.stdout).toMatch(/^Copied \d+ window\(s\), .* 0 dead-lettered\)\.$/m);
          expect(r.stdout).toMatch(/^streamer1\s+cam1\s/m);
        }
        if (command === "status") expect(r.stdout).toMatch(/^demo\s+cam1\s.*100%/m);
        if (command === "verify") expect(r.stdout).toMatch(/ 0 missing, 0 corrupt, 0 unrecorded/);
        if (command === "redrive")
          expect(r.stdout).toMatch(/0 dead-lettered window\(s\) of source streamer1|Moved 0 dead-lettered/);
        if (command === "restore") {
          const out = join(dir, argv[argv.indexOf("--out") + 1]!);
          expect(existsSync(out)).toBe(true);
          if (hasFfprobe) {
            const probe = spawnSync(
              "ffprobe",
              ["-v", "error", "-show_entries", "format=duration", "-of", "json", out],
              {
                encoding: "utf8",
              },
            );
            expect(probe.status, probe.stderr).toBe(0);
            expect(Number(JSON.parse(probe.stdout).format.duration)).toBeGreaterThan(500);
          }
        }
      }
    }
    expect(ran).toBeGreaterThanOrEqual(lines.length);
  }, 180_000);
});
