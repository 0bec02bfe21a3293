/**
 * Figures 1 and 2: how exactly the caps hold, seen from the sources, and how much of the cap a
 * capped copy uses. Three sources with different caps, each its own simulator, copied at once by
 * one local runtime (the real planner, SQS pollers and copiers); then rclone `copyurl --bwlimit`
 * through the same kind of meter, and a probe of what the kernel takes before anyone reads.
 */
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { Pool } from "undici";
import { parseConfig } from "../../functions/config/config.ts";
import type { CopierEvent } from "../../functions/copier/copy-messages.ts";
import type { Log } from "../../functions/shared/log.ts";
import { OnceTally, runOnce } from "../../local/once.ts";
import { LocalRuntime } from "../../local/runtime.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";
import type { BenchContext } from "./bench-context.ts";
import { type FigureResult, type ResultRow, ratio, verdict } from "./figures.ts";
import { rcloneCopyUrl } from "./processes.ts";
import { ReadRate } from "./read-rate.ts";

/** 12:00 UTC; the clock stands 2 minutes later, so the settle margin ends exactly on a window edge. */
const HOUR_START = Math.floor(Date.UTC(2026, 10, 20, 12) / 1000);
const NOW = HOUR_START + 120;
const WINDOW_SECONDS = 600;

interface CapSource {
  name: string;
  capMbps: number;
  copies: number;
}

const SOURCES: CapSource[] = [
  { name: "s16", capMbps: 16, copies: 1 },
  { name: "s40", capMbps: 40, copies: 2 },
  { name: "s100", capMbps: 100, copies: 3 },
];

export interface SourceFigures {
  source: string;
  capMbps: number;
  copies: number;
  windows: number;
  bytes: number;
  peakConcurrent: number;
  /** Source-side (acknowledged bytes) highest rate over 1 s and 10 s, / cap. */
  max1s: number;
  max10s: number;
  /** Client-side (bytes read past the throttle) highest rate over 1 s and 10 s, / cap. */
  read1s: number;
  read10s: number;
  /** Bytes / (cap x busy time: first request to last copy recorded). */
  efficiency: number;
  busySeconds: number;
}

export interface RcloneFigures {
  capMbps: number;
  bwlimit: string;
  bytes: number;
  seconds: number;
  peakConcurrent: number;
  max1s: number;
  max10s: number;
  efficiency: number;
}

const quiet: Log = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

function capBytes(capMbps: number): number {
  return (capMbps * 1_000_000) / 8;
}

export async function measureCapAccuracy(ctx: BenchContext): Promise<FigureResult[]> {
  // Each window takes this long at its copier's share of the cap; three windows per copy slot.
  const secondsPerWindow = ctx.smoke ? 0.8 : 10;
  const windowsPerSlot = 3;
  const sims = new Map<string, FlussonicSimulator>();
  const reads = new Map<string, ReadRate>();
  const copiedAt = new Map<string, number>();
  const rows: ResultRow[] = [];
  const efficiencyRows: ResultRow[] = [];
  const perSource: SourceFigures[] = [];
  let runtime: LocalRuntime | undefined;
  try {
    for (const s of SOURCES) {
      const perCopierBps = (s.capMbps * 1_000_000) / s.copies;
      const bitrateBps = Math.round((perCopierBps * secondsPerWindow) / WINDOW_SECONDS);
      const from = HOUR_START - windowsPerSlot * WINDOW_SECONDS;
      sims.set(
        s.name,
        await FlussonicSimulator.start({
          now: () => NOW,
          liveOnlyStreams: 0,
          ranges: ctx.ranges ?? false,
          streams: Array.from({ length: s.copies }, (_, i) => ({
            name: `cam${i + 1}`,
            bitrateBps,
            ranges: [{ from, to: NOW + 1 }],
          })),
        }),
      );
      reads.set(s.name, new ReadRate());
    }
    const config = parseConfig(
      JSON.stringify({
        bucket: "bench-caps",
        sources: SOURCES.map((s) => ({
          name: s.name,
          url: sims.get(s.name)!.url,
          retentionDays: 1,
          maxConcurrentCopies: s.copies,
          maxBandwidthMbps: s.capMbps,
        })),
      }),
      "bench-caps.json",
    );
    const tally = new OnceTally();
    runtime = await LocalRuntime.create({
      config,
      credentials: new Map(),
      endpoints: ctx.emulator.endpoints,
      logger: quiet,
      now: () => NOW,
      waitTimeSeconds: 1,
      onEvent: (e: CopierEvent) => {
        tally.add(e);
        if (e.type === "copied") copiedAt.set(e.message.source, performance.now());
      },
      onBytes: (source, n) => reads.get(source)?.add(n),
    });
    ctx.progress(
      `caps${ctx.ranges ? " (sources answer Range)" : ""}: copying ${SOURCES.map((s) => `${s.name} (${s.capMbps} Mbit/s, ${s.copies} at once)`).join(", ")}`,
    );
    const run = await runOnce(runtime, tally);
    if (!run.ok) throw new Error(`caps run failed: ${JSON.stringify(run.deadLettered.map((d) => d.reason))}`);

    for (const s of SOURCES) {
      const sim = sims.get(s.name)!;
      await sim.meter.settled();
      const cap = capBytes(s.capMbps);
      const archive = sim.requests.filter((r) => r.kind === "archive");
      const firstStart = Math.min(...archive.map((r) => r.startedAt));
      const busySeconds = ((copiedAt.get(s.name) ?? firstStart) - firstStart) / 1000;
      const read = reads.get(s.name)!;
      const f: SourceFigures = {
        source: s.name,
        capMbps: s.capMbps,
        copies: s.copies,
        windows: archive.length,
        bytes: sim.meter.bytesServed,
        peakConcurrent: sim.meter.peakActive,
        max1s: sim.meter.maxRate(1000) / cap,
        max10s: sim.meter.maxRate(10_000) / cap,
        read1s: read.maxRate(1000) / cap,
        read10s: read.maxRate(10_000) / cap,
        efficiency: read.bytes / (cap * busySeconds),
        busySeconds,
      };
      perSource.push(f);
      const label = `${s.name} (${s.capMbps} Mbit/s, ${s.copies} at once)`;
      rows.push(
        {
          figure: 1,
          // The cap is "at most": paced Range slices of the copies may not overlap at all.
          what: `${label}: peak concurrent downloads (responses open at once)`,
          measured: String(f.peakConcurrent),
          target: `<= ${s.copies}`,
          verdict: verdict(f.peakConcurrent >= 1 && f.peakConcurrent <= s.copies),
        },
        {
          figure: 1,
          what: `${label}: max rate over 10 s / cap`,
          measured: ratio(f.max10s),
          target: "<= 1.05x",
          verdict: verdict(f.max10s <= 1.05),
        },
        {
          figure: 1,
          what: `${label}: max rate over 1 s / cap`,
          measured: ratio(f.max1s),
          target: "<= 1.50x",
          verdict: verdict(f.max1s <= 1.5),
        },
      );
      efficiencyRows.push({
        figure: 2,
        what: `${label}: average / cap while capped`,
        measured: f.efficiency.toFixed(3),
        target: ">= 0.90",
        verdict: verdict(f.efficiency >= 0.9),
      });
    }
  } finally {
    await runtime?.close();
    for (const sim of sims.values()) await sim.close();
  }

  const unread = await unreadBytes();
  const rclone = ctx.rcloneUnavailable ? undefined : await rcloneCapped(ctx, ctx.smoke ? 2 : 30);
  const rcloneLabel = rclone ? `rclone copyurl --bwlimit ${rclone.bwlimit} (16 Mbit/s)` : "rclone";
  if (rclone) {
    rows.push(
      {
        figure: 1,
        what: `${rcloneLabel}: peak concurrent downloads`,
        measured: String(rclone.peakConcurrent),
        target: "= 1",
        verdict: "ref",
      },
      {
        figure: 1,
        what: `${rcloneLabel}: max rate over 10 s / cap`,
        measured: ratio(rclone.max10s),
        target: "<= 1.05x",
        verdict: "ref",
      },
      {
        figure: 1,
        what: `${rcloneLabel}: max rate over 1 s / cap`,
        measured: ratio(rclone.max1s),
        target: "<= 1.50x",
        verdict: "ref",
      },
    );
    efficiencyRows.push({
      figure: 2,
      what: `${rcloneLabel}: average / cap`,
      measured: rclone.efficiency.toFixed(3),
      target: ">= 0.90",
      verdict: "ref",
    });
  } else {
    rows.push({ figure: 1, what: "rclone --bwlimit", measured: "-", target: "-", verdict: "skip" });
    efficiencyRows.push({ figure: 2, what: "rclone --bwlimit", measured: "-", target: "-", verdict: "skip" });
  }
  rows.push({
    figure: 1,
    what: "bytes a download delivers before any read (0.5 s; fresh / kept-alive connection)",
    measured: `${(unread.fresh / 1024 / 1024).toFixed(2)} / ${(unread.warm / 1024 / 1024).toFixed(2)} MiB`,
    target: "(artefact)",
    verdict: "info",
  });

  const notes = [
    "Source-side rates are the simulator meter's acknowledged bytes (Linux /proc/net/tcp): the rate on the source's network. " +
      `Every download start is acknowledged up to the client's TCP receive buffer before the copier reads a byte ` +
      `(${(unread.fresh / 1024 / 1024).toFixed(2)} MiB on a fresh loopback connection, ${(unread.warm / 1024 / 1024).toFixed(2)} MiB on a kept-alive one), ` +
      "a burst the throttle cannot see, at every window start; " +
      "the client-side read rates (after the throttle) are in the JSON as read1s/read10s.",
  ];
  if (ctx.rcloneUnavailable) notes.push(`rclone rows skipped: ${ctx.rcloneUnavailable}`);
  if (ctx.ranges) {
    notes.push(
      "--ranges: our sources answered Range, so the copies read them in paced slices (rclone's source did not).",
    );
  }
  return [
    {
      figure: 1,
      title: "Cap accuracy (source-side peak concurrency and bandwidth)",
      rows,
      details: {
        sources: perSource,
        rclone,
        unreadBytesAfter500ms: unread,
        secondsPerWindow,
        windowsPerSlot,
      },
      notes,
    },
    {
      figure: 2,
      title: "Cap efficiency (average throughput / cap while the cap is the bottleneck)",
      rows: efficiencyRows,
      details: {
        definition:
          "bytes read by the copiers / (cap x time from the first archive request to the last window recorded)",
      },
      notes: [],
    },
  ];
}

/**
 * What the kernel accepts on a download nobody reads: open one, wait 0.5 s, count at the source.
 * Once on a fresh connection, and once on a kept-alive connection that has just carried a window
 * read at full speed (the receive buffer then has grown, as on the copiers' pooled connections).
 */
async function unreadBytes(): Promise<{ fresh: number; warm: number }> {
  const sim = await FlussonicSimulator.start({
    now: () => NOW,
    liveOnlyStreams: 0,
    streams: [{ name: "probe", bitrateBps: 8_000_000, ranges: [{ from: HOUR_START - 3600, to: NOW + 1 }] }],
  });
  const pool = new Pool(sim.url, { connections: 1 });
  const path = `/probe/archive-${HOUR_START - 3600}-${WINDOW_SECONDS}.mp4`;
  const unread = async () => {
    await sim.meter.settled();
    sim.meter.reset();
    const res = await pool.request({ method: "GET", path });
    // Half a second, plus a few of the meter's 10 ms samples.
    await new Promise((r) => setTimeout(r, 530));
    const served = sim.meter.bytesServed;
    return { res, served };
  };
  try {
    const first = await unread();
    await first.res.body.dump({ limit: Number.POSITIVE_INFINITY });
    const second = await unread();
    second.res.body.destroy();
    return { fresh: first.served, warm: second.served };
  } finally {
    await pool.destroy();
    await sim.close();
  }
}

/** rclone copyurl --bwlimit of one window sized for `seconds` at 16 Mbit/s, through a meter. */
async function rcloneCapped(ctx: BenchContext, seconds: number): Promise<RcloneFigures> {
  const capMbps = 16;
  const cap = capBytes(capMbps);
  const from = HOUR_START - 3600;
  const sim = await FlussonicSimulator.start({
    now: () => NOW,
    liveOnlyStreams: 0,
    streams: [
      {
        name: "rclone",
        bitrateBps: Math.round((capMbps * 1_000_000 * seconds) / WINDOW_SECONDS),
        ranges: [{ from, to: NOW + 1 }],
      },
    ],
  });
  const key = "rclone/capped.mp4";
  try {
    ctx.progress(`caps: rclone copyurl --bwlimit ${Math.round(cap / 1024)}k (${capMbps} Mbit/s)`);
    const { seconds: took } = await rcloneCopyUrl({
      url: `${sim.url}/rclone/archive-${from}-${WINDOW_SECONDS}.mp4`,
      endpoints: ctx.emulator.endpoints,
      bucket: "bench-caps",
      key,
      bwlimitBytesPerSecond: cap,
    });
    await sim.meter.settled();
    return {
      capMbps,
      bwlimit: `${Math.round(cap / 1024)}k`,
      bytes: sim.meter.bytesServed,
      seconds: took,
      peakConcurrent: sim.meter.peakActive,
      max1s: sim.meter.maxRate(1000) / cap,
      max10s: sim.meter.maxRate(10_000) / cap,
      efficiency: sim.meter.bytesServed / (cap * took),
    };
  } finally {
    await sim.close();
    await ctx.s3.send(new DeleteObjectCommand({ Bucket: "bench-caps", Key: key })).catch(() => undefined);
  }
}
