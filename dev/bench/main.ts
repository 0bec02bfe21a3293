/**
 * `npm run bench`: the benchmark suite of the source-protection promise, measured in one run on this
 * machine with the Flussonic simulator and the embedded S3/SQS emulator (in its own process):
 *   1. cap accuracy (source-side peak concurrency, max bytes/s over 1 s and 10 s; rclone beside us)
 *   2. cap efficiency (average / cap while capped)
 *   3. uncapped speed of a 1 GiB window against rclone copyurl
 *   4. copier peak RSS for a 2 GiB and a 200 MiB window
 *   5. planner CPU and requests over 10,000 streams x 30 days
 *   6. small windows (below the kernel buffers): 2 Mbit/s, 2 copies, with and without Range; rclone beside us
 *   8. requests per window and overhead over storage for the reference stream (2 Mbit/s, 600-s windows)
 *   9. a fleet of small streams (300 and 3,000) in one run --once: windows/s, peak RSS, downloads at once
 * Prints a table (target and PASS/MISS per row) and writes JSON (default bench-results/latest.json)
 * and, unless `--smoke`, the figures it measured into docs/bench-results.md (results-page.ts).
 *
 *   npm run bench [-- --smoke] [-- --out file.json] [-- --only 1,3] [-- --ranges] [-- --before <checkout>]
 *   [-- --capture]
 * Figure 7 (S3 requests per playback request at ten years of retention) runs only with `--only 7`,
 * figure 9 (the fleet: about 15 minutes a run on a loaded 2-core machine) only with `--only 9`.
 * `--ranges`: the sources of figures 1 and 2 answer Range, so the copies read in paced slices.
 * `--capture`: figure 6 also measures each case from the packets the source sent (tcpdump on the
 * loopback interface, dev/bench/packet-capture.ts; root or CAP_NET_RAW), beside the source's meter.
 * `--before <checkout>`: figures 8 and 9 also run the command line of that checkout (an earlier commit, its
 * node_modules installed) first, for its "before" rows.
 * `--smoke` (or BENCH_SMOKE=1) runs every figure at small sizes in seconds: it checks that the bench
 * works, its figures mean nothing.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createS3Client } from "../../local/aws-clients.ts";
import { startEmulatorProcess } from "../kit/emulator-process.ts";
import type { BenchContext } from "./bench-context.ts";
import { measureCapAccuracy } from "./cap-accuracy.ts";
import { measureCopierMemory } from "./copier-memory.ts";
import { measureCopySpeed } from "./copy-speed.ts";
import { type FigureResult, resultsTable } from "./figures.ts";
import { measureFleet } from "./fleet.ts";
import { captureUnavailable } from "./packet-capture.ts";
import { measurePlannerScale } from "./planner-scale.ts";
import { measurePlaybackRequests } from "./playback-requests.ts";
import { rcloneUnavailable, rcloneVersion } from "./processes.ts";
import { measureReferenceCost } from "./reference-cost.ts";
import { resultsPage } from "./results-page.ts";
import { measureSmallWindows } from "./small-windows.ts";

const { values } = parseArgs({
  options: {
    smoke: { type: "boolean", default: false },
    out: { type: "string" },
    only: { type: "string" },
    ranges: { type: "boolean", default: false },
    before: { type: "string" },
    capture: { type: "boolean", default: false },
  },
});
const smoke = values.smoke || process.env.BENCH_SMOKE === "1";
const repo = fileURLToPath(new URL("../..", import.meta.url));
const outDir = join(repo, "bench-results");
const outFile = resolve(values.out ?? join(outDir, smoke ? "smoke.json" : "latest.json"));
const only = new Set((values.only ?? "1,2,3,4,5,6,8").split(",").map((s) => Number(s.trim())));

const progress = (line: string) =>
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
mkdirSync(outDir, { recursive: true });
mkdirSync(dirname(outFile), { recursive: true });

const stateDir = mkdtempSync(join(tmpdir(), "fb-bench-"));
const freeGiB = (() => {
  const s = statfsSync(stateDir);
  return (s.bavail * s.bsize) / 1024 ** 3;
})();
progress(
  `${smoke ? "smoke run" : "full run"}; emulator state in ${stateDir} (${freeGiB.toFixed(0)} GiB free)`,
);
if (!smoke && freeGiB < 8) {
  progress("warning: the full run needs about 6 GiB of free disk for the emulator's objects and parts");
}

const started = performance.now();
const startedAt = new Date().toISOString();
const loadAtStart = loadavg()[0] ?? 0;
/** The code measured: the commit when the run starts (edits made while it runs are not in it). */
const commit = gitCommit();
const emulator = await startEmulatorProcess({ dir: stateDir });
const s3 = createS3Client(emulator.endpoints);
const rclone = rcloneUnavailable();
if (rclone) progress(`rclone rows are skipped: ${rclone}`);
const captureSkip = values.capture ? captureUnavailable() : undefined;
if (captureSkip) progress(`figure 6's packet rows are skipped: ${captureSkip}`);
const ctx: BenchContext = {
  smoke,
  emulator,
  s3,
  rcloneUnavailable: rclone,
  outDir,
  progress,
  ranges: values.ranges,
  ...(values.capture ? { capture: captureSkip ?? true } : {}),
};

const figures: FigureResult[] = [];
let failed = false;
const measure = async (ids: number[], title: string, fn: () => Promise<FigureResult | FigureResult[]>) => {
  if (!ids.some((id) => only.has(id))) return;
  try {
    const got = await fn();
    figures.push(...(Array.isArray(got) ? got : [got]));
  } catch (error) {
    failed = true;
    const message = error instanceof Error ? error.message : String(error);
    progress(`${title} failed: ${message}`);
    for (const id of ids) {
      figures.push({
        figure: id,
        title,
        rows: [
          {
            figure: id,
            what: `${title}: failed`,
            measured: message.slice(0, 80),
            target: "-",
            verdict: "MISS",
          },
        ],
        details: { error: message },
        notes: [],
      });
    }
  }
};

try {
  await measure([1, 2], "cap accuracy and efficiency", () => measureCapAccuracy(ctx));
  await measure([3], "uncapped copy speed", () => measureCopySpeed(ctx));
  await measure([4], "copier memory", () => measureCopierMemory(ctx));
  await measure([5], "planner scale", () => measurePlannerScale(ctx));
  await measure([6], "small windows", () => measureSmallWindows(ctx));
  await measure([7], "S3 requests per playback request", () => measurePlaybackRequests(ctx));
  await measure([8], "overhead over storage", () => measureReferenceCost(ctx, values.before));
  await measure([9], "a fleet of small streams", () => measureFleet(ctx, values.before));
} finally {
  s3.destroy();
  await emulator.stop();
  rmSync(stateDir, { recursive: true, force: true });
}

const table = resultsTable(figures);
const seconds = (performance.now() - started) / 1000;
const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? "?"}), ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}, ${rclone ? "no rclone" : rcloneVersion()}`;
process.stdout.write(
  `\nflussonic-backup benchmark${smoke ? " (smoke: sizes too small to mean anything)" : ""}\n`,
);
process.stdout.write(`${machine}; ${seconds.toFixed(0)} s\n\n${table}\n`);
const notes = figures.flatMap((f) => f.notes.map((n) => `${f.figure}. ${n}`));
if (notes.length > 0) process.stdout.write(`\nNotes:\n${notes.map((n) => `- ${n}`).join("\n")}\n`);
writeFileSync(
  outFile,
  `${JSON.stringify({ at: startedAt, smoke, machine, node: process.version, commit, seconds, table, figures }, null, 2)}\n`,
);
process.stdout.write(`\nJSON: ${outFile}\n`);
if (!smoke) {
  const page = join(repo, "docs", "bench-results.md");
  const previous = existsSync(page) ? readFileSync(page, "utf8") : undefined;
  const run = {
    at: startedAt,
    machine: `${cpus().length} cores (${cpus()[0]?.model.trim() ?? "?"}), ${(totalmem() / 1024 ** 3).toFixed(0)} GiB`,
    node: process.version,
    commit,
    load: loadAtStart,
    rclone: rclone ? `no rclone (${rclone})` : rcloneVersion(),
    flags: [...(values.ranges ? ["--ranges"] : []), ...(values.capture ? ["--capture"] : [])],
  };
  writeFileSync(page, resultsPage(previous, figures, run));
  process.stdout.write(`Results page: ${page}\n`);
}
process.exitCode = failed ? 1 : 0;

/** The checkout's short commit, with `-dirty` when tracked files differ from it. */
function gitCommit(): string {
  try {
    const git = (...args: string[]) => execFileSync("git", args, { cwd: repo, encoding: "utf8" }).trim();
    const hash = git("rev-parse", "--short", "HEAD");
    return git("status", "--porcelain", "--untracked-files=no") === "" ? hash : `${hash}-dirty`;
  } catch {
    return "unknown (not a git checkout)";
  }
}
