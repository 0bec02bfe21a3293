/**
 * The program as a user runs it (the installed binary, real argv, a child process) against the
 * Flussonic simulator and the embedded emulator (`--embedded dir`): config, run --dry-run, run
 * --once, status --json, verify, restore, and what the user sees of them: exit codes, the summary,
 * the objects byte for byte. (pause/resume, redrive and the service: endpoints.test.ts; the README's
 * lines and the demo: readme.test.ts.)
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  awayFromWindowEdge,
  awsClients,
  bucketSnapshot,
  type CliResult,
  cli,
  objectBytes,
  queueCounts,
  windowsIn,
} from "../../dev/kit/cli-process.ts";
import { startEmbedded } from "../../local/embedded.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";

const hasFfmpeg = spawnSync("ffmpeg", ["-version"], { stdio: "ignore" }).status === 0;
const hasFfprobe = spawnSync("ffprobe", ["-version"], { stdio: "ignore" }).status === 0;

describe("the CLI with the embedded emulator (--embedded dir)", () => {
  let dir: string;
  let sim: FlussonicSimulator;
  let configFile: string;
  const state = "state";
  const bucket = "cli-backup";

  /** The emulator state the CLI left, opened in this process (no CLI runs meanwhile). */
  async function inspect<T>(
    fn: (c: ReturnType<typeof awsClients>) => Promise<T>,
    stateDir = state,
  ): Promise<T> {
    const emulator = await startEmbedded(join(dir, stateDir));
    const c = awsClients(emulator.endpoints.s3Endpoint!);
    try {
      return await fn(c);
    } finally {
      c.close();
      await emulator.stop();
    }
  }

  /**
   * The state every test after the dry run reads: a dry run, then `run --once`, in `state`; done
   * once per file by whichever test needs it first, so that each test runs alone or in any order.
   */
  let backup: Promise<{ dryRunWindows: number[]; run: CliResult }> | undefined;
  function backedUp() {
    backup ??= (async () => {
      const dry = await cli(["run", "-c", configFile, "--embedded", state, "--dry-run"], { cwd: dir });
      expect(dry.code, dry.stderr).toBe(0);
      // Window ends: the oldest window starts at the retention start, which moves with the clock.
      const dryRunWindows = [...dry.stdout.matchAll(/^ {4}(\S+Z) \+(\d+)s$/gm)].map(
        (m) => Date.parse(m[1]!) / 1000 + Number(m[2]),
      );
      await awayFromWindowEdge(600, 120, 40);
      const run = await cli(["run", "-c", configFile, "--embedded", state, "--once"], { cwd: dir });
      return { dryRunWindows, run };
    })();
    return backup;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fb-cli-embedded-"));
    sim = await FlussonicSimulator.start({
      streams: 2,
      // The source keeps 43 min; the backup 29 min, so what it copied stays at the source for the comparison.
      days: 0.03,
      bitrateBps: 8000,
      seed: 7,
      ...(hasFfmpeg ? { media: "real" as const } : {}),
    });
    configFile = join(dir, "cams.json");
    writeFileSync(
      configFile,
      JSON.stringify({
        bucket,
        sources: [
          {
            name: "cams",
            url: sim.url,
            streams: ["cam1", { name: "cam2", format: "ts" }],
            retentionDays: 0.02,
            maxConcurrentCopies: 2,
            maxBandwidthMbps: 100,
          },
        ],
      }),
    );
  });

  afterAll(async () => {
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("config check: valid, with the bucket and the sources; config schema: the shipped JSON Schema", async () => {
    const [r, schema] = await Promise.all([
      cli(["config", "check", configFile], { cwd: dir }),
      cli(["config", "schema"], { cwd: dir }),
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${configFile}: valid; bucket ${bucket}`);
    expect(r.stdout).toContain("cams (2 stream(s))");
    expect(schema.code).toBe(0);
    expect(JSON.parse(schema.stdout)).toEqual(
      JSON.parse(readFileSync(join(import.meta.dirname, "../../config/schema.json"), "utf8")),
    );
  });

  it("run --dry-run: lists per stream what would be copied and creates nothing", async () => {
    const dryState = "state-dry-run"; // its own: the other tests' state may exist already
    const r = await cli(["run", "-c", configFile, "--embedded", dryState, "--dry-run"], { cwd: dir });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`bucket "${bucket}" does not exist yet`);
    expect(r.stdout).toMatch(/cams \(http:\/\/127\.0\.0\.1:\d+\): would copy [1-9]\d* window\(s\)/);
    expect(r.stdout).toMatch(/ {2}cam1: [1-9]\d* window\(s\)/);
    expect(r.stdout).toMatch(/ {2}cam2: [1-9]\d* window\(s\)/);
    expect(r.stdout).toMatch(/at the cap of 100 Mbit\/s/);
    expect(r.stdout).toMatch(/^ {4}\S+Z \+\d+s$/m);
    // The race with the source's retention: each stream's margin and the seconds at risk.
    expect(r.stdout).toMatch(
      /^ {4}margin \S.*: the source deletes the oldest second not backed up at \S+Z \(source keeps .+, from its expiration\)$/m,
    );
    expect(r.stdout).toMatch(/^ {4}at risk: none$/m);
    await inspect(async ({ s3, sqs }) => {
      expect(await bucketSnapshot(s3, bucket)).toBeUndefined();
      expect(await queueCounts(sqs)).toEqual({});
    }, dryState);
  });

  it("run --once: copies every due second byte for byte and prints the summary (exit 0)", async () => {
    const { dryRunWindows, run: r } = await backedUp();
    expect(dryRunWindows.length).toBeGreaterThan(0);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Copied [1-9]\d* window\(s\), .* 0 dead-lettered\)\.$/m);
    expect(r.stdout).toMatch(/^cams\s+cam1\s+.*\s100%/m);
    expect(r.stdout).toMatch(/^cams\s+cam2\s+.*\s100%/m);
    const copied = await inspect(async ({ s3 }) => {
      const objects = (await bucketSnapshot(s3, bucket))!;
      const out: number[] = [];
      for (const [stream, ext] of [
        ["cam1", "mp4"],
        ["cam2", "ts"],
      ] as const) {
        const windows = windowsIn(objects.keys(), `flussonic/cams/${stream}/`);
        expect(windows.length, stream).toBeGreaterThan(0);
        for (const w of windows) {
          expect(w.key.endsWith(`.${ext}`)).toBe(true);
          const got = await objectBytes(s3, bucket, w.key);
          expect(got.equals(sim.body(stream, w.from, w.duration, ext)), w.key).toBe(true);
          out.push(w.from + w.duration);
        }
      }
      return out;
    });
    // What the dry run listed is what the run copied (compared by window end), but for a window the
    // retention start (0.02 days ago) has passed meanwhile: that one is no longer due.
    const retentionStart = Date.now() / 1000 - 0.02 * 86_400;
    for (const w of dryRunWindows) if (w > retentionStart + 1) expect(copied).toContain(w);
  }, 120_000);

  it("status --json: every due second is backed up, queues empty (exit 0)", async () => {
    await backedUp();
    // Status must see the due windows a run saw: one more run (copying only what became due since).
    // A simulated range can also close between the run and the status (its gaps follow the clock),
    // making its last short window due just after the run: then one more run copies it.
    let r = { code: -1, stdout: "", stderr: "" };
    for (let attempt = 0; attempt < 2 && r.code !== 0; attempt++) {
      await awayFromWindowEdge(600, 120, 40);
      const again = await cli(["run", "-c", configFile, "--embedded", state, "--once"], { cwd: dir });
      expect(again.code, again.stderr).toBe(0);
      r = await cli(["status", "-c", configFile, "--embedded", state, "--json"], { cwd: dir });
    }
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const status = JSON.parse(r.stdout);
    expect(status.bucket).toBe(bucket);
    const source = status.sources[0];
    expect(source.source).toBe("cams");
    expect(source.queue).toEqual({ queued: 0, inFlight: 0, deadLettered: 0 });
    expect(source.streams.map((s: { stream: string }) => s.stream)).toEqual(["cam1", "cam2"]);
    for (const st of source.streams) {
      expect(st.coverage.missing, st.stream).toEqual([]);
      expect(st.coverage.dueSeconds).toBeGreaterThan(0);
      expect(st.coverage.coveredSeconds).toBe(st.coverage.dueSeconds);
      expect(st.windows).toBeGreaterThan(0);
    }
  }, 120_000);

  it("verify: every stored window intact (exit 0)", async () => {
    await backedUp();
    const r = await cli(["verify", "-c", configFile, "--embedded", state], { cwd: dir });
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(
      /^Verified ([1-9]\d*) recorded window\(s\) in 2 stream\(s\): \1 intact, 0 missing, 0 corrupt, 0 unrecorded/m,
    );
  }, 120_000);

  it("restore: one file of the range, TS byte for byte", async () => {
    await backedUp();
    const stored = await inspect(async ({ s3 }) => {
      const objects = (await bucketSnapshot(s3, bucket))!;
      return windowsIn(objects.keys(), "flussonic/cams/cam2/");
    });
    // One run of windows without a gap between them: the simulated source has gaps that follow the
    // clock, and a range across one is refused (restore's hole rule, tested elsewhere).
    const runs: (typeof stored)[] = [];
    for (const w of stored) {
      const run = runs.at(-1);
      const end = run?.at(-1);
      if (run && end && end.from + end.duration === w.from) run.push(w);
      else runs.push([w]);
    }
    const windows = runs.reduce((a, b) => (b.length > a.length ? b : a));
    const first = windows[0]!;
    const last = windows.at(-1)!;
    const from = first.from + 1;
    const to = last.from + last.duration - 1;
    const out = join(dir, "cam2.ts");
    const iso = (s: number) => new Date(s * 1000).toISOString();
    const r = await cli(
      ["restore", "-c", configFile, "--embedded", state, "--source", "cams", "--stream", "cam2"].concat([
        "--from",
        iso(from),
        "--to",
        String(to),
        "--out",
        out,
      ]),
      { cwd: dir },
    );
    expect(r.code, r.stderr).toBe(0);
    const expected = Buffer.concat(windows.map((w) => sim.body("cam2", w.from, w.duration, "ts")));
    expect(readFileSync(out).equals(expected)).toBe(true);
  }, 120_000);

  it("restore: an MP4 of the range that ffprobe plays", async (ctx) => {
    ctx.skip(
      !hasFfmpeg || !hasFfprobe,
      "ffmpeg/ffprobe not installed: the simulator serves synthetic bytes, which ffprobe cannot play",
    );
    await backedUp();
    const mp4 = join(dir, "cam1.mp4");
    const cam1 = await inspect(async ({ s3 }) =>
      windowsIn((await bucketSnapshot(s3, bucket))!.keys(), "flussonic/cams/cam1/"),
    );
    // A minute inside one window (the newest of the longest): a short last window would put the
    // range across a gap of the simulated source.
    const longest = cam1.reduce((a, b) => (b.duration >= a.duration ? b : a));
    const end = longest.from + longest.duration;
    const m = await cli(
      ["restore", "-c", configFile, "--embedded", state, "--source", "cams", "--stream", "cam1"].concat([
        "--from",
        String(end - 120),
        "--to",
        String(end - 60),
        "--out",
        mp4,
      ]),
      { cwd: dir },
    );
    expect(m.code, m.stderr).toBe(0);
    const probe = spawnSync(
      "ffprobe",
      ["-v", "error", "-show_entries", "format=duration", "-of", "json", mp4],
      {
        encoding: "utf8",
      },
    );
    expect(probe.status, probe.stderr).toBe(0);
    const seconds = Number(JSON.parse(probe.stdout).format.duration);
    expect(seconds).toBeGreaterThan(58);
    expect(seconds).toBeLessThan(63);
  }, 120_000);
});
