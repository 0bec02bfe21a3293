/**
 * Figure 4: peak RSS of the copier process while it copies a 2 GiB window and a 200 MiB window
 * (uncapped, our copier alone in its process; the simulator and the emulator run elsewhere), with
 * the spool (the default: store/spool-upload.ts) and, for the 200 MiB window, without it (memory
 * buffers, part size x (queue size + 1)); and of the whole `flussonic-backup run --once` process
 * copying a 1 GiB window (the emulator in its own process, as with any S3 endpoint), with and
 * without the spool, next to `rclone copyurl` of the same window (its peak RSS and time).
 */
import { createHash } from "node:crypto";
import { DeleteObjectCommand, GetObjectCommand } from "@aws-sdk/client-s3";
import { UPLOAD_QUEUE_SIZE } from "../../functions/copier/copy-window.ts";
import { ensureBucket } from "../../functions/queue/source-queues.ts";
import type { BenchContext } from "./bench-context.ts";
import { type FigureResult, mib, verdict } from "./figures.ts";
import { LargeWindowSource } from "./large-window-source.ts";
import { rcloneCopyUrl, runNodeScript } from "./processes.ts";
import { OnceSource, type RunOnceResult, runOnceProcess } from "./run-once.ts";
import type { WindowCopyInput, WindowCopyOutput } from "./window-copier.ts";

const BUCKET = "bench-memory";
const PART_SIZE = 8 * 1024 * 1024;
/** The copier alone (issue 26's bound). */
const LIMIT_KIB = 200 * 1024;
/** Issue 22 item 6's goal for the whole `run --once` process copying a 1 GiB window. */
const ONCE_LIMIT_KIB = 128 * 1024;
/** `run` without its re-exec (cli/main.ts: --liftoff-only, MALLOC_ARENA_MAX=2): what it saves. */
const NO_REEXEC = { FLUSSONIC_BACKUP_REEXEC: "0" };
/** The copier's spool threshold (the config's default spoolMiB). */
const SPOOL_MIB = 256;
/** "Not growing": ten times the data may cost at most this much more RSS. */
const GROWTH_LIMIT_KIB = 32 * 1024;

interface MemoryCase {
  label: string;
  /** Bytes the copier streamed from the source. */
  bytes: number;
  status: string;
  error?: string;
  peakRssKiB: number;
  baselineRssKiB: number;
  copySeconds: number;
  /** CPU (user + system) of the copier process, start-up included. */
  cpuSeconds: number;
  /** Spooled to disk (the default), or through memory buffers. */
  spool: boolean;
  /** The stored object read back whole: its size and whether its SHA-256 is the copier's. */
  readBack?: { bytes: number; sameSha256: boolean };
}

export async function measureCopierMemory(ctx: BenchContext): Promise<FigureResult> {
  const sizes = ctx.smoke
    ? [
        { label: "large", bytes: 64 * 1024 * 1024, spool: true },
        { label: "small", bytes: 8 * 1024 * 1024, spool: true },
        { label: "small memory", bytes: 8 * 1024 * 1024, spool: false },
      ]
    : [
        { label: "2 GiB", bytes: 2 * 1024 * 1024 * 1024, spool: true },
        { label: "200 MiB", bytes: 200 * 1024 * 1024, spool: true },
        { label: "200 MiB memory", bytes: 200 * 1024 * 1024, spool: false },
      ];
  await ensureBucket(ctx.s3, BUCKET);
  const source = await LargeWindowSource.start();
  const cases: MemoryCase[] = [];
  try {
    for (const size of sizes) {
      const w = source.window(size.bytes);
      ctx.progress(`memory: copier process copying a ${mib(size.bytes)} window`);
      const run = await runNodeScript<WindowCopyOutput>("window-copier.ts", {
        endpoints: ctx.emulator.endpoints,
        bucket: BUCKET,
        prefix: `${size.label.replace(/\W/g, "")}/`,
        sourceUrl: source.sim.url,
        source: "memory",
        stream: source.stream,
        from: w.from,
        duration: w.duration,
        partSize: PART_SIZE,
        ...(size.spool ? { spoolMiB: ctx.smoke ? 16 : SPOOL_MIB } : {}),
      } satisfies WindowCopyInput);
      // Read back whole: a window of 2 GiB or more is past what one file read or write of Node
      // takes, which the emulator's file store must get past (local/large-file-io.ts).
      let readBack: MemoryCase["readBack"];
      if (run.output.status === "copied" && run.output.key) {
        ctx.progress(`memory: reading the stored ${mib(size.bytes)} window back`);
        const got = await ctx.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: run.output.key }));
        const hash = createHash("sha256");
        let bytes = 0;
        for await (const chunk of got.Body as AsyncIterable<Uint8Array>) {
          hash.update(chunk);
          bytes += chunk.length;
        }
        readBack = { bytes, sameSha256: hash.digest("hex") === run.output.sha256 };
      }
      cases.push({
        label: size.label,
        bytes: run.output.bytesRead,
        status: run.output.status,
        ...(run.output.error ? { error: run.output.error } : {}),
        peakRssKiB: run.output.peakRssKiB,
        baselineRssKiB: run.output.baselineRssKiB,
        copySeconds: run.output.copySeconds,
        cpuSeconds: run.output.cpuSeconds,
        spool: size.spool,
        ...(readBack ? { readBack } : {}),
      });
      // The emulator keeps objects on disk: free the space before the next case.
      if (run.output.key) await ctx.s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: run.output.key }));
    }
  } finally {
    await source.close();
  }
  const onceBytes = ctx.smoke ? 16 * 1024 * 1024 : 1024 * 1024 * 1024;
  const onceSource = await OnceSource.start(onceBytes);
  let once: RunOnceResult;
  let onceMemory: RunOnceResult;
  let onceNoReexec: RunOnceResult;
  let rclone: { seconds: number; peakRssKiB?: number } | undefined;
  try {
    ctx.progress(`memory: flussonic-backup run --once copying a ${mib(onceBytes)} window (spool)`);
    once = await runOnceProcess(ctx, onceSource, BUCKET, "once/");
    ctx.progress(`memory: flussonic-backup run --once copying a ${mib(onceBytes)} window (spoolMiB 0)`);
    onceMemory = await runOnceProcess(ctx, onceSource, BUCKET, "once-memory/", { spoolMiB: 0 });
    ctx.progress(`memory: run --once, ${mib(onceBytes)} window (spool), without the re-exec`);
    onceNoReexec = await runOnceProcess(ctx, onceSource, BUCKET, "once-plain/", {}, undefined, NO_REEXEC);
    if (!ctx.rcloneUnavailable) {
      ctx.progress(`memory: rclone copyurl of the same ${mib(onceBytes)} window`);
      rclone = await rcloneCopyUrl({
        url: onceSource.url,
        endpoints: ctx.emulator.endpoints,
        bucket: BUCKET,
        key: "rclone/big.mp4",
      });
      await ctx.s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: "rclone/big.mp4" }));
    }
  } finally {
    await onceSource.close();
  }
  const [large, small, smallMemory] = cases as [MemoryCase, MemoryCase, MemoryCase];
  const growth = large.peakRssKiB - small.peakRssKiB;
  const rss = (c: MemoryCase) =>
    `${(c.peakRssKiB / 1024).toFixed(0)} MiB${c.status === "copied" ? "" : ` (upload ${c.status} at the emulator)`}`;
  const notes = [
    `Peak RSS is the kernel's VmHWM of the copier process; about ${(small.baselineRssKiB / 1024).toFixed(0)} MiB of it is Node with the AWS SDK, undici and zod loaded before the copy starts (baselineRssKiB).`,
    `CPU of the copier process (user + system, start-up included): ${cases.map((c) => `${c.label} ${c.cpuSeconds.toFixed(1)} s in ${c.copySeconds.toFixed(1)} s`).join("; ")}.`,
    `Spool: a window expected up to spoolMiB (${SPOOL_MIB}) is written to a file under the OS temp directory and stored with one PutObject; a larger one in 64 MiB parts, each its own spool file uploaded while the download goes on. Memory buffers (spoolMiB 0): parts sized from the window within ${(PART_SIZE * (UPLOAD_QUEUE_SIZE + 1)) / 1024 / 1024} MiB of buffers.`,
    `run --once: the command as a user types it (cli/main.ts re-executes \`run\` with --liftoff-only and MALLOC_ARENA_MAX=2, same pid), the kernel's maximum RSS of the whole process (${once.rssFrom === "maxrss" ? "/usr/bin/time" : "VmHWM sampled every 50 ms"}), pointed at the emulator process through AWS_ENDPOINT_URL_S3/SQS. With --embedded the emulator (fauxqs) runs inside the process and keeps every part of an upload, then the joined object, in memory: for a 1 GiB window that alone is over 1 GiB.`,
  ];
  for (const c of cases.filter((c) => c.status !== "copied")) {
    notes.push(
      `The ${c.label} window streamed whole through the copier (${mib(c.bytes)} read, every part uploaded) but the emulator did not complete the upload: ${c.error}. Its peak RSS covers the whole download and upload of the parts.`,
    );
  }
  return {
    figure: 4,
    title: "Copier peak RSS (own process)",
    rows: [
      {
        figure: 4,
        what: `copier peak RSS, ${mib(large.bytes)} window`,
        measured: rss(large),
        target: "< 200 MiB",
        verdict: verdict(large.peakRssKiB < LIMIT_KIB),
      },
      {
        figure: 4,
        what: `copier peak RSS, ${mib(small.bytes)} window`,
        measured: rss(small),
        target: "< 200 MiB",
        verdict: verdict(small.peakRssKiB < LIMIT_KIB),
      },
      {
        figure: 4,
        what: `${mib(large.bytes)} window stored and read back whole (size, SHA-256)`,
        measured: large.readBack
          ? `${mib(large.readBack.bytes)}, SHA-256 ${large.readBack.sameSha256 ? "the copier's" : "DIFFERENT"}`
          : `not stored (${large.status})`,
        target: "every byte",
        verdict: verdict(large.readBack?.bytes === large.bytes && large.readBack.sameSha256),
      },
      {
        figure: 4,
        what: "peak RSS growth, small -> large window",
        measured: `${(growth / 1024).toFixed(0)} MiB`,
        target: "< 32 MiB",
        verdict: verdict(growth < GROWTH_LIMIT_KIB),
      },
      {
        figure: 4,
        what: `copier peak RSS, ${mib(smallMemory.bytes)} window, no spool (memory buffers)`,
        measured: rss(smallMemory),
        target: "-",
        verdict: "info",
      },
      {
        figure: 4,
        what: `run --once peak RSS (whole process), ${mib(once.bytes)} window, spooled`,
        measured: `${(once.peakRssKiB / 1024).toFixed(0)} MiB`,
        target: "< 128 MiB",
        verdict: verdict(once.peakRssKiB < ONCE_LIMIT_KIB),
      },
      {
        figure: 4,
        what: `run --once peak RSS, ${mib(onceMemory.bytes)} window, spoolMiB 0 (memory buffers)`,
        measured: `${(onceMemory.peakRssKiB / 1024).toFixed(0)} MiB`,
        target: "-",
        verdict: "info",
      },
      {
        figure: 4,
        what: `run --once peak RSS, ${mib(onceNoReexec.bytes)} window, spooled, FLUSSONIC_BACKUP_REEXEC=0 (no --liftoff-only, no MALLOC_ARENA_MAX=2)`,
        measured: `${(onceNoReexec.peakRssKiB / 1024).toFixed(0)} MiB in ${onceNoReexec.seconds.toFixed(1)} s`,
        target: "-",
        verdict: "info",
      },
      rclone
        ? {
            figure: 4,
            what: "rclone copyurl of the same window: peak RSS; time run --once (spooled) / time rclone",
            measured: `${rclone.peakRssKiB ? `${(rclone.peakRssKiB / 1024).toFixed(0)} MiB` : "-"}; ${once.seconds.toFixed(1)} s / ${rclone.seconds.toFixed(1)} s = ${(once.seconds / rclone.seconds).toFixed(2)}`,
            target: "time <= 1.00",
            verdict: verdict(once.seconds <= rclone.seconds),
          }
        : {
            figure: 4,
            what: "rclone copyurl of the same window",
            measured: "-",
            target: "-",
            verdict: "skip",
          },
    ],
    details: {
      partSize: PART_SIZE,
      queueSize: UPLOAD_QUEUE_SIZE,
      spoolMiB: SPOOL_MIB,
      cases,
      runOnce: once,
      runOnceMemory: onceMemory,
      runOnceNoReexec: onceNoReexec,
      ...(rclone ? { rclone } : {}),
    },
    notes,
  };
}
