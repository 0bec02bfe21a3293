/**
 * The S3/SQS emulator (fauxqs, with the backup's load-time fixes) in a process of its own, for
 * tests that reach it only as a user with LocalStack or their own endpoints does: through
 * `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL_SQS` / `AWS_REGION` and dummy credentials (`env`).
 * The bench and the soak use it too, so the emulator's CPU work (hashing and storing every part)
 * neither slows the simulator's event loop nor counts as the copier's.
 * Run as a script it prints `{"url": ...}` as one line once it listens and stops on SIGTERM.
 *
 *   node dev/kit/emulator-process.ts [state directory] [port]
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { Endpoints } from "../../local/aws-clients.ts";

export interface EmulatorProcess {
  /** `http://127.0.0.1:<port>`: the S3 and the SQS endpoint. */
  url: string;
  port: number;
  pid: number;
  /** The same endpoints for the product's own clients (local/aws-clients.ts). */
  endpoints: Endpoints;
  /** The variables that point the AWS SDK (and so the CLI) at it, with dummy credentials. */
  env: Record<string, string>;
  /** SIGTERM, then waits for the process to exit (SIGKILL after 5 s). */
  stop(): Promise<void>;
}

export interface EmulatorProcessOptions {
  /** State directory (buckets, objects, queues, messages), kept across restarts; none: in memory. */
  dir?: string;
  /** Port to listen on (default: a free one). */
  port?: number;
}

/** Starts the emulator in a child `node` process and waits until it listens. */
export async function startEmulatorProcess(o: EmulatorProcessOptions = {}): Promise<EmulatorProcess> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), o.dir ?? "", String(o.port ?? 0)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise<string>((resolve, reject) => {
    lines.once("line", (line) => resolve((JSON.parse(line) as { url: string }).url));
    child.once("error", reject);
    child.once("close", (code) => reject(new Error(`emulator process exited with ${code} before listening`)));
  });
  const port = Number(new URL(url).port);
  return {
    url,
    port,
    endpoints: {
      region: "us-east-1",
      s3Endpoint: url,
      sqsEndpoint: url,
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
    },
    pid: child.pid ?? 0,
    env: {
      AWS_ENDPOINT_URL_S3: url,
      AWS_ENDPOINT_URL_SQS: url,
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "test",
      AWS_SECRET_ACCESS_KEY: "test",
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(killer);
    },
  };
}

if (import.meta.main) {
  const dir = process.argv[2] || undefined;
  const port = Number(process.argv[3] ?? 0);
  const { mkdirSync } = await import("node:fs");
  const { join } = await import("node:path");
  const { installEmulatorFixes } = await import("../../local/emulator-fixes.ts");
  if (dir) mkdirSync(join(dir, "s3"), { recursive: true });
  installEmulatorFixes();
  const { startFauxqs } = await import("fauxqs");
  const server = await startFauxqs({
    port,
    host: "127.0.0.1",
    logger: false,
    defaultRegion: "us-east-1",
    ...(dir ? { dataDir: dir, s3StorageDir: join(dir, "s3") } : {}),
  });
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${server.port}` })}\n`);
  process.once("SIGTERM", () => {
    void server.stop().finally(() => process.exit(0));
  });
}
