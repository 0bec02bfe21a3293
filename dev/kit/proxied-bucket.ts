/**
 * For store tests: the embedded emulator with a bucket, behind the S3 fault proxy (so conditional
 * writes are enforced and faults can be injected). `endpoints` point S3 clients at the proxy.
 */
import { ensureBucket } from "../../functions/queue/source-queues.ts";
import { createS3Client, type Endpoints } from "../../local/aws-clients.ts";
import { type EmbeddedEmulator, startEmbedded } from "../../local/embedded.ts";
import { S3FaultProxy } from "./s3-fault-proxy.ts";

export interface ProxiedBucket {
  emulator: EmbeddedEmulator;
  proxy: S3FaultProxy;
  endpoints: Endpoints;
  close(): Promise<void>;
}

export async function startProxiedBucket(bucket: string): Promise<ProxiedBucket> {
  const emulator = await startEmbedded(undefined);
  const proxy = await S3FaultProxy.start(emulator.endpoints.s3Endpoint!);
  const endpoints = { ...emulator.endpoints, s3Endpoint: proxy.url };
  const s3 = createS3Client(endpoints);
  await ensureBucket(s3, bucket);
  s3.destroy();
  return {
    emulator,
    proxy,
    endpoints,
    close: async () => {
      await proxy.close();
      await emulator.stop();
    },
  };
}
