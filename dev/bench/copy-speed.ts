/**
 * Figure 3: uncapped copy of one large window (1 GiB) from the simulator into the emulator: our
 * copier (functions/copier/copy-window.ts, in its own process), the whole `flussonic-backup run --once`
 * process (start-up, planning, the queue, the copy, the bookkeeping and the summary) and
 * `rclone copyurl` of the same window to the same emulator. They run in turn, twice each in the
 * full run; the best time of each counts. The emulator runs in its own process.
 */
import { loadavg } from "node:os";
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { ensureBucket } from "../../functions/queue/source-queues.ts";
import { type BenchContext, processCpuSeconds } from "./bench-context.ts";
import { type FigureResult, mib, ratio, verdict } from "./figures.ts";
import { rcloneCopyUrl, runNodeScript } from "./processes.ts";
import { OnceSource, runOnceProcess } from "./run-once.ts";
import type { WindowCopyInput, WindowCopyOutput } from "./window-copier.ts";

const BUCKET = "bench-speed";
const PART_SIZE = 8 * 1024 * 1024;
/** The goal for the whole `run --once` process (figure 4 measures it again). */
const RUN_ONCE_RSS_LIMIT_KIB = 200 * 1024;

interface Attempt {
  who: "ours" | "run --once" | "rclone";
  /** Process wall time, start-up included. */
  seconds: number;
  /** Ours only: from the request to the source until the record is written. */
  copySeconds?: number;
  bytes: number;
  peakRssKiB?: number;
  /** CPU (user + system) of the copying process, start-up included (ours only). */
  cpuSeconds?: number;
  /** CPU the emulator process spent during this copy. */
  emulatorCpuSeconds: number;
  /** 1-minute load average when the attempt started (other work on the machine). */
  loadAverage: number;
}

function loadAverage(): number {
  return Math.round(loadavg()[0]! * 100) / 100;
}

export async function measureCopySpeed(ctx: BenchContext): Promise<FigureResult> {
  const size = ctx.smoke ? 16 * 1024 * 1024 : 1024 * 1024 * 1024;
  const rounds = ctx.smoke ? 1 : 2;
  await ensureBucket(ctx.s3, BUCKET);
  // One 600 s window at the bitrate that makes it `size` bytes, recorded half an hour ago (the
  // real clock, so that `run --once` plans it as it would any window).
  const source = await OnceSource.start(size);
  const attempts: Attempt[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      ctx.progress(`speed: our copier, ${mib(size)} window (round ${round}/${rounds})`);
      let load = loadAverage();
      const cpu0 = processCpuSeconds(ctx.emulator.pid);
      const ours = await runNodeScript<WindowCopyOutput>("window-copier.ts", {
        endpoints: ctx.emulator.endpoints,
        bucket: BUCKET,
        prefix: `ours-${round}/`,
        sourceUrl: source.sim.url,
        source: "speed",
        stream: source.stream,
        from: source.from,
        duration: source.duration,
        partSize: PART_SIZE,
      } satisfies WindowCopyInput);
      if (ours.output.status !== "copied") throw new Error(`our copier failed: ${ours.output.error}`);
      attempts.push({
        who: "ours",
        seconds: ours.wallSeconds,
        copySeconds: ours.output.copySeconds,
        bytes: ours.output.bytes,
        peakRssKiB: ours.output.peakRssKiB,
        cpuSeconds: ours.output.cpuSeconds,
        emulatorCpuSeconds: processCpuSeconds(ctx.emulator.pid) - cpu0,
        loadAverage: load,
      });
      await ctx.s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: ours.output.key }));

      ctx.progress(`speed: flussonic-backup run --once, ${mib(size)} window (round ${round}/${rounds})`);
      load = loadAverage();
      const cpu1 = processCpuSeconds(ctx.emulator.pid);
      const once = await runOnceProcess(ctx, source, BUCKET, `once-${round}/`);
      attempts.push({
        who: "run --once",
        seconds: once.seconds,
        bytes: once.bytes,
        peakRssKiB: once.peakRssKiB,
        emulatorCpuSeconds: processCpuSeconds(ctx.emulator.pid) - cpu1,
        loadAverage: load,
      });

      if (ctx.rcloneUnavailable) continue;
      ctx.progress(`speed: rclone copyurl, ${mib(size)} window (round ${round}/${rounds})`);
      const key = `rclone-${round}/big.mp4`;
      load = loadAverage();
      const cpu2 = processCpuSeconds(ctx.emulator.pid);
      const r = await rcloneCopyUrl({
        url: source.url,
        endpoints: ctx.emulator.endpoints,
        bucket: BUCKET,
        key,
      });
      attempts.push({
        who: "rclone",
        seconds: r.seconds,
        bytes: ours.output.bytes,
        emulatorCpuSeconds: processCpuSeconds(ctx.emulator.pid) - cpu2,
        loadAverage: load,
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
  const once = best("run --once")!;
  const onceRss = Math.max(...attempts.filter((a) => a.who === "run --once").map((a) => a.peakRssKiB ?? 0));
  const rclone = best("rclone");
  const speed = (a: Attempt) => `${a.seconds.toFixed(1)} s (${(a.bytes / a.seconds / 1e6).toFixed(0)} MB/s)`;
  const rows: FigureResult["rows"] = [
    {
      figure: 3,
      what: `our copier process, ${mib(ours.bytes)} window, uncapped`,
      measured: speed(ours),
      target: "-",
      verdict: "info",
    },
    {
      figure: 3,
      what: "flussonic-backup run --once (whole process), same window",
      measured: speed(once),
      target: "-",
      verdict: "info",
    },
  ];
  if (rclone) {
    rows.push(
      {
        figure: 3,
        what: "rclone copyurl, same window",
        measured: speed(rclone),
        target: "-",
        verdict: "ref",
      },
      {
        figure: 3,
        what: "time copier process / time rclone",
        measured: ratio(ours.seconds / rclone.seconds),
        target: "<= 1.00x",
        verdict: verdict(ours.seconds <= rclone.seconds),
      },
      {
        figure: 3,
        what: "time run --once / time rclone",
        measured: ratio(once.seconds / rclone.seconds),
        target: "<= 1.00x",
        verdict: verdict(once.seconds <= rclone.seconds),
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
  rows.push({
    figure: 3,
    what: "run --once peak RSS (whole process, emulator in its own)",
    measured: `${(onceRss / 1024).toFixed(0)} MiB`,
    target: "< 200 MiB",
    verdict: verdict(onceRss < RUN_ONCE_RSS_LIMIT_KIB),
  });
  const loads = attempts.map((a) => a.loadAverage);
  return {
    figure: 3,
    title: "Uncapped copy speed of one large window against rclone copyurl",
    rows,
    details: { windowBytes: ours.bytes, partSize: PART_SIZE, attempts },
    notes: [
      "Times are whole-process wall times: Node start-up is included for ours (about 0.3 s; copySeconds in the JSON excludes it), and for run --once also planning, the queue, the bookkeeping and the summary. " +
        `Each copy is timed alone, one after the other; the machine's 1-minute load average at their starts was ${Math.min(...loads).toFixed(2)} to ${Math.max(...loads).toFixed(2)} (2 cores: the simulator, the emulator and the copier share them, so other work slows every row). ` +
        "The emulator runs in its own process and is the slowest stage (it hashes and writes every part, then joins them); emulatorCpuSeconds shows its work per copy. " +
        "Our parts carry an SHA-256 checksum (x-amz-checksum-sha256, which S3 verifies; the emulator stores it) computed once per part and reused as the signature's payload hash; rclone copyurl sends 5 MiB parts, 4 at once (its defaults).",
    ],
  };
}
