/**
 * Figure 8: what the backup costs beyond its bytes for the reference stream of docs/cost.md
 * (2 Mbit/s, 600-s windows of about 150 MB, 7 days kept, the default cap of 100 Mbit/s over 2
 * copies): the real `flussonic-backup run --once` process backs up a few windows of it through an
 * HTTP hop in front of the emulator that counts every S3 and SQS request by operation; a second
 * `run --once` over the same state (nothing new) is an idle planner run. From those counts, the
 * copy's wall time at the cap (Lambda GB-seconds) and list prices (functions/domain/prices.ts),
 * the month's overhead (requests + Lambda + SQS + planner) over the month's storage.
 *
 * With `--before <checkout>` (a checkout of an earlier commit, its node_modules installed), the same
 * runs are made with that checkout's command line first: the "before" rows. Without it, "before" is
 * this command line with `spoolMiB: 0` (windows through memory buffers in parts, as before the spool).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DeleteObjectsCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import {
  byClass,
  LIST_PRICES,
  lambdaCost,
  type RequestCounts,
  requestsCost,
  storageCostPerMonth,
} from "../../functions/domain/prices.ts";
import { ensureBucket } from "../../functions/queue/source-queues.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";
import { HttpHop } from "../kit/http-hop.ts";
import type { BenchContext } from "./bench-context.ts";
import { type FigureResult, verdict } from "./figures.ts";
import { runChild } from "./processes.ts";

const BUCKET = "bench-cost";
const BITRATE_BPS = 2_000_000;
const WINDOW_SECONDS = 600;
/** Windows a month of one stream (30 days). */
const WINDOWS_PER_MONTH = (30 * 86_400) / WINDOW_SECONDS;
/** The planner runs every 5 minutes (the default schedule). */
const PLANNER_RUNS_PER_MONTH = (30 * 86_400) / 300;
/** docs/cost.md: windows kept ceil(7) + 1 days, then `noncurrentVersionDays` as old versions. */
const KEPT_DAYS = 8;
const COPIES = 2;
const CAP_MBPS = 100;
/** The copier Lambda's memory: 512 (before), 256 (infra/backup-stack.ts), 128 (the smallest). */
const LAMBDA_MB = [512, 256, 128];
const PLANNER_MB = 256;
const PLANNER_SECONDS_PER_STREAM = 0.2;

/** S3/SQS requests by operation (`sqs:<Action>` for SQS), split by what they touch. */
interface Counts {
  window: Record<string, number>;
  bookkeeping: Record<string, number>;
  sqs: Record<string, number>;
  /**
   * What run --once does when it starts and a Lambda run does not: the S3 feature probe
   * (local/s3-features.ts), the bucket's check, the queues' creation. Counted, left out of the month.
   */
  startup: Record<string, number>;
}

/** The S3 operation of a request as the hop sees it (method, query, headers). */
export function s3Operation(req: IncomingMessage): string {
  const url = new URL(req.url ?? "/", "http://hop");
  const q = url.searchParams;
  switch (req.method) {
    case "HEAD":
      return url.pathname.split("/").filter(Boolean).length <= 1 ? "HeadBucket" : "HeadObject";
    case "GET":
      if (q.has("list-type")) return "ListObjectsV2";
      if (q.has("uploads")) return "ListMultipartUploads";
      if (q.has("versions")) return "ListObjectVersions";
      return url.pathname.split("/").filter(Boolean).length <= 1 ? "GetBucket" : "GetObject";
    case "PUT":
      if (q.has("partNumber")) return "UploadPart";
      if (req.headers["x-amz-copy-source"]) return "CopyObject";
      return url.pathname.split("/").filter(Boolean).length <= 1 ? "PutBucket" : "PutObject";
    case "POST":
      if (q.has("uploads")) return "CreateMultipartUpload";
      if (q.has("uploadId")) return "CompleteMultipartUpload";
      if (q.has("delete")) return "DeleteObjects";
      return "PostObject";
    case "DELETE":
      return q.has("uploadId") ? "AbortMultipartUpload" : "DeleteObject";
    default:
      return req.method ?? "?";
  }
}

async function countingHop(
  target: string,
): Promise<{ hop: HttpHop; counts: () => Counts; reset: () => void }> {
  let counts: Counts = { window: {}, bookkeeping: {}, sqs: {}, startup: {} };
  const add = (m: Record<string, number>, op: string) => {
    m[op] = (m[op] ?? 0) + 1;
  };
  const hop = await HttpHop.start(target, (req) => {
    const amzTarget = req.headers["x-amz-target"];
    if (typeof amzTarget === "string" && amzTarget.startsWith("AmazonSQS.")) {
      const action = amzTarget.slice("AmazonSQS.".length);
      add(action === "CreateQueue" ? counts.startup : counts.sqs, `sqs:${action}`);
    } else if (/Action=/.test(req.url ?? "") || req.headers["content-type"]?.includes("x-www-form")) {
      add(counts.sqs, "sqs:query");
    } else {
      const url = new URL(req.url ?? "/", "http://hop");
      // The object's key, or the prefix a listing of uploads asks for (the window's, by the copier).
      const path = decodeURIComponent(url.pathname) + (url.searchParams.get("prefix") ?? "");
      const isWindow = /\.(mp4|ts)$/.test(path) && !path.includes("/.backup/");
      const op = s3Operation(req);
      const startup = path.includes(".flussonic-backup-probe") || op.endsWith("Bucket");
      add(isWindow ? counts.window : startup ? counts.startup : counts.bookkeeping, op);
    }
    return false;
  });
  return {
    hop,
    counts: () => counts,
    reset: () => {
      counts = { window: {}, bookkeeping: {}, sqs: {}, startup: {} };
    },
  };
}

interface RunFigures {
  /** Which command line ran: this checkout or the "before" one. */
  label: string;
  /** Reference windows' worth of bytes copied (bytes / (bitrate x 600 s)). */
  windows: number;
  /** Windows the run copied (the range's edges may be cut into a short one more). */
  copied: number;
  bytes: number;
  /** Requests of the run that copied the windows, by operation. */
  copyRun: Counts;
  /** Requests of an idle run (nothing new), by operation. */
  idleRun: Counts;
  /** Wall time of the copying run, seconds (start-up, planning, the copies at the cap, the bookkeeping). */
  seconds: number;
  peakRssKiB: number;
  cpuSeconds: number;
}

async function runOnce(
  ctx: BenchContext,
  main: string,
  configFile: string,
  hopUrl: string,
): Promise<{ seconds: number; stdout: string; peakRssKiB: number; cpuSeconds: number }> {
  const e = ctx.emulator.endpoints;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_ENDPOINT_URL_S3: hopUrl,
    AWS_ENDPOINT_URL_SQS: hopUrl,
    AWS_REGION: e.region,
    AWS_ACCESS_KEY_ID: e.credentials?.accessKeyId ?? "embedded",
    AWS_SECRET_ACCESS_KEY: e.credentials?.secretAccessKey ?? "embedded",
  };
  delete env.AWS_PROFILE;
  delete env.AWS_SESSION_TOKEN;
  const dir = mkdtempSync(join(tmpdir(), "fb-cost-time-"));
  const timeFile = join(dir, "time.txt");
  const useTime = existsSync("/usr/bin/time");
  const args = [main, "run", "--once", "--config", configFile];
  const run = useTime
    ? await runChild("/usr/bin/time", ["-f", "%M %U %S", "-o", timeFile, process.execPath, ...args], { env })
    : await runChild(process.execPath, args, { env });
  try {
    if (run.code !== 0) {
      throw new Error(`run --once exited with ${run.code}: ${(run.stderr || run.stdout).trim().slice(-800)}`);
    }
    const [rss, user, sys] = useTime
      ? (readFileSync(timeFile, "utf8").trim().split("\n").at(-1) ?? "0 0 0").split(" ").map(Number)
      : [0, 0, 0];
    return {
      seconds: run.seconds,
      stdout: run.stdout,
      peakRssKiB: rss ?? 0,
      cpuSeconds: (user ?? 0) + (sys ?? 0),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function emptyPrefix(ctx: BenchContext, prefix: string): Promise<void> {
  for (;;) {
    const listed = await ctx.s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
    const keys = (listed.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (keys.length === 0) return;
    await ctx.s3.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: keys } }));
  }
}

async function measureWith(
  ctx: BenchContext,
  label: string,
  main: string,
  windows: number,
  bitrateBps: number,
  /** Top-level config fields of the run (e.g. `{ spoolMiB: 0 }`). */
  extra: Record<string, unknown> = {},
): Promise<RunFigures> {
  const now = Math.floor(Date.now() / 1000);
  // Whole windows old enough to be planned (the settle margin and the open window behind them).
  const from = Math.floor(now / WINDOW_SECONDS) * WINDOW_SECONDS - (windows + 2) * WINDOW_SECONDS;
  const sim = await FlussonicSimulator.start({
    liveOnlyStreams: 0,
    streams: [{ name: "ref", bitrateBps, ranges: [{ from, to: from + windows * WINDOW_SECONDS }] }],
  });
  const counting = await countingHop(ctx.emulator.endpoints.s3Endpoint ?? "http://127.0.0.1");
  const dir = mkdtempSync(join(tmpdir(), "fb-cost-"));
  const prefix = `${label.replace(/\W/g, "")}/`;
  const config = join(dir, "config.json");
  // The defaults but the retention: the cap (100 Mbit/s), copies at once (2), 600-s windows.
  writeFileSync(
    config,
    JSON.stringify({
      bucket: BUCKET,
      prefix,
      ...extra,
      sources: [{ name: "ref", url: sim.url, streams: ["ref"], retentionDays: 1 }],
    }),
  );
  try {
    ctx.progress(`cost (${label}): run --once backing up ${windows} reference windows at the default cap`);
    const copy = await runOnce(ctx, main, config, counting.hop.url);
    const copyRun = counting.counts();
    // The planner may cut the range's edges into one window more than asked (short ones): the
    // figures are per reference window's worth of bytes (bitrate x 600 s), below.
    const copied = Number(/Copied (\d+) window\(s\)/.exec(copy.stdout)?.[1] ?? "0");
    if (copied < windows)
      throw new Error(`run --once copied ${copied} of ${windows} windows: ${copy.stdout}`);
    counting.reset();
    ctx.progress(`cost (${label}): an idle run --once (nothing new)`);
    await runOnce(ctx, main, config, counting.hop.url);
    const idleRun = counting.counts();
    const listed = await ctx.s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
    const bytes = (listed.Contents ?? [])
      .filter((o) => o.Key?.endsWith(".mp4"))
      .reduce((n, o) => n + (o.Size ?? 0), 0);
    return {
      label,
      windows: bytes / ((bitrateBps / 8) * WINDOW_SECONDS),
      copied,
      bytes,
      copyRun,
      idleRun,
      seconds: copy.seconds,
      peakRssKiB: copy.peakRssKiB,
      cpuSeconds: copy.cpuSeconds,
    };
  } finally {
    await counting.hop.close();
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
    await emptyPrefix(ctx, prefix);
  }
}

const sum = (m: Record<string, number>) => Object.values(m).reduce((a, b) => a + b, 0);
const addCounts = (a: RequestCounts, b: RequestCounts, k = 1): RequestCounts => ({
  put: a.put + b.put * k,
  get: a.get + b.get * k,
  sqs: a.sqs + b.sqs * k,
});

/** The month of one reference stream from a run's counts. */
export function monthOf(f: RunFigures, lambdaMb: number, copies = COPIES) {
  const p = LIST_PRICES;
  const total = (c: Counts): RequestCounts =>
    addCounts(addCounts(byClass(c.window), byClass(c.bookkeeping)), byClass(c.sqs));
  const copyRun = total(f.copyRun);
  const copy = { put: copyRun.put / f.windows, get: copyRun.get / f.windows, sqs: copyRun.sqs / f.windows };
  const idle = total(f.idleRun);
  // The copying run's requests per window (its one planner run included), and an idle planner run
  // for every other run of the month: the planner runs 8,640 times, windows come 4,320 times.
  const requests = addCounts(
    addCounts({ put: 0, get: 0, sqs: 0 }, copy, WINDOWS_PER_MONTH),
    idle,
    Math.max(0, PLANNER_RUNS_PER_MONTH - WINDOWS_PER_MONTH / f.windows),
  );
  // Lambda: each window's copy lasts as long as the run's copies took (copies at once x wall time
  // / windows: start-up and planning included, so an upper bound), at `lambdaMb`.
  // Lambda: a copy lasts what the window takes at its share of the cap, or longer when the function's
  // CPU share (memory / 1,769 MB a vCPU) cannot hash and send it that fast: the CPU the run used per
  // window (start-up and planning included) over that share.
  const capSeconds = ((f.bytes / f.windows) * 8) / ((CAP_MBPS * 1e6) / copies);
  const cpuSeconds = f.cpuSeconds / f.windows / (lambdaMb / 1769);
  const copySeconds = Math.max(capSeconds, cpuSeconds);
  const gbSeconds = WINDOWS_PER_MONTH * copySeconds * (lambdaMb / 1024);
  const plannerGbSeconds = PLANNER_RUNS_PER_MONTH * PLANNER_SECONDS_PER_STREAM * (PLANNER_MB / 1024);
  const gbPerMonth = ((f.bytes / f.windows) * WINDOWS_PER_MONTH) / 1e9;
  const storage = (noncurrentDays: number) =>
    storageCostPerMonth(gbPerMonth, KEPT_DAYS + noncurrentDays, p).usd;
  const requestsUsd = requestsCost(requests, p);
  const lambdaUsd =
    lambdaCost(gbSeconds, WINDOWS_PER_MONTH, p) + lambdaCost(plannerGbSeconds, PLANNER_RUNS_PER_MONTH, p);
  return {
    perWindow: {
      s3Window: sum(f.copyRun.window) / f.windows,
      s3Bookkeeping: sum(f.copyRun.bookkeeping) / f.windows,
      sqs: sum(f.copyRun.sqs) / f.windows,
      putClass: copy.put,
      getClass: copy.get,
    },
    idleRun: { s3: sum(f.idleRun.bookkeeping) + sum(f.idleRun.window), sqs: sum(f.idleRun.sqs) },
    copySeconds,
    capSeconds,
    cpuSeconds,
    /** The local run's own wall time per window (x copies at once): the machine's, under its load. */
    localSeconds: (f.seconds * COPIES) / f.windows,
    gbSecondsPerGiB: (copySeconds * (lambdaMb / 1024)) / (f.bytes / f.windows / 1024 ** 3),
    requests,
    requestsUsd,
    lambdaUsd,
    overheadUsd: requestsUsd + lambdaUsd,
    storage30Usd: storage(30),
    storage3Usd: storage(3),
  };
}

export async function measureReferenceCost(ctx: BenchContext, before?: string): Promise<FigureResult> {
  await ensureBucket(ctx.s3, BUCKET);
  const windows = ctx.smoke ? 1 : 4;
  const bitrate = ctx.smoke ? 200_000 : BITRATE_BPS;
  const here = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));
  const runs: RunFigures[] = [];
  runs.push(
    before
      ? await measureWith(ctx, "before", join(before, "cli", "main.ts"), windows, bitrate)
      : await measureWith(ctx, "before (spoolMiB 0)", here, windows, bitrate, { spoolMiB: 0 }),
  );
  runs.push(await measureWith(ctx, "after", here, windows, bitrate));
  const rows: FigureResult["rows"] = [];
  const details: Record<string, unknown> = { windows, prices: LIST_PRICES, runs: [] as unknown[] };
  for (const f of runs) {
    const months = LAMBDA_MB.map((mb) => ({ mb, month: monthOf(f, mb) }));
    (details.runs as unknown[]).push({ ...f, months });
    const m = months[0]!.month;
    const tag = runs.length > 1 ? `${f.label}: ` : "";
    rows.push({
      figure: 8,
      what: `${tag}S3 requests per reference window (archive object + bookkeeping; PUT-class)`,
      measured: `${(m.perWindow.s3Window + m.perWindow.s3Bookkeeping).toFixed(1)} (${m.perWindow.s3Window.toFixed(1)} + ${m.perWindow.s3Bookkeeping.toFixed(1)}; ${m.perWindow.putClass.toFixed(1)})`,
      target: "-",
      verdict: "info",
    });
    rows.push({
      figure: 8,
      what: `${tag}SQS requests per window; idle planner run (S3, SQS)`,
      measured: `${m.perWindow.sqs.toFixed(1)}; ${m.idleRun.s3}, ${m.idleRun.sqs}`,
      target: "-",
      verdict: "info",
    });
    for (const { mb, month } of months) {
      const over30 = month.overheadUsd / month.storage30Usd;
      const over3 = month.overheadUsd / month.storage3Usd;
      rows.push({
        figure: 8,
        // The issue's reference is the docs' $5.47 storage line (3 days of old versions); the
        // default 30 days of old versions is shown beside it.
        what: `${tag}copier at ${mb} MB: copy s, GB-s per GiB; overhead / storage with 3-day old versions (30-day default)`,
        measured: `${month.copySeconds.toFixed(0)} s, ${month.gbSecondsPerGiB.toFixed(1)}; $${month.overheadUsd.toFixed(2)} / $${month.storage3Usd.toFixed(2)} = ${(over3 * 100).toFixed(1)}% (/ $${month.storage30Usd.toFixed(2)} = ${(over30 * 100).toFixed(1)}%)`,
        target: "< 5%",
        verdict: verdict(over3 < 0.05),
      });
    }
    // The Lambda waits on its share of the cap (paid per second): one copy at a time gets the whole cap.
    const whole = monthOf(f, 128, 1);
    (details.runs as { wholeCap?: unknown }[]).at(-1)!.wholeCap = whole;
    rows.push({
      figure: 8,
      what: `${tag}copier at 128 MB, one copy at a time (the whole ${CAP_MBPS} Mbit/s each): copy s; overhead / storage, 3-day (30-day)`,
      measured: `${whole.copySeconds.toFixed(0)} s; $${whole.overheadUsd.toFixed(2)} / $${whole.storage3Usd.toFixed(2)} = ${((whole.overheadUsd / whole.storage3Usd) * 100).toFixed(1)}% (/ $${whole.storage30Usd.toFixed(2)} = ${((whole.overheadUsd / whole.storage30Usd) * 100).toFixed(1)}%)`,
      target: "< 5%",
      verdict: verdict(whole.overheadUsd / whole.storage3Usd < 0.05),
    });
  }
  return {
    figure: 8,
    title: "Overhead over storage, reference stream",
    rows,
    details,
    notes: [
      `The reference stream: ${BITRATE_BPS / 1e6} Mbit/s, ${WINDOW_SECONDS}-s windows, kept ${KEPT_DAYS} days plus noncurrentVersionDays as old versions, the default cap (${CAP_MBPS} Mbit/s over ${COPIES} copies). ${windows} windows backed up by the real run --once through an HTTP hop that counts each S3 and SQS request; an idle run --once (nothing new) stands for each other planner run of the month (${PLANNER_RUNS_PER_MONTH} runs, ${WINDOWS_PER_MONTH} windows).`,
      `Lambda GB-seconds: a copy lasts the window's bytes at its share of the cap (${CAP_MBPS / COPIES} Mbit/s), or longer when the function's CPU share (memory / 1,769 MB) needs longer for the CPU seconds the run --once process used per window (its /usr/bin/time user + system, start-up and planning included); the local run's own wall time per window, under this machine's load, is in the JSON (localSeconds). Requests of run --once's start-up (the S3 feature probe, the bucket check, CreateQueue) are counted apart (startup) and left out: a Lambda run makes none; the idle run's other requests stand for each planner run. The planner at ${PLANNER_SECONDS_PER_STREAM} s per stream and run at ${PLANNER_MB} MB (not measured here). Prices: ${LIST_PRICES.region} list prices (functions/domain/prices.ts). Per-source fixed costs (alarms, metrics, the secret, idle queue polling) are not per stream and not in the overhead: docs/cost.md.`,
    ],
  };
}
