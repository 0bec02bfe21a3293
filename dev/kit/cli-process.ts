/**
 * For the CLI tests: the program run as a user runs it. The file `npx flussonic-backup` runs (the
 * package's `bin`, which npm links as node_modules/.bin/flussonic-backup) is executed in a child
 * process with real argv (no shell), on the Node 24 of node_modules/.bin, with a clean environment:
 * only PATH and HOME and what a test passes (the AWS variables, a source's password).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { GetObjectCommand, ListObjectsV2Command, S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { ListQueuesCommand, SQSClient } from "@aws-sdk/client-sqs";
import { queueDepth } from "../../functions/queue/source-queues.ts";

export const ROOT = resolve(import.meta.dirname, "../..");
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { bin: Record<string, string> };
/** The package's `flussonic-backup` bin: what `npx flussonic-backup` executes. */
export const BIN = join(ROOT, pkg.bin["flussonic-backup"]!);

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** The child's environment: PATH with node_modules/.bin first (Node 24), HOME, and `extra`. */
export function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {
    PATH: `${join(ROOT, "node_modules/.bin")}:${process.env.PATH ?? ""}`,
  };
  for (const k of ["HOME", "TMPDIR", "LANG"]) {
    const v = process.env[k];
    if (v !== undefined) env[k] = v;
  }
  return { ...env, ...extra };
}

/** Runs `flussonic-backup ...args` to its end. */
export function cli(
  args: readonly string[],
  o: { cwd: string; env?: Record<string, string>; timeoutMs?: number },
): Promise<CliResult> {
  const started = performance.now();
  return new Promise((done) => {
    execFile(
      BIN,
      [...args],
      { cwd: o.cwd, env: childEnv(o.env), timeout: o.timeoutMs ?? 45_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code =
          error === null ? 0 : typeof error.code === "number" ? error.code : error.killed ? -9 : -1;
        done({ code, stdout, stderr, ms: performance.now() - started });
      },
    );
  });
}

/** A long-running `flussonic-backup run` (service): its output so far, SIGTERM, its exit code. */
export interface CliService {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** SIGTERM and the exit code (null when a signal ended it). */
  stop(): Promise<number | null>;
}

export function startCli(
  args: readonly string[],
  o: { cwd: string; env?: Record<string, string> },
): CliService {
  const child = spawn(BIN, [...args], {
    cwd: o.cwd,
    env: childEnv(o.env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once("close", (code) => r(code)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}

/** Polls `check` every 100 ms until it returns a value other than undefined, or fails after `ms`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** S3 and SQS clients of the test itself, on an emulator's URL. */
export function awsClients(url: string): { s3: S3Client; sqs: SQSClient; close(): void } {
  const credentials = { accessKeyId: "test", secretAccessKey: "test" };
  const s3 = new S3Client({ region: "us-east-1", endpoint: url, forcePathStyle: true, credentials });
  const sqs = new SQSClient({
    region: "us-east-1",
    endpoint: url,
    credentials,
    useQueueUrlAsEndpoint: false,
  });
  return {
    s3,
    sqs,
    close() {
      s3.destroy();
      sqs.destroy();
    },
  };
}

/** Every object of a bucket as key -> "size etag"; undefined when the bucket does not exist. */
export async function bucketSnapshot(s3: S3Client, bucket: string): Promise<Map<string, string> | undefined> {
  const out = new Map<string, string>();
  let token: string | undefined;
  try {
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      for (const o of page.Contents ?? []) out.set(o.Key!, `${o.Size} ${o.ETag}`);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } catch (error) {
    if (error instanceof S3ServiceException && error.name === "NoSuchBucket") return undefined;
    throw error;
  }
  return out;
}

export async function objectBytes(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

/** Messages (visible, in flight, delayed) per queue name. */
export async function queueCounts(sqs: SQSClient): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const { QueueUrls = [] } = await sqs.send(new ListQueuesCommand({}));
  for (const url of QueueUrls) {
    const d = await queueDepth(sqs, url);
    out[url.split("/").at(-1)!] = d.visible + d.inFlight + d.delayed;
  }
  return out;
}

/** Window objects of a stream from their keys (`.../<date>/<HHMMSS>Z-<n>s.<ext>`). */
export function windowsIn(
  keys: Iterable<string>,
  streamPrefix: string,
): { key: string; from: number; duration: number }[] {
  const out: { key: string; from: number; duration: number }[] = [];
  for (const key of keys) {
    if (!key.startsWith(streamPrefix)) continue;
    const m = /(\d{4}-\d{2}-\d{2})\/(\d{2})(\d{2})(\d{2})Z-(\d+)s\.(mp4|ts)$/.exec(key);
    if (!m) continue;
    out.push({ key, from: Date.parse(`${m[1]}T${m[2]}:${m[3]}:${m[4]}Z`) / 1000, duration: Number(m[5]) });
  }
  return out.sort((a, b) => a.from - b.from);
}

/**
 * Waits while the planner's horizon (now - settle) is within `marginSeconds` before a window
 * boundary, so that a run and the status right after it see the same due windows.
 */
export async function awayFromWindowEdge(
  windowSeconds = 600,
  settleSeconds = 120,
  marginSeconds = 40,
): Promise<void> {
  const horizon = Date.now() / 1000 - settleSeconds;
  const toEdge = windowSeconds - (horizon % windowSeconds);
  if (toEdge < marginSeconds) await new Promise((r) => setTimeout(r, (toEdge + 1) * 1000));
}

/** `npx flussonic-backup ...` command lines of the README (inline code and sh blocks), as written. */
export function readmeCommands(): string[] {
  const text = readFileSync(join(ROOT, "README.md"), "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(/`(npx flussonic-backup [^`]+)`/g)) out.push(m[1]!.trim());
  for (const block of text.matchAll(/```(?:sh|bash|shell)\n([\s\S]*?)```/g)) {
    const joined = block[1]!.replace(/\\\n\s*/g, "");
    for (const line of joined.split("\n")) {
      const t = line.replace(/\s+#.*$/, "").trim();
      if (t.startsWith("npx flussonic-backup ")) out.push(t);
    }
  }
  return [...new Set(out)];
}
