/**
 * What a Lambda container reads once at cold start: the validated config and the queue URLs,
 * both put there by the CDK stack. The only place in functions/ that reads process.env.
 */
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { z } from "zod";
import { BackupStore } from "../adapters/backup-store.ts";
import { FlussonicClient } from "../adapters/flussonic.ts";
import { type BackupConfig, parseConfig, resolveAllCredentials } from "../config.ts";

const queueUrlsShape = z.record(z.string(), z.object({ url: z.string(), deadLetterUrl: z.string() }));

export interface LambdaEnvironment {
  config: BackupConfig;
  queues: z.infer<typeof queueUrlsShape>;
  s3: S3Client;
  sqs: SQSClient;
  store: BackupStore;
  flussonic: (source: string) => FlussonicClient;
  queueUrl: (source: string) => string;
  deadLetterUrl: (source: string) => string;
}

let cached: LambdaEnvironment | undefined;

/** Built once per container and reused by every invocation (connection pools stay warm). */
export function lambdaEnvironment(env: NodeJS.ProcessEnv = process.env): LambdaEnvironment {
  if (cached) return cached;
  const config = parseConfig(env.BACKUP_CONFIG ?? "", "BACKUP_CONFIG");
  const queues = queueUrlsShape.parse(JSON.parse(env.QUEUE_URLS ?? "{}"));
  // Secrets: environment variables named by the config for now; the deployment issue moves them to
  // Secrets Manager (cached per container).
  const credentials = resolveAllCredentials(config, "BACKUP_CONFIG", env);
  const s3 = new S3Client({});
  const sqs = new SQSClient({});
  const clients = new Map(
    config.sources.map((s) => [s.name, new FlussonicClient(s, credentials.get(s.name)!)]),
  );
  const queue = (source: string) => {
    const q = queues[source];
    if (!q) throw new Error(`no queue configured for source "${source}"`);
    return q;
  };
  cached = {
    config,
    queues,
    s3,
    sqs,
    store: new BackupStore(s3, config.bucket, config.prefix),
    flussonic: (source) => {
      const c = clients.get(source);
      if (!c) throw new Error(`unknown source "${source}"`);
      return c;
    },
    queueUrl: (source) => queue(source).url,
    deadLetterUrl: (source) => queue(source).deadLetterUrl,
  };
  return cached;
}
