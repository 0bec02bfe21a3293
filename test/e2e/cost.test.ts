/**
 * `flussonic-backup cost` as a user runs it (the real binary in a child process) over a backup that
 * `run --once --embedded` made: per stream the windows, bytes stored, the requests the copies
 * counted, no Lambda GB-seconds locally (said so), the month at list prices, the planner's requests
 * per source; `--json` the same.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { cli } from "../../dev/kit/cli-process.ts";
import type { CostReport } from "../../ops/cost.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";

let dir: string;
let sim: FlussonicSimulator;
let configFile: string;
let state: string;
let copied = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "fb-cli-cost-"));
  sim = await FlussonicSimulator.start({ streams: 1, days: 0.03, bitrateBps: 8000, seed: 3 });
  configFile = join(dir, "c.json");
  writeFileSync(
    configFile,
    JSON.stringify({
      bucket: "cost-backup",
      sources: [{ name: "cams", url: sim.url, streams: ["cam1"], retentionDays: 0.02 }],
    }),
  );
  state = join(dir, "state");
  const run = await cli(["run", "-c", configFile, "--embedded", state, "--once"], { cwd: dir });
  expect(run.code, run.stderr).toBe(0);
  copied = Number(/^Copied (\d+) window\(s\)/m.exec(run.stdout)?.[1] ?? "0");
  expect(copied).toBeGreaterThan(0);
});
afterAll(async () => {
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

it("prints per stream the windows, bytes, requests counted and the month; --json the same numbers", async () => {
  const text = await cli(["cost", "-c", configFile, "--embedded", state], { cwd: dir });
  expect(text.code, text.stderr).toBe(0);
  expect(text.stdout).toMatch(/^Cost of the windows copied since \d{4}-\d\d-\d\dT/);
  expect(text.stdout).toMatch(
    new RegExp(`^cams\\s+cam1\\s+${copied}\\s+\\S+ \\S+ STANDARD\\s+\\d+/\\d+\\s+\\d+\\s+-\\s+\\$`, "m"),
  );
  expect(text.stdout).toMatch(/no Lambda GB-seconds/);
  expect(text.stdout).toMatch(/copies outside Lambda/);

  const json = await cli(["cost", "-c", configFile, "--embedded", state, "--json"], { cwd: dir });
  expect(json.code, json.stderr).toBe(0);
  const report = JSON.parse(json.stdout) as CostReport;
  const s = report.streams[0]!;
  expect(report.streams).toHaveLength(1);
  expect(s.windows).toBe(copied);
  expect(s.counted).toBe(copied);
  // Each window: at least a PutObject of its bytes and its record; a HEAD before and after.
  expect(s.requests.put).toBeGreaterThanOrEqual(2 * copied);
  expect(s.requests.get).toBeGreaterThanOrEqual(2 * copied);
  expect(s.gbSeconds).toBeUndefined();
  expect(s.month.storageUsd).toBeGreaterThan(0);
  expect(text.stdout).toContain(`${s.requests.put}/${s.requests.get}`);
  // The copier's SQS requests (the poller's receives and deletes) ride on the records.
  expect(s.requests.sqs).toBeGreaterThan(0);
  expect(text.stdout).toMatch(new RegExp(`${s.requests.put}/${s.requests.get}\\s+${s.requests.sqs}\\s`));
  // The planner's requests, per source: its first run queued the windows (SQS), a later one folded
  // the copies in and kept the counts in a catalog.
  const p = report.planner.find((x) => x.source === "cams")!;
  expect(p.runs).toBeGreaterThanOrEqual(2);
  expect(p.requests.sqs).toBeGreaterThanOrEqual(1);
  expect(p.requests.put).toBeGreaterThanOrEqual(1);
  expect(p.requests.get).toBeGreaterThanOrEqual(p.runs);
  expect(text.stdout).toContain(
    `Planner of cams: ${p.runs} run(s), ${p.requests.put} PUT-class, ${p.requests.get} GET-class and ${p.requests.sqs} SQS requests`,
  );
  expect(report.total.requests.put).toBe(s.requests.put + p.requests.put);
  expect(report.total.requests.sqs).toBe(s.requests.sqs + p.requests.sqs);
});

it("--since in the future: no window; a bad --since is a usage error naming the flag", async () => {
  const none = await cli(["cost", "-c", configFile, "--embedded", state, "--since", "9999-01-01"], {
    cwd: dir,
  });
  expect(none.code, none.stderr).toBe(0);
  expect(none.stdout).toMatch(/No window copied in that time/);
  const bad = await cli(["cost", "-c", configFile, "--embedded", state, "--since", "yesterday"], {
    cwd: dir,
  });
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/--since: expected a time/);
});

it("the status page shows the cost", async () => {
  const page = join(dir, "status.html");
  const run = await cli(["status", "-c", configFile, "--embedded", state, "--html", page], { cwd: dir });
  expect(run.stderr).not.toMatch(/Error/);
  const html = readFileSync(page, "utf8");
  expect(html).toContain("<h2>Cost</h2>");
  expect(html).toMatch(/<td>cams<\/td><td>cam1<\/td><td class="num">\d+<\/td><td>[^<]+ STANDARD<\/td>/);
  expect(html).toMatch(
    /<th>planner runs<\/th>.*<td>cams<\/td><td class="num">\d+<\/td><td class="num">\d+ \/ \d+<\/td>/s,
  );
});
