/**
 * Figure 8: what the backup costs beyond its bytes for the reference stream of docs/cost.md
 * (2 Mbit/s, 600-s windows of about 150 MB, 7 days kept, the default cap of 100 Mbit/s, 2 copies at
 * once), in the steady state: each step the source has recorded one window more, the real
 * `flussonic-backup run --once` process leases and copies it, and a second `run --once` finds
 * nothing new (two planner runs a window, as every 5 minutes with a window every 10), through an HTTP
 * hop in front of the emulator that counts every S3 and SQS request by operation. The window's lease
 * says what share of the cap the planner gave it in AWS (domain/cap-share.ts); the copier's own CPU
 * at that share is measured apart (window-copier.ts). From those, the copy's duration in Lambda
 * (GB-seconds) and list prices (functions/domain/prices.ts), the month's overhead (requests +
 * Lambda + SQS + planner) over the month's storage. */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DeleteObjectsCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { COPIER_NODE_FLAGS } from "../../functions/config/limits.ts";
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
import { runChild, runNodeScript } from "./processes.ts";
import type { WindowCopyInput, WindowCopyOutput } from "./window-copier.ts";

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
  /** S3 requests by operation and key shape (digits as N): which objects the requests touch. */
  keys?: Record<string, number>;
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

async function countingHop(target: string): Promise<{
  hop: HttpHop;
  counts: () => Counts;
  reset: () => void;
  /** The copies sharing the cap each queued message says (domain/cap-share.ts; 0: the default). */
  shares: number[];
}> {
  let counts: Counts = { window: {}, bookkeeping: {}, sqs: {}, startup: {} };
  const shares: number[] = [];
  const add = (m: Record<string, number>, op: string) => {
    m[op] = (m[op] ?? 0) + 1;
  };
  const hop = await HttpHop.start(target, (req, _res, forward) => {
    const amzTarget = req.headers["x-amz-target"];
    if (typeof amzTarget === "string" && amzTarget.startsWith("AmazonSQS.")) {
      const action = amzTarget.slice("AmazonSQS.".length);
      add(action === "CreateQueue" ? counts.startup : counts.sqs, `sqs:${action}`);
      if (action === "SendMessageBatch") {
        // Read the messages the planner queued for the share it gave each, then forward them.
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
          const body = Buffer.concat(chunks);
          try {
            const batch = JSON.parse(body.toString("utf8")) as { Entries?: { MessageBody: string }[] };
            for (const e of batch.Entries ?? []) {
              const m = JSON.parse(e.MessageBody) as { copies?: number };
              shares.push(m.copies ?? 0);
            }
          } catch {
            // not JSON: counted, not read
          }
          forward(body);
        });
        return true;
      }
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
      if (!startup) {
        counts.keys ??= {};
        add(counts.keys, `${op} ${path.replace(/^\/[^/]+\/[^/]+\//, "").replace(/\d+/g, "N")}`);
      }
    }
    return false;
  });
  return {
    hop,
    shares,
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
  /** Windows copied (one a step). */
  copied: number;
  bytes: number;
  /** Requests of the runs that leased and copied a window (one a step), by operation. */
  copyRun: Counts;
  /** Requests of the planner runs that found nothing new (one a step), by operation. */
  idleRun: Counts;
  /** Of the windows, those the planner gave the whole cap (leased alone: domain/cap-share.ts). */
  aloneShare: number;
  /** Wall time of the copying runs, seconds (start-up, planning, the copies, the bookkeeping). */
  seconds: number;
  peakRssKiB: number;
  /** CPU of the copying run --once processes (start-up and planning included), seconds. */
  cpuSeconds: number;
  /** The copier's own CPU for one window at its share of the cap (copierCpu), seconds. */
  copierCpuSeconds: number;
  /** The copier's own wall time for one window at its share, on this machine, seconds. */
  copierSeconds: number;
}

async function runOnce(
  ctx: BenchContext,
  main: string,
  configFile: string,
  hopUrl: string,
): Promise<{ seconds: number; stdout: string; stderr: string; peakRssKiB: number; cpuSeconds: number }> {
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
      stderr: run.stderr,
      peakRssKiB: rss ?? 0,
      cpuSeconds: (user ?? 0) + (sys ?? 0),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Bytes of the windows stored under `prefix`. */
async function storedBytes(ctx: BenchContext, prefix: string): Promise<number> {
  const listed = await ctx.s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (listed.Contents ?? [])
    .filter((o) => o.Key?.endsWith(".mp4"))
    .reduce((n, o) => n + (o.Size ?? 0), 0);
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
  // Windows within the planner's last hour (its live edge: choose-windows.ts cuts a window at
  // horizon - 1 h), the newest one due (the settle margin).
  const from = Math.floor(now / WINDOW_SECONDS) * WINDOW_SECONDS - (windows + 2) * WINDOW_SECONDS;
  const counting = await countingHop(ctx.emulator.endpoints.s3Endpoint ?? "http://127.0.0.1");
  const dir = mkdtempSync(join(tmpdir(), "fb-cost-"));
  const prefix = `${label.replace(/\W/g, "")}/`;
  const config = join(dir, "config.json");
  const copyRun: Counts = { window: {}, bookkeeping: {}, sqs: {}, startup: {} };
  const idleRun: Counts = { window: {}, bookkeeping: {}, sqs: {}, startup: {} };
  const fold = (into: Counts, c: Counts) => {
    for (const k of ["window", "bookkeeping", "sqs", "startup", "keys"] as const) {
      into[k] ??= {};
      const to = into[k];
      for (const [op, n] of Object.entries(c[k] ?? {})) to[op] = (to[op] ?? 0) + n;
    }
  };
  let seconds = 0;
  let peakRssKiB = 0;
  let cpuSeconds = 0;
  let copied = 0;
  let firstBytes = 0;
  try {
    // The steady state: each step the source has recorded one window more (a simulator whose
    // recording ends at that window's end), the planner's run that leases and the copy of it, then
    // the planner's next run (nothing new): two planner runs a window, as at rate(5 minutes).
    // Step 0 is the first window of a new backup (the stream's bitrate not known yet: it may be cut
    // shorter): copied, not counted.
    for (let k = 0; k <= windows; k++) {
      const sim = await FlussonicSimulator.start({
        liveOnlyStreams: 0,
        // An archive two days deep: no window near the source's own retention edge.
        days: 2,
        streams: [{ name: "ref", bitrateBps, ranges: [{ from, to: from + (k + 1) * WINDOW_SECONDS }] }],
      });
      try {
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
        ctx.progress(`cost (${label}): window ${k} of ${windows}: run --once leases and copies it`);
        counting.reset();
        const copy = await runOnce(ctx, main, config, counting.hop.url);
        if (k === 0) {
          counting.shares.length = 0;
          firstBytes = await storedBytes(ctx, prefix);
          continue;
        }
        fold(copyRun, counting.counts());
        const n = Number(/Copied (\d+) window\(s\)/.exec(copy.stdout)?.[1] ?? "0");
        if (n !== 1)
          throw new Error(`run --once copied ${n} windows instead of 1: ${copy.stdout} ${copy.stderr}`);
        copied += n;
        seconds += copy.seconds;
        cpuSeconds += copy.cpuSeconds;
        peakRssKiB = Math.max(peakRssKiB, copy.peakRssKiB);
        ctx.progress(`cost (${label}): window ${k} of ${windows}: the next planner run (nothing new)`);
        counting.reset();
        await runOnce(ctx, main, config, counting.hop.url);
        fold(idleRun, counting.counts());
      } finally {
        await sim.close();
      }
    }
    const bytes = (await storedBytes(ctx, prefix)) - firstBytes;
    // What share of the cap the planner gave each window it queued (copies 1: the whole cap).
    const alone = counting.shares.filter((c) => c === 1).length;
    return {
      label,
      windows: bytes / ((bitrateBps / 8) * WINDOW_SECONDS),
      copied,
      bytes,
      copyRun,
      idleRun,
      aloneShare: alone / windows,
      seconds,
      peakRssKiB,
      cpuSeconds,
      copierCpuSeconds: 0,
      copierSeconds: 0,
    };
  } finally {
    await counting.hop.close();
    rmSync(dir, { recursive: true, force: true });
    await emptyPrefix(ctx, prefix);
  }
}

/**
 * The copier's own CPU for one reference window at its share of the cap (the copy alone, in a
 * process of its own: dev/bench/window-copier.ts, spooled as by default): the median of `runs`.
 */
async function copierCpu(
  ctx: BenchContext,
  bitrateBps: number,
  capBytesPerSecond: number,
  runs: number,
): Promise<{ cpuSeconds: number; seconds: number; all: number[] }> {
  const now = Math.floor(Date.now() / 1000);
  const from = Math.floor(now / WINDOW_SECONDS) * WINDOW_SECONDS - (runs + 2) * WINDOW_SECONDS;
  const sim = await FlussonicSimulator.start({
    liveOnlyStreams: 0,
    days: 2,
    streams: [{ name: "ref", bitrateBps, ranges: [{ from, to: from + runs * WINDOW_SECONDS }] }],
  });
  const cpu: number[] = [];
  const wall: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      ctx.progress(
        `cost: the copier alone, window ${i + 1} of ${runs} at ${(capBytesPerSecond * 8) / 1e6} Mbit/s`,
      );
      const run = await runNodeScript<WindowCopyOutput>(
        "window-copier.ts",
        {
          endpoints: ctx.emulator.endpoints,
          bucket: BUCKET,
          prefix: "copier-cpu/",
          sourceUrl: sim.url,
          source: "ref",
          stream: "ref",
          from: from + i * WINDOW_SECONDS,
          duration: WINDOW_SECONDS,
          partSize: 8 * 1024 * 1024,
          capBytesPerSecond,
          spoolMiB: 256,
        } satisfies WindowCopyInput,
        // The Lambda copier's V8 flags (infra: NODE_OPTIONS).
        [...COPIER_NODE_FLAGS],
      );
      if (run.output.status !== "copied")
        throw new Error(`window copier: ${run.output.error ?? run.output.status}`);
      cpu.push(run.output.copyCpuSeconds);
      wall.push(run.output.copySeconds);
    }
  } finally {
    await sim.close();
    await emptyPrefix(ctx, "copier-cpu/");
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  return { cpuSeconds: median(cpu), seconds: median(wall), all: cpu };
}

const sum = (m: Record<string, number>) => Object.values(m).reduce((a, b) => a + b, 0);
const addCounts = (a: RequestCounts, b: RequestCounts, k = 1): RequestCounts => ({
  put: a.put + b.put * k,
  get: a.get + b.get * k,
  sqs: a.sqs + b.sqs * k,
});

/** The month of one reference stream from a run's counts. */
export function monthOf(f: RunFigures, lambdaMb: number, copies = sharingCopies(f)) {
  const p = LIST_PRICES;
  const total = (c: Counts): RequestCounts =>
    addCounts(
      addCounts(byClass(lambdaWindow(c.window)), byClass(c.bookkeeping)),
      byClass(lambdaSqs(c.sqs, f.copied)),
    );
  // Each window comes with two planner runs (every 5 minutes, a window every 10): run --once's two
  // rounds, the one that leases it (its copy's requests with it) and the one that folds its record.
  const perWindow = total(f.copyRun);
  const copy = {
    put: perWindow.put / f.windows,
    get: perWindow.get / f.windows,
    sqs: perWindow.sqs / f.windows,
  };
  const requests = addCounts({ put: 0, get: 0, sqs: 0 }, copy, WINDOWS_PER_MONTH);
  // Lambda: a copy lasts what the window takes at its share of the cap, or longer when the
  // function's CPU share (memory / 1,769 MB a vCPU) cannot read, hash and send it that fast: the
  // copier's own CPU a window over that share.
  const capSeconds = ((f.bytes / f.windows) * 8) / ((CAP_MBPS * 1e6) / copies);
  const cpuSeconds = f.copierCpuSeconds / (lambdaMb / 1769);
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
      s3Window: sum(lambdaWindow(f.copyRun.window)) / f.windows,
      s3Bookkeeping: sum(f.copyRun.bookkeeping) / f.windows,
      sqs: sum(lambdaSqs(f.copyRun.sqs, f.copied)) / f.windows,
      putClass: copy.put,
      getClass: copy.get,
    },
    idleRun: {
      s3: (sum(f.idleRun.bookkeeping) + sum(f.idleRun.window)) / f.copied,
      sqs: sum(lambdaSqs(f.idleRun.sqs, 0)) / f.copied,
    },
    copies,
    copySeconds,
    capSeconds,
    cpuSeconds,
    /** The copier's own wall time per window at its share, on this machine under its load. */
    localSeconds: f.copierSeconds,
    gbSecondsPerGiB: (copySeconds * (lambdaMb / 1024)) / (f.bytes / f.windows / 1024 ** 3),
    requests,
    requestsUsd,
    lambdaUsd,
    overheadUsd: requestsUsd + lambdaUsd,
    storage30Usd: storage(30),
    storage3Usd: storage(3),
  };
}

/**
 * SQS requests as in AWS: the local poller's ReceiveMessage calls (most of them empty) and queue
 * depth reads (GetQueueAttributes, run --once's own) are not the event source mapping's: there one
 * receive delivers each window, and the mapping's long polling of an idle queue is a cost per
 * source (docs/cost.md), not per window.
 */
function lambdaSqs(sqs: Record<string, number>, windows: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [op, n] of Object.entries(sqs))
    if (op !== "sqs:ReceiveMessage" && op !== "sqs:GetQueueAttributes") out[op] = n;
  out["sqs:ReceiveMessage"] = windows;
  return out;
}

/**
 * The window's own S3 requests as the Lambda copier makes them: it looks for orphaned uploads
 * (ListMultipartUploads) on a redelivery only (orphansOnRedeliveryOnly; the bucket's lifecycle rule
 * aborts the others), while run --once looks on every copy.
 */
function lambdaWindow(ops: Record<string, number>): Record<string, number> {
  const { ListMultipartUploads: _, ...rest } = ops;
  return rest;
}

/** Copies sharing the cap in AWS: 1 when the planner gave every window the whole cap, else COPIES. */
function sharingCopies(f: RunFigures): number {
  return f.aloneShare >= 1 ? 1 : COPIES;
}

/** Requests by operation, all kinds, per window (the copying run and the idle run apart). */
function breakdown(f: RunFigures): Record<string, string> {
  const out: Record<string, string> = {};
  const add = (tag: string, c: Counts) => {
    for (const k of ["window", "bookkeeping", "sqs"] as const)
      for (const [op, n] of Object.entries(c[k])) out[`${tag} ${k} ${op}`] = (n / f.copied).toFixed(2);
  };
  add("leasing run + copy:", f.copyRun);
  add("idle run:", f.idleRun);
  for (const [key, n] of Object.entries(f.copyRun.keys ?? {}))
    out[`leasing run + copy: ${key}`] = (n / f.copied).toFixed(2);
  for (const [key, n] of Object.entries(f.idleRun.keys ?? {}))
    out[`idle run: ${key}`] = (n / f.copied).toFixed(2);
  return out;
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
  // The copier's own CPU at each run's share of the cap (the copy path is this checkout's).
  const cpuRuns = ctx.smoke ? 1 : 3;
  const atShare = new Map<number, Awaited<ReturnType<typeof copierCpu>>>();
  for (const f of runs) {
    const copies = sharingCopies(f);
    if (!atShare.has(copies))
      atShare.set(copies, await copierCpu(ctx, bitrate, (CAP_MBPS * 1e6) / 8 / copies, cpuRuns));
    const c = atShare.get(copies)!;
    f.copierCpuSeconds = c.cpuSeconds;
    f.copierSeconds = c.seconds;
  }
  const rows: FigureResult["rows"] = [];
  const details: Record<string, unknown> = { windows, prices: LIST_PRICES, runs: [] as unknown[] };
  for (const f of runs) {
    const months = LAMBDA_MB.map((mb) => ({ mb, month: monthOf(f, mb) }));
    (details.runs as unknown[]).push({ ...f, months, requestsByKind: breakdown(f) });
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
    rows.push({
      figure: 8,
      what: `${tag}share of the cap a lone window's copy reads at in AWS; the copier's own CPU a window at it (this machine)`,
      measured: `1/${m.copies} (${((CAP_MBPS / m.copies) | 0).toString()} Mbit/s); ${f.copierCpuSeconds.toFixed(2)} s CPU in ${f.copierSeconds.toFixed(1)} s`,
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
  }
  return {
    figure: 8,
    title: "Overhead over storage, reference stream",
    rows,
    details,
    notes: [
      `The reference stream: ${BITRATE_BPS / 1e6} Mbit/s, ${WINDOW_SECONDS}-s windows, kept ${KEPT_DAYS} days plus noncurrentVersionDays as old versions, the default cap (${CAP_MBPS} Mbit/s, ${COPIES} copies at once). The steady state, ${windows} times over: the source has recorded one window more and the real run --once, through an HTTP hop that counts every S3 and SQS request, makes the two planner runs a window has (every 5 minutes, a window every 10: ${PLANNER_RUNS_PER_MONTH} runs and ${WINDOWS_PER_MONTH} windows a month): one leases and queues it, the copy, one folds its record; then a run --once with nothing new at all (the idle planner run's row). Requests by kind per window: requestsByKind in the JSON.`,
      `Lambda GB-seconds: a copy lasts the window's bytes at its share of the cap in AWS (the whole ${CAP_MBPS} Mbit/s when the planner gave the window the whole cap, as its queued message says, else ${CAP_MBPS / COPIES} Mbit/s), or longer when the function's CPU share (memory / 1,769 MB) needs longer for the copier's own CPU a window: the median of ${cpuRuns} copies of one reference window at that rate by dev/bench/window-copier.ts (the copy alone, spooled; process.cpuUsage around copyWindow), on this machine's x86 cores, not Lambda's arm64 ones. The run --once processes' CPU (start-up and planning included) is in the JSON (cpuSeconds). Requests of run --once's start-up (the S3 feature probe, the bucket check, CreateQueue) are counted apart (startup) and left out: a Lambda run makes none. As in AWS: the copier's listing of orphaned uploads is left out (the Lambda copier makes it on a redelivery only), and of SQS the local poller's receives and queue depth reads, one receive a window counted (the event source mapping's long polling of an idle queue is a cost per source). The planner at ${PLANNER_SECONDS_PER_STREAM} s per stream and run at ${PLANNER_MB} MB (not measured here). Prices: ${LIST_PRICES.region} list prices (functions/domain/prices.ts). Per-source fixed costs (alarms, metrics, the secret, idle queue polling) are not per stream and not in the overhead: docs/cost.md.`,
    ],
  };
}
