/**
 * Figure 9: a fleet of small streams backed up by one `flussonic-backup run --once` process (the
 * real command line, the emulator in its own process): 300 streams that started recording 50
 * minutes ago (about 1,800 windows of 1 MB), and 3,000 streams that started 20 minutes ago, each kept
 * a day by the source (so no window is in a race with the source's retention: the run copies the
 * whole backlog, as a new deployment does, and every run copies the same windows). Measures windows
 * per second (copied / the process's wall time), the process's peak RSS and CPU, the CPU the
 * emulator and the simulator spent per window (they share the 2 cores), the most copies the process
 * ran at once (from its --log-windows lines: each copied window's end and duration) and the most
 * downloads the source had open at once (the simulator's request log) against the source's
 * maxConcurrentCopies (8).
 *
 * With `--before <checkout>`, the same runs with that checkout's command line first.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DeleteObjectsCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { ensureBucket } from "../../functions/queue/source-queues.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";
import { type BenchContext, processCpuSeconds } from "./bench-context.ts";
import { type FigureResult, verdict } from "./figures.ts";
import { runChild } from "./processes.ts";

const BUCKET = "bench-fleet";
/** About 1 MB a 600-s window (1.7 GiB over 1,800 windows, as the issue measured). */
const BITRATE_BPS = 13_600;
const COPIES = 8;
const RSS_LIMIT_KIB = 200 * 1024;
const MIN_WINDOWS_PER_SECOND = 50;

interface FleetCase {
  label: string;
  streams: number;
  minutes: number;
}

export interface FleetRun {
  checkout: string;
  label: string;
  streams: number;
  windows: number;
  bytes: number;
  seconds: number;
  peakRssKiB: number;
  cpuSeconds: number;
  /** Most archive downloads the source had open at once. */
  peakDownloads: number;
  /** Most copies the process ran at once (from its "window copied" lines). */
  peakCopies: number;
  /** CPU seconds of the emulator process during the run (S3 and SQS answers). */
  emulatorCpuSeconds: number;
  /** CPU seconds of the bench process during the run: the simulator answering. */
  simulatorCpuSeconds: number;
  load: number;
  summary: string;
}

/** Most intervals open at once. */
function peakOverlap(intervals: { startedAt: number; endedAt: number }[]): number {
  const edges = intervals.flatMap((i) => [
    { t: i.startedAt, d: 1 },
    { t: i.endedAt, d: -1 },
  ]);
  edges.sort((a, b) => a.t - b.t || a.d - b.d);
  let open = 0;
  let peak = 0;
  for (const e of edges) {
    open += e.d;
    peak = Math.max(peak, open);
  }
  return peak;
}

const LOG_LAG_MS = 10;

/**
 * Each copied window's span, from the "window copied" log lines: the line's time (ms) less the
 * seconds the copy took. The line is written a few milliseconds after the copy ended and the next
 * copy may start meanwhile: each span is taken to end LOG_LAG_MS before its line.
 */
function copyIntervals(log: string): { startedAt: number; endedAt: number }[] {
  const out: { startedAt: number; endedAt: number }[] = [];
  for (const m of log.matchAll(/^(\S+Z) INFO\s+window copied .*?\bseconds=([\d.]+)/gm)) {
    const loggedAt = Date.parse(m[1]!);
    out.push({ startedAt: loggedAt - Number(m[2]) * 1000, endedAt: loggedAt - LOG_LAG_MS });
  }
  return out;
}

async function emptyBucket(ctx: BenchContext): Promise<void> {
  for (;;) {
    const listed = await ctx.s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    const keys = (listed.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (keys.length === 0) return;
    await ctx.s3.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: keys } }));
  }
}

async function runFleet(ctx: BenchContext, checkout: string, main: string, c: FleetCase): Promise<FleetRun> {
  // Recording since `minutes` ago, kept a day: bitrates spread as the simulator's generated streams'.
  const startedAt = Math.floor(Date.now() / 1000) - c.minutes * 60;
  const sim = await FlussonicSimulator.start({
    streams: Array.from({ length: c.streams }, (_, i) => ({
      name: `cam${i + 1}`,
      bitrateBps: Math.round(BITRATE_BPS * (0.5 + (i % 5) * 0.25)),
      ranges: [{ from: startedAt, to: Number.POSITIVE_INFINITY }],
      depthSeconds: 86_400,
    })),
    days: 1,
    liveOnlyStreams: 0,
    seed: 9,
  });
  const dir = mkdtempSync(join(tmpdir(), "fb-fleet-"));
  const config = join(dir, "config.json");
  const prefix = `${checkout}-${c.label}/`.replace(/[^\w/-]/g, "");
  writeFileSync(
    config,
    JSON.stringify({
      bucket: BUCKET,
      prefix,
      sources: [
        {
          name: "fleet",
          url: sim.url,
          retentionDays: 1,
          maxConcurrentCopies: COPIES,
          maxBandwidthMbps: 10_000,
        },
      ],
    }),
  );
  const e = ctx.emulator.endpoints;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_ENDPOINT_URL_S3: e.s3Endpoint,
    AWS_ENDPOINT_URL_SQS: e.sqsEndpoint,
    AWS_REGION: e.region,
    AWS_ACCESS_KEY_ID: e.credentials?.accessKeyId ?? "embedded",
    AWS_SECRET_ACCESS_KEY: e.credentials?.secretAccessKey ?? "embedded",
  };
  delete env.AWS_PROFILE;
  delete env.AWS_SESSION_TOKEN;
  const timeFile = join(dir, "time.txt");
  const useTime = existsSync("/usr/bin/time");
  // BENCH_FLEET_NODE="--heap-prof --heap-prof-dir=/tmp/x": node flags for the measured process.
  const nodeFlags = process.env.BENCH_FLEET_NODE?.split(" ").filter(Boolean) ?? [];
  const args = [...nodeFlags, main, "run", "--once", "--log-windows", "--config", config];
  const load = loadavg()[0] ?? 0;
  const emulatorCpu0 = processCpuSeconds(ctx.emulator.pid);
  const benchCpu0 = process.cpuUsage();
  try {
    ctx.progress(`fleet (${checkout}): run --once over ${c.streams} streams of ${c.minutes} min`);
    const run = useTime
      ? await runChild("/usr/bin/time", ["-f", "%M %U %S", "-o", timeFile, process.execPath, ...args], {
          env,
        })
      : await runChild(process.execPath, args, { env });
    if (run.code !== 0) {
      throw new Error(`run --once exited with ${run.code}: ${(run.stderr || run.stdout).trim().slice(-600)}`);
    }
    const [rss, user, sys] = useTime
      ? (readFileSync(timeFile, "utf8").trim().split("\n").at(-1) ?? "0 0 0").split(" ").map(Number)
      : [0, 0, 0];
    const copied = Number(/Copied (\d+) window\(s\)/.exec(run.stdout)?.[1] ?? "0");
    const emulatorCpuSeconds = processCpuSeconds(ctx.emulator.pid) - emulatorCpu0;
    const b = process.cpuUsage(benchCpu0);
    const simulatorCpuSeconds = (b.user + b.system) / 1e6;
    const archive = sim.requests.filter((r) => r.kind === "archive");
    let bytes = 0;
    for (let token: string | undefined; ; ) {
      const listed = await ctx.s3.send(
        new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }),
      );
      bytes += (listed.Contents ?? [])
        .filter((o) => o.Key?.endsWith(".mp4"))
        .reduce((n, o) => n + (o.Size ?? 0), 0);
      token = listed.NextContinuationToken;
      if (!token) break;
    }
    return {
      checkout,
      label: c.label,
      streams: c.streams,
      windows: copied,
      bytes,
      seconds: run.seconds,
      peakRssKiB: rss ?? 0,
      cpuSeconds: (user ?? 0) + (sys ?? 0),
      peakDownloads: peakOverlap(archive),
      peakCopies: peakOverlap(copyIntervals(run.stderr)),
      emulatorCpuSeconds,
      simulatorCpuSeconds,
      load,
      summary: run.stdout.trim().split("\n")[0] ?? "",
    };
  } finally {
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
    await emptyBucket(ctx);
  }
}

export async function measureFleet(ctx: BenchContext, before?: string): Promise<FigureResult> {
  await ensureBucket(ctx.s3, BUCKET);
  // BENCH_FLEET="100x50,300x50" (streams x minutes): other sizes, for iterating on a change.
  const custom = process.env.BENCH_FLEET?.split(",").map((c) => {
    const [streams, minutes] = c.split("x").map(Number);
    return { label: `${streams} streams`, streams: streams ?? 0, minutes: minutes ?? 0 };
  });
  const cases: FleetCase[] = custom
    ? custom
    : ctx.smoke
      ? [{ label: "10 streams", streams: 10, minutes: 40 }]
      : [
          { label: "300 streams", streams: 300, minutes: 50 },
          { label: "3,000 streams", streams: 3000, minutes: 20 },
        ];
  const here = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));
  const runs: FleetRun[] = [];
  for (const c of cases) {
    if (before) runs.push(await runFleet(ctx, "before", join(before, "cli", "main.ts"), c));
    runs.push(await runFleet(ctx, "after", here, c));
  }
  const rows: FigureResult["rows"] = [];
  for (const r of runs) {
    const tag = `${before ? `${r.checkout}: ` : ""}${r.label}`;
    const rate = r.windows / r.seconds;
    rows.push({
      figure: 9,
      what: `${tag}: windows/s (${r.windows} windows, ${(r.bytes / 1024 ** 3).toFixed(2)} GiB)`,
      measured: `${rate.toFixed(1)} (${r.seconds.toFixed(0)} s, ${((r.cpuSeconds / Math.max(1, r.windows)) * 1000).toFixed(0)} ms CPU a window)`,
      target: `>= ${MIN_WINDOWS_PER_SECOND}`,
      verdict: verdict(rate >= MIN_WINDOWS_PER_SECOND),
    });
    rows.push({
      figure: 9,
      what: `${tag}: run --once peak RSS`,
      measured: `${(r.peakRssKiB / 1024).toFixed(0)} MiB`,
      target: "< 200 MiB",
      verdict: verdict(r.peakRssKiB > 0 && r.peakRssKiB < RSS_LIMIT_KIB),
    });
    const perWindow = (seconds: number) => `${((seconds / Math.max(1, r.windows)) * 1000).toFixed(0)} ms`;
    rows.push({
      figure: 9,
      what: `${tag}: CPU a window of the emulator (S3, SQS) and of the simulator`,
      measured: `${perWindow(r.emulatorCpuSeconds)} and ${perWindow(r.simulatorCpuSeconds)}`,
      target: "",
      verdict: "info",
    });
    rows.push({
      figure: 9,
      what: `${tag}: most copies at once (allowed ${COPIES})`,
      measured: String(r.peakCopies),
      target: `${COPIES}`,
      verdict: "info",
    });
    rows.push({
      figure: 9,
      what: `${tag}: most downloads open at once (allowed ${COPIES})`,
      measured: String(r.peakDownloads),
      target: `${COPIES}`,
      verdict: "info",
    });
  }
  return {
    figure: 9,
    title: "A fleet of small streams",
    rows,
    details: { runs, bitrateBps: BITRATE_BPS, copies: COPIES },
    notes: [
      `One source of N simulated streams at ${BITRATE_BPS / 1000} kbit/s on average (about 1 MB a 600-s window), recording since 50 (20) minutes and kept a day by the source, maxConcurrentCopies ${COPIES}, uncapped; the real run --once --log-windows process against the emulator in its own process; the simulator runs in the bench's process. "Most copies at once" is the copier's concurrency (from the log lines); "most downloads open at once" is the simulator's view, where a 1 MB download is a few milliseconds of a copy. Wall time includes start-up, every planning round and the summary; peak RSS and CPU from /usr/bin/time. The machine's 1-minute load average at each start is in the JSON (load): 2 cores shared with the simulator, the emulator and other work.`,
    ],
  };
}
