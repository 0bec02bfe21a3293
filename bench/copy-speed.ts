/**
 * Figure 3: uncapped copy of one large window (1 GiB) from the simulator into the emulator: our
 * copier (functions/copy-window.ts, in its own process) against `rclone copyurl` of the same URL to
 * the same emulator. Both run alternately, twice each in the full run; the best time of each counts.
 */
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { ensureBucket } from "../local/queues.ts";
import { type BenchContext, processCpuSeconds } from "./bench-context.ts";
import { type FigureResult, mib, ratio, verdict } from "./figures.ts";
import { LargeWindowSource } from "./large-window-source.ts";
import { rcloneCopyUrl, runNodeScript } from "./processes.ts";
import type { WindowCopyInput, WindowCopyOutput } from "./window-copier.ts";

const BUCKET = "bench-speed";
const PART_SIZE = 8 * 1024 * 1024;

interface Attempt {
  who: "ours" | "rclone";
  /** Process wall time, start-up included. */
  seconds: number;
  /** Ours only: from the request to the source until the record is written. */
  copySeconds?: number;
  bytes: number;
  peakRssKiB?: number;
  /** CPU the emulator process spent during this copy (its share of the work differs: see notes). */
  emulatorCpuSeconds: number;
}

export async function measureCopySpeed(ctx: BenchContext): Promise<FigureResult> {
  const size = ctx.smoke ? 16 * 1024 * 1024 : 1024 * 1024 * 1024;
  const rounds = ctx.smoke ? 1 : 2;
  await ensureBucket(ctx.s3, BUCKET);
  const source = await LargeWindowSource.start();
  const w = source.window(size);
  const attempts: Attempt[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      ctx.progress(`speed: our copier, ${mib(size)} window (round ${round}/${rounds})`);
      const cpu0 = processCpuSeconds(ctx.emulator.pid);
      const ours = await runNodeScript<WindowCopyOutput>("window-copier.ts", {
        endpoints: ctx.emulator.endpoints,
        bucket: BUCKET,
        prefix: `ours-${round}/`,
        sourceUrl: source.sim.url,
        source: "speed",
        stream: source.stream,
        from: w.from,
        duration: w.duration,
        partSize: PART_SIZE,
      } satisfies WindowCopyInput);
      if (ours.output.status !== "copied") throw new Error(`our copier failed: ${ours.output.error}`);
      attempts.push({
        who: "ours",
        seconds: ours.wallSeconds,
        copySeconds: ours.output.copySeconds,
        bytes: ours.output.bytes,
        peakRssKiB: ours.output.peakRssKiB,
        emulatorCpuSeconds: processCpuSeconds(ctx.emulator.pid) - cpu0,
      });
      await ctx.s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: ours.output.key }));
      if (ctx.rcloneUnavailable) continue;
      ctx.progress(`speed: rclone copyurl, ${mib(size)} window (round ${round}/${rounds})`);
      const key = `rclone-${round}/big.mp4`;
      const cpu1 = processCpuSeconds(ctx.emulator.pid);
      const r = await rcloneCopyUrl({ url: w.url, endpoints: ctx.emulator.endpoints, bucket: BUCKET, key });
      attempts.push({
        who: "rclone",
        seconds: r.seconds,
        bytes: ours.output.bytes,
        emulatorCpuSeconds: processCpuSeconds(ctx.emulator.pid) - cpu1,
      });
      await ctx.s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
    }
  } finally {
    await source.close();
  }
  const best = (who: Attempt["who"]) =>
    attempts
      .filter((a) => a.who === who)
      .reduce<Attempt | undefined>((b, a) => (!b || a.seconds < b.seconds ? a : b), undefined);
  const ours = best("ours")!;
  const rclone = best("rclone");
  const speed = (a: Attempt) => `${a.seconds.toFixed(1)} s (${(a.bytes / a.seconds / 1e6).toFixed(0)} MB/s)`;
  const rows: FigureResult["rows"] = [
    {
      figure: 3,
      what: `our copier, ${mib(ours.bytes)} window, uncapped`,
      measured: speed(ours),
      target: "-",
      verdict: "info",
    },
  ];
  if (rclone) {
    rows.push(
      {
        figure: 3,
        what: `rclone copyurl, same window`,
        measured: speed(rclone),
        target: "-",
        verdict: "ref",
      },
      {
        figure: 3,
        what: "time ours / time rclone",
        measured: ratio(ours.seconds / rclone.seconds),
        target: "<= 1.00x",
        verdict: verdict(ours.seconds <= rclone.seconds),
      },
    );
  } else {
    rows.push({
      figure: 3,
      what: "rclone copyurl, same window",
      measured: "-",
      target: "-",
      verdict: "skip",
    });
  }
  return {
    figure: 3,
    title: "Uncapped copy speed of one large window against rclone copyurl",
    rows,
    details: { windowBytes: ours.bytes, partSize: PART_SIZE, attempts },
    notes: [
      "Times are whole-process wall times (Node start-up included for ours, about 0.3 s; copySeconds in the JSON excludes it). " +
        "The emulator runs in its own process; emulatorCpuSeconds shows its work per copy: our uploads carry a per-part SHA-256 checksum that the emulator verifies, rclone's do not.",
    ],
  };
}
