/**
 * The whole `flussonic-backup run --once` process copying one large window (figures 3 and 4): the
 * real command line (cli/main.ts) pointed at a simulated source with one 600-second window of
 * about `bytes` and at the emulator process through the standard AWS variables, as a user points
 * it at any S3/SQS endpoint. Measures the process's wall time (start-up, planning, queueing, the
 * copy, the bookkeeping and the summary) and its peak RSS (the kernel's maxRSS of the process, from
 * /usr/bin/time, else VmHWM sampled from /proc). The emulator runs in its own process, so the RSS
 * is ours alone; with `--embedded` the emulator would run inside the process and hold the upload's
 * parts and the object in memory (see the figure's notes).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DeleteObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { FlussonicSimulator } from "../../simulator/simulator.ts";
import type { BenchContext } from "./bench-context.ts";
import { runChild } from "./processes.ts";

export interface RunOnceResult {
  /** Process wall time, start-up included. */
  seconds: number;
  /** Peak RSS of the process (KiB). */
  peakRssKiB: number;
  /** How the peak was read: "maxrss" (exact, /usr/bin/time) or "vmhwm" (sampled every 50 ms). */
  rssFrom: "maxrss" | "vmhwm";
  /** Bytes of the window copied (the summary's count). */
  bytes: number;
  /** The window's URL at the source (what rclone is given). */
  url: string;
  summary: string;
}

const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));
const TIME = "/usr/bin/time";
const WINDOW_SECONDS = 600;

/** A source with one stream whose archive is one aligned 600 s window at the bitrate for `bytes`. */
export class OnceSource {
  readonly sim: FlussonicSimulator;
  readonly from: number;
  readonly stream = "big";
  readonly duration = WINDOW_SECONDS;

  private constructor(sim: FlussonicSimulator, from: number) {
    this.sim = sim;
    this.from = from;
  }

  static async start(bytes: number): Promise<OnceSource> {
    const now = Math.floor(Date.now() / 1000);
    // Old enough to be planned (settle margin, open window), aligned as the planner cuts windows.
    const from = Math.floor(now / WINDOW_SECONDS) * WINDOW_SECONDS - 3 * WINDOW_SECONDS;
    const bitrateBps = Math.round((bytes / WINDOW_SECONDS) * 8);
    const sim = await FlussonicSimulator.start({
      liveOnlyStreams: 0,
      streams: [{ name: "big", bitrateBps, ranges: [{ from, to: from + WINDOW_SECONDS }] }],
    });
    return new OnceSource(sim, from);
  }

  get url(): string {
    return `${this.sim.url}/${this.stream}/archive-${this.from}-${WINDOW_SECONDS}.mp4`;
  }

  close(): Promise<void> {
    return this.sim.close();
  }
}

/**
 * Runs `node cli/main.ts run --once --config <file>` against `source` and the emulator process,
 * into `bucket` under `prefix` (a fresh prefix each time: nothing is already stored).
 */
export async function runOnceProcess(
  ctx: BenchContext,
  source: OnceSource,
  bucket: string,
  prefix: string,
  /** Top-level config fields added to the run's configuration (e.g. `{ spoolMiB: 0 }`). */
  extra: Record<string, unknown> = {},
  /** Node options of the run's process (NODE_OPTIONS), e.g. V8 heap flags. */
  nodeOptions?: string,
  /** Other variables of the run's process (e.g. FLUSSONIC_BACKUP_REEXEC). */
  moreEnv: Record<string, string> = {},
): Promise<RunOnceResult> {
  const dir = mkdtempSync(join(tmpdir(), "fb-once-"));
  const config = join(dir, "config.json");
  writeFileSync(
    config,
    JSON.stringify({
      bucket,
      prefix,
      ...extra,
      sources: [
        {
          name: "once",
          url: source.sim.url,
          streams: [source.stream],
          retentionDays: 1,
          maxConcurrentCopies: 1,
          // Uncapped: far above what loopback carries.
          maxBandwidthMbps: 100_000,
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
  if (nodeOptions) env.NODE_OPTIONS = nodeOptions;
  Object.assign(env, moreEnv);
  delete env.AWS_PROFILE;
  delete env.AWS_SESSION_TOKEN;
  delete env.AWS_CA_BUNDLE;
  const useTime = existsSync(TIME);
  const timeFile = join(dir, "time.txt");
  const args = ["--config", config];
  const command = useTime
    ? [TIME, "-f", "%M", "-o", timeFile, process.execPath, MAIN, "run", "--once", ...args]
    : [process.execPath, MAIN, "run", "--once", ...args];
  let sampled = 0;
  let sampler: NodeJS.Timeout | undefined;
  const { code, stdout, stderr, seconds } = await runChild(command[0]!, command.slice(1), {
    env,
    onSpawn: (child) => {
      if (useTime) return;
      sampler = setInterval(() => {
        try {
          const m = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${child.pid}/status`, "latin1"));
          if (m) sampled = Math.max(sampled, Number(m[1]));
        } catch {
          // exited
        }
      }, 50);
    },
  });
  if (sampler) clearInterval(sampler);
  try {
    if (code !== 0) {
      throw new Error(`run --once exited with ${code}: ${(stderr || stdout).trim().slice(-800)}`);
    }
    const copied = /Copied (\d+) window\(s\)/.exec(stdout);
    if (copied?.[1] !== "1") throw new Error(`run --once did not copy the window: ${stdout.trim()}`);
    const peakRssKiB = useTime ? Number(readFileSync(timeFile, "utf8").trim().split("\n").at(-1)) : sampled;
    return {
      seconds,
      peakRssKiB,
      rssFrom: useTime ? "maxrss" : "vmhwm",
      bytes: await storedWindowBytes(ctx, bucket, prefix),
      url: source.url,
      summary: stdout.trim().split("\n")[0] ?? "",
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Size of the window object a run stored under `prefix`; deletes what the run stored there. */
export async function storedWindowBytes(ctx: BenchContext, bucket: string, prefix: string): Promise<number> {
  const listed = await ctx.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  const objects = listed.Contents ?? [];
  const window = objects.find((o) => o.Key?.endsWith(".mp4"));
  for (const o of objects) await ctx.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key }));
  return window?.Size ?? 0;
}
