/**
 * For the service tests: `flussonic-backup run` as a user starts it (the package's bin, the file
 * `npx flussonic-backup` runs, on the Node 24 of node_modules/.bin), in a child process with real
 * argv; its output, signals and exit code; `/metrics` scraped and read.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "../..");
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { bin: Record<string, string> };
export const BIN = join(ROOT, pkg.bin["flussonic-backup"]!);

export interface RunProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** The exit code (null when a signal ended it). */
  exited: Promise<number | null>;
  signal(name: NodeJS.Signals): void;
}

/** Starts `flussonic-backup ...args` with PATH (Node 24 first), HOME and `env` only. */
export function startRun(
  args: readonly string[],
  o: { cwd: string; env?: Record<string, string> },
): RunProcess {
  const env: Record<string, string> = {
    PATH: `${join(ROOT, "node_modules/.bin")}:${process.env.PATH ?? ""}`,
  };
  if (process.env.HOME) env.HOME = process.env.HOME;
  const child = spawn(BIN, [...args], {
    cwd: o.cwd,
    env: { ...env, ...o.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr!.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once("close", (code) => r(code)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    signal(name) {
      child.kill(name);
    },
  };
}

/** Polls `check` every 100 ms until it returns something other than undefined; fails after `ms`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  ms = 20_000,
  context: () => string = () => "",
): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}\n${context()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The metrics URL the service printed (`Metrics on http://host:port/metrics, ...`). */
export function metricsUrl(stdout: string): string | undefined {
  return /Metrics on (http:\/\/\S+)\/metrics/.exec(stdout)?.[1];
}

/** One sample of a Prometheus text exposition: `name{a="x",b="y"}` exactly as labelled. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries(
      [...(m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]),
    );
    const want = Object.entries(labels);
    if (want.length !== Object.keys(got).length) continue;
    if (want.every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

export async function scrape(base: string): Promise<string> {
  const res = await fetch(`${base}/metrics`);
  return res.text();
}

/** Multipart uploads the on-disk emulator state of `dir` holds, with their part counts. */
export function openUploads(stateDir: string): number[] {
  const mp = join(stateDir, "s3", "_multipart");
  if (!existsSync(mp)) return [];
  return readdirSync(mp).map((id) => {
    const parts = join(mp, id, "parts");
    return existsSync(parts) ? readdirSync(parts).filter((f) => f.endsWith(".data")).length : 0;
  });
}

/** Open multipart uploads of the embedded store: upload id → parts uploaded so far. */
export function openUploadParts(stateDir: string): Map<string, number> {
  const mp = join(stateDir, "s3", "_multipart");
  if (!existsSync(mp)) return new Map();
  return new Map(
    readdirSync(mp).map((id) => {
      const parts = join(mp, id, "parts");
      return [id, existsSync(parts) ? readdirSync(parts).filter((f) => f.endsWith(".data")).length : 0];
    }),
  );
}

/** Writes a configuration with one source `src1` at `url`. */
export function writeConfig(
  dir: string,
  url: string,
  source: Record<string, unknown> = {},
  top = {},
): string {
  const file = join(dir, "config.json");
  writeFileSync(
    file,
    JSON.stringify({
      bucket: "service-backup",
      schedule: "rate(1 minute)",
      ...top,
      sources: [
        {
          name: "src1",
          url,
          retentionDays: 0.02,
          maxConcurrentCopies: 1,
          maxBandwidthMbps: 1000,
          ...source,
        },
      ],
    }),
  );
  return file;
}
