/**
 * The embedded S3/SQS emulator (local/embedded.ts) in a process of its own, so that its CPU work
 * (hashing and storing every part) neither slows the simulator's event loop nor counts as the
 * copier's. Run as a script it prints its endpoints as one JSON line and stops on SIGTERM.
 *
 *   node dev/kit/bench-emulator-process.ts <state directory>
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { Endpoints } from "../../local/aws-clients.ts";

export interface EmulatorProcess {
  endpoints: Endpoints;
  pid: number;
  stop(): Promise<void>;
}

/** Starts the emulator process on a state directory and waits until it listens. */
export async function startEmulatorProcess(dir: string): Promise<EmulatorProcess> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), dir], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
  const lines = createInterface({ input: child.stdout });
  const endpoints = await new Promise<Endpoints>((resolve, reject) => {
    lines.once("line", (line) => resolve((JSON.parse(line) as { endpoints: Endpoints }).endpoints));
    child.once("error", reject);
    child.once("close", (code) => reject(new Error(`emulator process exited with ${code}`)));
  });
  return {
    endpoints,
    pid: child.pid ?? 0,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

if (import.meta.main) {
  const { startEmbedded } = await import("../../local/embedded.ts");
  const emulator = await startEmbedded(process.argv[2]);
  process.stdout.write(`${JSON.stringify({ endpoints: emulator.endpoints })}\n`);
  process.once("SIGTERM", () => {
    void emulator.stop().finally(() => process.exit(0));
  });
}
