/**
 * The embedded S3 + SQS emulator (fauxqs) started in-process: no Docker, no account, no network.
 * With a directory, state (buckets, objects, queues, messages) is kept across runs.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Endpoints } from "./aws-clients.ts";
import { installEmulatorFixes } from "./emulator-fixes.ts";

export interface EmbeddedEmulator {
  endpoints: Endpoints;
  stop(): Promise<void>;
}

export async function startEmbedded(dir: string | undefined): Promise<EmbeddedEmulator> {
  if (dir) mkdirSync(join(dir, "s3"), { recursive: true });
  installEmulatorFixes();
  const { startFauxqs } = await import("fauxqs");
  const server = await startFauxqs({
    port: 0,
    host: "127.0.0.1",
    logger: false,
    defaultRegion: "us-east-1",
    ...(dir ? { dataDir: dir, s3StorageDir: join(dir, "s3") } : {}),
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
