/**
 * Figure 6: the cap on the source's network when windows are smaller than what the kernels buffer
 * (issue 13): 3 streams at 32 kbit/s (2.4 MB per 600 s window), cap 2 Mbit/s, 2 copies at once, a
 * backlog of windows. Measured at the source by the simulator's meter (acknowledged bytes), for a
 * source that answers Range (paced slices), one that does not (one request per window), and rclone
 * `copyurl --bwlimit` (two processes at once, each half the cap) on the same kind of source. The
 * sources close a connection whose response was not read for 5 s (a send timeout), as servers do.
 * The simulator and its meter run in a process of their own (dev/kit/simulator-process.ts): in the
 * copiers' process the meter's 10 ms sampling ran late while their event loop was busy and counted
 * a burst up to 120 ms after it landed, so two bursts a second apart could share a measured second.
 * With `--capture` each case is also measured from the packets the source sent (tcpdump,
 * packet-capture.ts): the rows marked "(packets)".
 */
import { loadavg } from "node:os";
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { parseConfig } from "../../functions/config/config.ts";
import type { Log } from "../../functions/shared/log.ts";
import { OnceTally, runOnce } from "../../local/once.ts";
import { LocalRuntime } from "../../local/runtime.ts";
import {
  type MeterFigures,
  maxRateOf,
  type SimulatorProcess,
  type SimulatorProcessOptions,
  startSimulatorProcess,
} from "../kit/simulator-process.ts";
import type { BenchContext } from "./bench-context.ts";
import { type FigureResult, type ResultRow, ratio, verdict } from "./figures.ts";
import { type Capture, type CaptureFigures, startCapture } from "./packet-capture.ts";
import { rcloneCopyUrl } from "./processes.ts";

const HOUR_START = Math.floor(Date.UTC(2026, 10, 20, 12) / 1000);
const NOW = HOUR_START + 120;
const WINDOW_SECONDS = 600;
const STREAMS = 3;
const BITRATE_BPS = 32_000;
const CAP_MBPS = 2;
/** A smoke run only checks that the figure runs: a cap four times higher copies its window sooner. */
const SMOKE_CAP_MBPS = 8;
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
  /** The bursts (bytes acknowledged with under 100 ms between) in the worst 1 s: offset ms, KiB. */
  worstSecond: string;
  /** From the packets the source sent (`--capture`). */
  packets?: {
    max1s: number;
    max10s: number;
    drain: number;
    segments: number;
    retransmittedBytes: number;
    dropped: number;
    worstSecond: string;
  };
}

/** Starts the packet capture of a case when `--capture` asked for it and tcpdump can. */
async function capture(ctx: BenchContext, sim: SimulatorProcess): Promise<Capture | undefined> {
  if (ctx.capture !== true) return undefined;
  return startCapture(Number(new URL(sim.url).port));
}

function fromPackets(c: CaptureFigures, cap: number): NonNullable<SmallWindowFigures["packets"]> {
  return {
    max1s: maxRateOf(c.series, 1000) / cap,
    max10s: maxRateOf(c.series, 10_000) / cap,
    drain: c.averageRate / cap,
    segments: c.segments,
    retransmittedBytes: c.retransmittedBytes,
    dropped: c.dropped,
    worstSecond: worstSecond(c.series),
  };
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

/** The source's cap of a run, Mbit/s. */
function capMbps(ctx: BenchContext): number {
  return ctx.smoke ? SMOKE_CAP_MBPS : CAP_MBPS;
}

async function simulator(
  streams: number,
  windows: number,
  options: SimulatorProcessOptions,
): Promise<SimulatorProcess> {
  return startSimulatorProcess({
    nowSeconds: NOW,
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

/** The meter's figures against the cap, and what made up the worst second. */
function metered(
  m: MeterFigures,
  cap: number,
): Pick<SmallWindowFigures, "bytes" | "max1s" | "max10s" | "drain" | "worstSecond"> {
  return {
    bytes: m.bytesServed,
    max1s: maxRateOf(m.series, 1000) / cap,
    max10s: maxRateOf(m.series, 10_000) / cap,
    drain: m.averageRate / cap,
    worstSecond: worstSecond(m.series, m.archiveRequests, m.lateSamples),
  };
}

/**
 * The bursts in the worst 1 s of a meter's series: groups of 10 ms buckets less than 100 ms apart,
 * each as its offset from the second's first bucket (ms) and its KiB, so that a reader sees whether
 * two bursts landed within one second or one was counted late.
 */
export function worstSecond(
  series: readonly [number, number][],
  requests: readonly [number, number][] = [],
  late: readonly [number, number][] = [],
): string {
  let best = { sum: -1, from: 0, to: 0 };
  let tail = 0;
  let sum = 0;
  for (let i = 0; i < series.length; i++) {
    sum += series[i]![1];
    while (series[tail]![0] <= series[i]![0] - 1000) sum -= series[tail++]![1];
    if (sum > best.sum) best = { sum, from: tail, to: i };
  }
  if (best.sum <= 0) return "-";
  const start = series[best.from]![0];
  const bursts: { at: number; last: number; bytes: number }[] = [];
  for (const [at, bytes] of series.slice(best.from, best.to + 1)) {
    const b = bursts.at(-1);
    if (b && at - b.last < 100) {
      b.bytes += bytes;
      b.last = at;
    } else bursts.push({ at, last: at, bytes });
  }
  const asked = requests
    .filter(([at]) => at >= start - 1000 && at < start + 1000)
    .map(([at, end]) => `${Math.round(at - start)} (ended ${Math.round(end - start)})`);
  const gaps = late
    .filter(([, at]) => at >= start - 1000 && at < start + 1100)
    .map(([from, to]) => `${Math.round(from - start)}..${Math.round(to - start)}`);
  return (
    bursts
      .map(
        (b) =>
          `+${Math.round(b.at - start)}..${Math.round(b.last - start + 10)} ms ${Math.round(b.bytes / 1024)} KiB`,
      )
      .join(", ") +
    (asked.length > 0 ? `; archive requests arrived at ${asked.join(", ")} ms` : "") +
    (gaps.length > 0 ? `; meter samples late (previous..this) at ${gaps.join(", ")} ms` : "")
  );
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
  const cap = (capMbps(ctx) * 1_000_000) / 8;
  let runtime: LocalRuntime | undefined;
  let packets: Capture | undefined;
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
            maxBandwidthMbps: capMbps(ctx),
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
    packets = await capture(ctx, sim);
    const started = performance.now();
    const run = await runOnce(runtime, tally);
    const m = await sim.meter();
    const wire = await packets?.stop();
    return {
      case: label,
      windows: run.copied,
      deadLettered: run.deadLettered.length,
      seconds: (performance.now() - started) / 1000,
      load: `${loadBefore} / ${load()}`,
      ...metered(m, cap),
      ...(wire ? { packets: fromPackets(wire, cap) } : {}),
    };
  } finally {
    await packets?.stop().catch(() => undefined);
    await runtime?.close();
    await sim.stop();
  }
}

/** rclone copyurl --bwlimit: two processes at once (the 2 copies), each half the cap, windows in turn. */
async function rclone(ctx: BenchContext, windows: number): Promise<SmallWindowFigures> {
  const sim = await simulator(streamCount(ctx), windows, {});
  const cap = (capMbps(ctx) * 1_000_000) / 8;
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
  const packets = await capture(ctx, sim);
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
    const m = await sim.meter();
    const wire = await packets?.stop();
    return {
      case: `rclone copyurl --bwlimit ${Math.round(cap / COPIES / 1024)}k, ${COPIES} at once`,
      windows: urls.length - failed,
      deadLettered: failed,
      seconds: (performance.now() - started) / 1000,
      load: `${loadBefore} / ${load()}`,
      ...metered(m, cap),
      ...(wire ? { packets: fromPackets(wire, cap) } : {}),
    };
  } finally {
    await packets?.stop().catch(() => undefined);
    await sim.stop();
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
  const label = `${streamCount(ctx)} stream(s) at 32 kbit/s, ${capMbps(ctx)} Mbit/s, ${COPIES} copies`;
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
      ...(c.packets
        ? [
            {
              figure: 6,
              what: `${label}, ${c.case}: worst 10 s / cap (packets)`,
              measured: ratio(c.packets.max10s),
              target: "<= 1.05x",
              verdict: v(c.packets.max10s <= 1.05),
            },
            {
              figure: 6,
              what: `${label}, ${c.case}: worst 1 s / cap (packets)`,
              measured: ratio(c.packets.max1s),
              target: "<= 1.50x",
              verdict: v(c.packets.max1s <= 1.5),
            },
          ]
        : []),
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
  if (typeof ctx.capture === "string") {
    rows.push({
      figure: 6,
      what: `packet capture: ${ctx.capture}`,
      measured: "-",
      target: "-",
      verdict: "skip",
    });
  }
  const all = [...cases, ...(peer ? [peer] : [])];
  const captured = all.filter((c) => c.packets);
  return {
    figure: 6,
    title: "Small windows (below the kernel buffers): the cap on the source's network",
    rows,
    details: { cases, rclone: peer, windowsPerStream: windows },
    notes: [
      `Small windows: windows copied (S3 objects for the whole backlog): ${[...cases, ...(peer ? [peer] : [])].map((c) => `${c.case}: ${c.windows}`).join("; ")}.`,
      `Small windows: the worst 1 s of each case, as the bursts the source's meter counted in it (offset from its first 10 ms, KiB): ${[...cases, ...(peer ? [peer] : [])].map((c) => `${c.case}: ${c.worstSecond}`).join("; ")}.`,
      `Small windows: load average (1/5/15 min) before / after each case: ${[...cases, ...(peer ? [peer] : [])].map((c) => `${c.case}: ${c.load}`).join("; ")}.`,
      ...(captured.length > 0
        ? [
            `Small windows, from the packets (tcpdump on lo, TCP payload sent from the source's port, 10 ms buckets; every answer of the source counts, its index answers too, so no drain rate is given from them): new-data segments captured, bytes sent again (retransmissions, not counted in the rates), segments the kernel dropped before tcpdump read them, and the worst 1 s: ${captured.map((c) => `${c.case}: ${c.packets!.segments} segments, ${Math.round(c.packets!.retransmittedBytes / 1024)} KiB sent again, ${c.packets!.dropped} dropped; ${c.packets!.worstSecond}`).join("; ")}.`,
          ]
        : []),
    ],
  };
}
