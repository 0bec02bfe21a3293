/**
 * One archive window copied by the real copier path (functions/copier/copy-window.ts: throttle, SHA-256,
 * container check, multipart upload) in a process of its own, so that its peak RSS is the
 * copier's alone (the simulator and the emulator run elsewhere). Prints one JSON line.
 *
 *   node dev/bench/window-copier.ts '<WindowCopyInput as JSON>'
 */
import { readFileSync } from "node:fs";
import { parseConfig } from "../../functions/config/config.ts";
import { copyWindow } from "../../functions/copier/copy-window.ts";
import { FlussonicClient } from "../../functions/source/flussonic.ts";
import { TokenBucket, unlimited } from "../../functions/source/throttle.ts";
import { BackupStore } from "../../functions/store/backup-store.ts";
import { defaultSpoolDir } from "../../functions/store/spool-upload.ts";
import { createS3Client, type Endpoints } from "../../local/aws-clients.ts";

export interface WindowCopyInput {
  endpoints: Endpoints;
  bucket: string;
  prefix: string;
  sourceUrl: string;
  source: string;
  stream: string;
  from: number;
  duration: number;
  /** Bandwidth cap in bytes per second; absent: uncapped. */
  capBytesPerSecond?: number;
  partSize: number;
  /** Parts uploading at once (default: the copier's). */
  uploadQueueSize?: number;
  /** The copier's spool threshold (config spoolMiB); absent or 0: windows go through memory buffers. */
  spoolMiB?: number;
}

export interface WindowCopyOutput {
  /** "copied", or "failed" (then `error` says why; the peak RSS is still the copier's). */
  status: string;
  error?: string;
  /** Bytes read from the source (all of them when copied). */
  bytesRead: number;
  key: string;
  bytes: number;
  sha256: string;
  /** From the request to the source until the completion record is written. */
  copySeconds: number;
  /** Peak resident set size of this process (kernel's VmHWM / maxRSS), KiB. */
  peakRssKiB: number;
  /** RSS after loading the code, before the copy, KiB. */
  baselineRssKiB: number;
  /** CPU (user + system) this process used in all, start-up included, seconds. */
  cpuSeconds: number;
  /** CPU (user + system) of the copy alone (copyWindow, from its call to its result), seconds. */
  copyCpuSeconds: number;
}

/** VmHWM from /proc/self/status (Linux), else the maxRSS Node reports; KiB. */
export function peakRssKiB(): number {
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync("/proc/self/status", "latin1"));
    if (m) return Number(m[1]);
  } catch {
    // not Linux: fall through
  }
  return process.resourceUsage().maxRSS;
}

export async function copyOneWindow(input: WindowCopyInput): Promise<WindowCopyOutput> {
  const baselineRssKiB = Math.round(process.memoryUsage().rss / 1024);
  const config = parseConfig(
    JSON.stringify({
      bucket: input.bucket,
      prefix: input.prefix,
      sources: [{ name: input.source, url: input.sourceUrl, maxConcurrentCopies: 1 }],
    }),
    "bench-copier.json",
  );
  const source = config.sources[0]!;
  const store = new BackupStore(createS3Client(input.endpoints), config.bucket, config.prefix);
  const flussonic = new FlussonicClient(source, { type: "none" });
  const now = () => Math.floor(Date.now() / 1000);
  const started = performance.now();
  const cpuAtStart = process.cpuUsage();
  const copyCpu = () => {
    const u = process.cpuUsage(cpuAtStart);
    return Math.round((u.user + u.system) / 1e4) / 100;
  };
  let bytesRead = 0;
  const failed = (error: unknown): WindowCopyOutput => ({
    status: "failed",
    error:
      error instanceof Error
        ? `${error.message}${error.cause instanceof Error ? ` (${error.cause.name})` : ""}`
        : String(error),
    bytesRead,
    key: "",
    bytes: 0,
    sha256: "",
    copySeconds: (performance.now() - started) / 1000,
    peakRssKiB: peakRssKiB(),
    baselineRssKiB,
    cpuSeconds: cpuSeconds(),
    copyCpuSeconds: copyCpu(),
  });
  const outcome = await copyWindow(
    {
      store,
      flussonic,
      throttle: input.capBytesPerSecond ? new TokenBucket(input.capBytesPerSecond) : unlimited,
      now,
      partSize: input.partSize,
      ...(input.uploadQueueSize ? { uploadQueueSize: input.uploadQueueSize } : {}),
      ...(input.spoolMiB
        ? { spool: { dir: defaultSpoolDir(), singleMaxBytes: input.spoolMiB * 1024 * 1024 } }
        : {}),
      copyTimeoutSeconds: 900,
      onBytes: (n) => {
        bytesRead += n;
      },
    },
    {
      v: 1,
      source: input.source,
      stream: input.stream,
      from: input.from,
      duration: input.duration,
      format: "mp4",
      leaseUntil: now() + 86_400,
    },
  ).catch((error: unknown) => error as Error);
  if (outcome instanceof Error) return failed(outcome);
  const copySeconds = (performance.now() - started) / 1000;
  const copyCpuSeconds = copyCpu();
  await flussonic.close();
  store.s3.destroy();
  if (outcome.status === "stale") throw new Error("window copier: the window was judged stale");
  return {
    status: outcome.status,
    bytesRead,
    key: outcome.record.key,
    bytes: outcome.record.size,
    sha256: outcome.record.sha256,
    copySeconds,
    peakRssKiB: peakRssKiB(),
    baselineRssKiB,
    cpuSeconds: cpuSeconds(),
    copyCpuSeconds,
  };
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return Math.round((u.user + u.system) / 1e4) / 100;
}

if (import.meta.main) {
  const input = JSON.parse(process.argv[2] ?? "{}") as WindowCopyInput;
  const out = await copyOneWindow(input);
  process.stdout.write(`${JSON.stringify(out)}\n`);
}
