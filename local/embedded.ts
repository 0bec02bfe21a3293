/**
 * The embedded S3 + SQS emulator (fauxqs) started in-process: no Docker, no account, no network.
 * With a directory, state (buckets, objects, queues, messages) is kept across runs.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Endpoints } from "./aws-clients.ts";
import { installEmulatorFixes } from "./emulator-fixes.ts";

export interface EmbeddedEmulator {
  endpoints: Endpoints;
  stop(): Promise<void>;
}

/**
 * Starts the emulator. With `dir`, its state is kept there (created when missing). With
 * `readOnly`, nothing is written to `dir`: its stored objects are read when it exists (the queues,
 * kept in its database, start empty in memory), and a missing `dir` is an empty backup in memory.
 */
export async function startEmbedded(
  dir: string | undefined,
  o: { readOnly?: boolean } = {},
): Promise<EmbeddedEmulator> {
  let persistence: { dataDir?: string; s3StorageDir?: string } = {};
  if (dir && o.readOnly) {
    if (existsSync(join(dir, "s3", "buckets"))) persistence = { s3StorageDir: join(dir, "s3") };
  } else if (dir) {
    mkdirSync(join(dir, "s3"), { recursive: true });
    persistence = { dataDir: dir, s3StorageDir: join(dir, "s3") };
  }
  installEmulatorFixes();
  const { startFauxqs } = await import("fauxqs");
  const server = await startFauxqs({
    port: 0,
    host: "127.0.0.1",
    logger: false,
    defaultRegion: "us-east-1",
    ...persistence,
  });
  const url = `http://127.0.0.1:${server.port}`;
  return {
    endpoints: {
      region: "us-east-1",
      s3Endpoint: url,
      sqsEndpoint: url,
      credentials: { accessKeyId: "embedded", secretAccessKey: "embedded" },
    },
    stop: () => server.stop(),
  };
}
