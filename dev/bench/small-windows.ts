/**
 * Figure 6: the cap on the source's network when windows are smaller than what the kernels buffer
 * (issue 13): 3 streams at 32 kbit/s (2.4 MB per 600 s window), cap 2 Mbit/s, 2 copies at once, a
 * backlog of windows. Measured at the source by the simulator's meter (acknowledged bytes), for a
 * source that answers Range (paced slices), one that does not (one request per window), and rclone
 * `copyurl --bwlimit` (two processes at once, each half the cap) on the same kind of source. The
 * sources close a connection whose response was not read for 5 s (a send timeout), as servers do.
 */
import { loadavg } from "node:os";
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { parseConfig } from "../../functions/config/config.ts";
import type { Log } from "../../functions/shared/log.ts";
import { OnceTally, runOnce } from "../../local/once.ts";
import { LocalRuntime } from "../../local/runtime.ts";
import { FlussonicSimulator, type SimulatorOptions } from "../../simulator/simulator.ts";
import type { BenchContext } from "./bench-context.ts";
import { type FigureResult, type ResultRow, ratio, verdict } from "./figures.ts";
import { rcloneCopyUrl } from "./processes.ts";

const HOUR_START = Math.floor(Date.UTC(2026, 10, 20, 12) / 1000);
const NOW = HOUR_START + 120;
const WINDOW_SECONDS = 600;
const STREAMS = 3;
const BITRATE_BPS = 32_000;
const CAP_MBPS = 2;
const COPIES = 2;

const quiet: Log = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

export interface SmallWindowFigures {
  case: string;
  windows: number;
  bytes: number;
  max1s: number;
  max10s: number;
  drain: number;
  deadLettered: number;
  seconds: number;
  load: string;
}

function load(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
}

/** Streams of a run: the figure's 3, or 1 in a smoke run (it only checks that the bench runs). */
function streamCount(ctx: BenchContext): number {
  return ctx.smoke ? 1 : STREAMS;
}

async function simulator(
  streams: number,
  windows: number,
  options: SimulatorOptions,
): Promise<FlussonicSimulator> {
  return FlussonicSimulator.start({
    now: () => NOW,
    liveOnlyStreams: 0,
    sendTimeoutMs: 5000,
    keepAliveTimeoutMs: 5000,
    streams: Array.from({ length: streams }, (_, i) => ({
      name: `cam${i + 1}`,
      bitrateBps: BITRATE_BPS,
      ranges: [{ from: HOUR_START - windows * WINDOW_SECONDS, to: NOW + 1 }],
    })),
    ...options,
  });
}

/** Our copiers (the local runtime) against one simulator. */
export async function ours(
  ctx: BenchContext,
  label: string,
  windows: number,
  ranges: boolean,
  minWindowSeconds?: number,
): Promise<SmallWindowFigures> {
  const sim = await simulator(streamCount(ctx), windows, { ranges });
  const cap = (CAP_MBPS * 1_000_000) / 8;
  let runtime: LocalRuntime | undefined;
  const loadBefore = load();
  try {
    const config = parseConfig(
      JSON.stringify({
        bucket: "bench-small",
        ...(minWindowSeconds ? { minWindowSeconds } : {}),
        sources: [
          {
            name: ranges ? "small-ranges" : `small-whole${minWindowSeconds ?? ""}`,
            url: sim.url,
            retentionDays: 1,
            maxConcurrentCopies: COPIES,
            maxBandwidthMbps: CAP_MBPS,
          },
        ],
      }),
      "bench-small.json",
    );
    const tally = new OnceTally();
    runtime = await LocalRuntime.create({
      config,
      credentials: new Map(),
      endpoints: ctx.emulator.endpoints,
      logger: quiet,
      now: () => NOW,
      waitTimeSeconds: 1,
      onEvent: (e) => tally.add(e),
    });
    ctx.progress(`small windows: ${label}`);
    const started = performance.now();
    const run = await runOnce(runtime, tally);
    await sim.meter.settled();
    return {
      case: label,
      windows: run.copied,
      bytes: sim.meter.bytesServed,
      max1s: sim.meter.maxRate(1000) / cap,
      max10s: sim.meter.maxRate(10_000) / cap,
      drain: sim.meter.averageRate() / cap,
      deadLettered: run.deadLettered.length,
      seconds: (performance.now() - started) / 1000,
      load: `${loadBefore} / ${load()}`,
    };
  } finally {
    await runtime?.close();
    await sim.close();
  }
}

/** rclone copyurl --bwlimit: two processes at once (the 2 copies), each half the cap, windows in turn. */
async function rclone(ctx: BenchContext, windows: number): Promise<SmallWindowFigures> {
  const sim = await simulator(streamCount(ctx), windows, {});
  const cap = (CAP_MBPS * 1_000_000) / 8;
  const urls: { url: string; key: string }[] = [];
  for (let s = 1; s <= streamCount(ctx); s++) {
    for (let w = 0; w < windows; w++) {
      const from = HOUR_START - (windows - w) * WINDOW_SECONDS;
      urls.push({
        url: `${sim.url}/cam${s}/archive-${from}-${WINDOW_SECONDS}.mp4`,
        key: `rclone-small/${s}-${from}.mp4`,
      });
    }
  }
  const loadBefore = load();
  ctx.progress(`small windows: rclone copyurl --bwlimit ${Math.round(cap / COPIES / 1024)}k x ${COPIES}`);
  const started = performance.now();
  let failed = 0;
  try {
    let next = 0;
    await Promise.all(
      Array.from({ length: COPIES }, async () => {
        while (next < urls.length) {
          const u = urls[next++]!;
          await rcloneCopyUrl({
            url: u.url,
            endpoints: ctx.emulator.endpoints,
            bucket: "bench-small",
            key: u.key,
            bwlimitBytesPerSecond: cap / COPIES,
          }).catch(() => {
            failed++;
          });
        }
      }),
    );
    await sim.meter.settled();
    return {
      case: `rclone copyurl --bwlimit ${Math.round(cap / COPIES / 1024)}k, ${COPIES} at once`,
      windows: urls.length - failed,
      bytes: sim.meter.bytesServed,
      max1s: sim.meter.maxRate(1000) / cap,
      max10s: sim.meter.maxRate(10_000) / cap,
      drain: sim.meter.averageRate() / cap,
      deadLettered: failed,
      seconds: (performance.now() - started) / 1000,
      load: `${loadBefore} / ${load()}`,
    };
  } finally {
    await sim.close();
    for (const u of urls) {
      await ctx.s3
        .send(new DeleteObjectCommand({ Bucket: "bench-small", Key: u.key }))
        .catch(() => undefined);
    }
  }
}

export async function measureSmallWindows(ctx: BenchContext): Promise<FigureResult> {
  const windows = ctx.smoke ? 1 : 2;
  const cases: SmallWindowFigures[] = [
    await ours(ctx, "source with Range (paced slices)", windows, true),
    await ours(
      ctx,
      "source without Range (one request per window, default minWindowSeconds 60)",
      windows,
      false,
    ),
    await ours(ctx, "source without Range, minWindowSeconds 15", windows, false, 15),
  ];
  const peer = ctx.rcloneUnavailable ? undefined : await rclone(ctx, windows);
  const rows: ResultRow[] = [];
  const label = `${streamCount(ctx)} stream(s) at 32 kbit/s, ${CAP_MBPS} Mbit/s, ${COPIES} copies`;
  for (const c of [...cases, ...(peer ? [peer] : [])]) {
    const ref = c === peer;
    const v = (ok: boolean) => (ref ? "ref" : verdict(ok));
    rows.push(
      {
        figure: 6,
        what: `${label}, ${c.case}: worst 10 s / cap`,
        measured: ratio(c.max10s),
        target: "<= 1.05x",
        verdict: v(c.max10s <= 1.05),
      },
      {
        figure: 6,
        what: `${label}, ${c.case}: worst 1 s / cap`,
        measured: ratio(c.max1s),
        target: "<= 1.50x",
        verdict: v(c.max1s <= 1.5),
      },
      {
        figure: 6,
        what: `${label}, ${c.case}: drain rate / cap`,
        measured: c.drain.toFixed(3),
        target: ">= 0.90",
        verdict: v(c.drain >= 0.9),
      },
      {
        figure: 6,
        what: `${label}, ${c.case}: windows failed`,
        measured: String(c.deadLettered),
        target: "= 0",
        verdict: v(c.deadLettered === 0),
      },
    );
  }
  if (!peer) rows.push({ figure: 6, what: "rclone --bwlimit", measured: "-", target: "-", verdict: "skip" });
  return {
    figure: 6,
    title: "Small windows (below the kernel buffers): the cap on the source's network",
    rows,
    details: { cases, rclone: peer, windowsPerStream: windows },
    notes: [
      `Small windows: windows copied (S3 objects for the whole backlog): ${[...cases, ...(peer ? [peer] : [])].map((c) => `${c.case}: ${c.windows}`).join("; ")}.`,
      `Small windows: load average (1/5/15 min) before / after each case: ${[...cases, ...(peer ? [peer] : [])].map((c) => `${c.case}: ${c.load}`).join("; ")}.`,
    ],
  };
}
