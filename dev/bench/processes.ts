/**
 * The separate processes the benchmark runs: our copier and planner as Node children (so that
 * their CPU and memory are theirs alone), and Debian's rclone as the peer to compare with.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Endpoints } from "../../local/aws-clients.ts";

export interface ChildRun<T> {
  output: T;
  /** From spawn to exit, start-up included. */
  wallSeconds: number;
}

/** A child process run to its end: exit code, what it printed, its wall time (spawn to exit). */
export interface ChildExit {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Runs `command` with its output collected; `onSpawn` gets the child (e.g. to sample its memory). */
export async function runChild(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; onSpawn?: (child: ChildProcess) => void } = {},
): Promise<ChildExit> {
  const started = performance.now();
  const child = spawn(command, args, { env: options.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
  options.onSpawn?.(child);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (c) => resolve(c));
  });
  return { code, stdout, stderr, seconds: (performance.now() - started) / 1000 };
}

/** Runs `bench/<script>` with Node (this Node) and its input as JSON; parses its last stdout line. */
export async function runNodeScript<T>(
  script: string,
  input: unknown,
  nodeArgs: string[] = [],
): Promise<ChildRun<T>> {
  const path = fileURLToPath(new URL(script, import.meta.url));
  const { code, stdout, stderr, seconds } = await runChild(process.execPath, [
    ...nodeArgs,
    path,
    JSON.stringify(input),
  ]);
  const last = stdout.trim().split("\n").at(-1) ?? "";
  if (code !== 0 || !last.startsWith("{")) {
    throw new Error(`${script} exited with ${code}: ${stderr.trim().slice(-2000) || stdout.slice(-500)}`);
  }
  return { output: JSON.parse(last) as T, wallSeconds: seconds };
}

/** Why rclone cannot be used here, or undefined when it can. */
export function rcloneUnavailable(): string | undefined {
  const r = spawnSync("rclone", ["version"], { encoding: "utf8" });
  if (r.error) {
    return `rclone not found (${(r.error as NodeJS.ErrnoException).code ?? r.error.message}); install it with apt-get install rclone`;
  }
  if (r.status !== 0) return `rclone version exited with ${r.status}: ${r.stderr.trim()}`;
  return undefined;
}

/** `rclone version`'s first line, e.g. "rclone v1.60.1-DEV". */
export function rcloneVersion(): string {
  return spawnSync("rclone", ["version"], { encoding: "utf8" }).stdout.split("\n")[0]?.trim() ?? "";
}

export interface RcloneCopy {
  url: string;
  endpoints: Endpoints;
  bucket: string;
  key: string;
  /** `--bwlimit` in bytes per second (rounded to KiB/s, rclone's unit); absent: unlimited. */
  bwlimitBytesPerSecond?: number;
}

/** `rclone copyurl <url> emu:<bucket>/<key>` to the emulator; resolves with the process wall time. */
export async function rcloneCopyUrl(c: RcloneCopy): Promise<{ seconds: number; peakRssKiB?: number }> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    RCLONE_CONFIG_EMU_TYPE: "s3",
    RCLONE_CONFIG_EMU_PROVIDER: "Other",
    RCLONE_CONFIG_EMU_ENDPOINT: c.endpoints.s3Endpoint,
    RCLONE_CONFIG_EMU_REGION: c.endpoints.region,
    RCLONE_CONFIG_EMU_ACCESS_KEY_ID: c.endpoints.credentials?.accessKeyId ?? "embedded",
    RCLONE_CONFIG_EMU_SECRET_ACCESS_KEY: c.endpoints.credentials?.secretAccessKey ?? "embedded",
    RCLONE_CONFIG_EMU_FORCE_PATH_STYLE: "true",
  };
  // A CA bundle set for the machine makes rclone fail on a plain-http endpoint.
  delete env.AWS_CA_BUNDLE;
  const args = ["copyurl", c.url, `emu:${c.bucket}/${c.key}`, "--retries", "1", "--low-level-retries", "1"];
  if (c.bwlimitBytesPerSecond) args.push("--bwlimit", `${Math.round(c.bwlimitBytesPerSecond / 1024)}k`);
  // Its peak RSS from the kernel (/usr/bin/time %M, KiB) where that is installed.
  const time = "/usr/bin/time";
  const timed = existsSync(time);
  const timeFile = join(tmpdir(), `fb-rclone-time-${process.pid}-${Date.now()}.txt`);
  const { code, stderr, seconds } = timed
    ? await runChild(time, ["-f", "%M", "-o", timeFile, "rclone", ...args], { env })
    : await runChild("rclone", args, { env });
  let peakRssKiB: number | undefined;
  if (timed) {
    peakRssKiB = Number(readFileSync(timeFile, "utf8").trim().split("\n").at(-1)) || undefined;
    rmSync(timeFile, { force: true });
  }
  if (code !== 0) throw new Error(`rclone copyurl exited with ${code}: ${stderr.trim().slice(-1000)}`);
  return { seconds, ...(peakRssKiB ? { peakRssKiB } : {}) };
}
