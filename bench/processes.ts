/**
 * The separate processes the benchmark runs: our copier and planner as Node children (so that
 * their CPU and memory are theirs alone), and Debian's rclone as the peer to compare with.
 */
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Endpoints } from "../local/aws-clients.ts";

export interface ChildRun<T> {
  output: T;
  /** From spawn to exit, start-up included. */
  wallSeconds: number;
}

/** Runs `bench/<script>` with Node (this Node) and its input as JSON; parses its last stdout line. */
export async function runNodeScript<T>(
  script: string,
  input: unknown,
  nodeArgs: string[] = [],
): Promise<ChildRun<T>> {
  const path = fileURLToPath(new URL(script, import.meta.url));
  const started = performance.now();
  const child = spawn(process.execPath, [...nodeArgs, path, JSON.stringify(input)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
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
  const wallSeconds = (performance.now() - started) / 1000;
  const last = stdout.trim().split("\n").at(-1) ?? "";
  if (code !== 0 || !last.startsWith("{")) {
    throw new Error(`${script} exited with ${code}: ${stderr.trim().slice(-2000) || stdout.slice(-500)}`);
  }
  return { output: JSON.parse(last) as T, wallSeconds };
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
export async function rcloneCopyUrl(c: RcloneCopy): Promise<{ seconds: number }> {
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
  const started = performance.now();
  const child = spawn("rclone", args, { env, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (c) => resolve(c));
  });
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`rclone copyurl exited with ${code}: ${stderr.trim().slice(-1000)}`);
  return { seconds };
}
