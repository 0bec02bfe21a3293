/**
 * What a Lambda container reads once at cold start: the validated config and the queue URLs (both
 * put in its environment by the CDK stack) and the sources' credentials (from Secrets Manager,
 * named by the config). The only place in functions/ that reads process.env.
 */
import { SecretsProvider } from "@aws-lambda-powertools/parameters/secrets";
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { z } from "zod";
import {
  authSecretReference,
  type BackupConfig,
  ConfigError,
  credentialsFromSecret,
  parseConfig,
  type SourceCredentials,
} from "../config/config.ts";
import { FIFO_MESSAGE_GROUP_MIDDLEWARE, markFifoMessageGroup } from "../queue/lean-sqs.ts";
import type { ArchiveSource } from "../source/flussonic.ts";
import { openSource } from "../source/open-source.ts";
import { BackupStore } from "../store/backup-store.ts";

const queueUrlsShape = z.record(z.string(), z.object({ url: z.string(), deadLetterUrl: z.string() }));

export interface LambdaEnvironment {
  config: BackupConfig;
  queues: z.infer<typeof queueUrlsShape>;
  s3: S3Client;
  sqs: SQSClient;
  store: BackupStore;
  flussonic: (source: string) => ArchiveSource;
  queueUrl: (source: string) => string;
  deadLetterUrl: (source: string) => string;
}

/** Reads the secret string of a Secrets Manager secret (name or ARN). */
export type ReadSecret = (secret: string) => Promise<string>;

let cached: Promise<LambdaEnvironment> | undefined;

/**
 * Built once per container and reused by every invocation (connection pools stay warm, each secret
 * is read once). A failed build is not cached: the next invocation tries again.
 */
export function lambdaEnvironment(
  env: NodeJS.ProcessEnv = process.env,
  readSecret: ReadSecret = secretsManagerReader(),
): Promise<LambdaEnvironment> {
  cached ??= buildEnvironment(env, readSecret).catch((error: unknown) => {
    cached = undefined;
    throw error;
  });
  return cached;
}

async function buildEnvironment(env: NodeJS.ProcessEnv, readSecret: ReadSecret): Promise<LambdaEnvironment> {
  const config = parseConfig(env.BACKUP_CONFIG ?? "", "BACKUP_CONFIG");
  const queues = queueUrlsShape.parse(JSON.parse(env.QUEUE_URLS ?? "{}"));
  const credentials = await readAllCredentials(config, readSecret);
  // Checksums only when asked for: the copier asks for SHA-256 on every part; bookkeeping objects
  // (manifests, records, catalogs) skip the SDK's default CRC32 work.
  const s3 = new S3Client({
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  const sqs = new SQSClient({});
  addFifoMessageGroup(sqs);
  // A copier invocation holds one copy: a central source's server cap is taken as one copy's share.
  const clients = new Map(
    config.sources.map((s) => [s.name, openSource(s, credentials.get(s.name)!, { capPerCopy: true })]),
  );
  const queue = (source: string) => {
    // The copier falls back to the queue name for an unreadable body: `<source>.fifo` for FIFO queues.
    const q = queues[source] ?? queues[source.replace(/\.fifo$/, "")];
    if (!q) throw new Error(`no queue configured for source "${source}"`);
    return q;
  };
  return {
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
}

/**
 * Every source's credentials from the Secrets Manager secrets the config names (never from
 * environment variables in AWS). Problems of all sources are reported at once, without values.
 */
export async function readAllCredentials(
  config: BackupConfig,
  readSecret: ReadSecret,
): Promise<Map<string, SourceCredentials>> {
  const out = new Map<string, SourceCredentials>();
  const problems: { index: number; problem: string }[] = [];
  await Promise.all(
    config.sources.map(async (source, i) => {
      const ref = authSecretReference(source.auth);
      if (!ref) {
        out.set(source.name, { type: "none" });
        return;
      }
      const where = `BACKUP_CONFIG: sources[${i}].auth.${ref.field}`;
      if (!ref.secret) {
        problems.push({
          index: i,
          problem: `${where}: is required in AWS (the name or ARN of a Secrets Manager secret)`,
        });
        return;
      }
      try {
        out.set(source.name, credentialsFromSecret(source.auth, await readSecret(ref.secret)));
      } catch (error) {
        const reason = error instanceof Error ? `${error.name}: ${error.message}` : "unreadable";
        problems.push({ index: i, problem: `${where}: cannot read secret ${ref.secret}: ${reason}` });
      }
    }),
  );
  if (problems.length > 0) {
    throw new ConfigError(problems.sort((a, b) => a.index - b.index).map((p) => p.problem));
  }
  return out;
}

/** Powertools' Secrets Manager provider; the container-wide cache above means one read per secret. */
function secretsManagerReader(): ReadSecret {
  let provider: SecretsProvider | undefined;
  return async (secret) => {
    provider ??= new SecretsProvider();
    const value = await provider.get(secret, { maxAge: 900 });
    if (typeof value !== "string" || value === "") {
      throw new Error("expected a non-empty secret string (not binary)");
    }
    // A secret created from a file (`--secret-string file://password.txt`) ends with a newline.
    return value.replace(/\r?\n$/, "");
  };
}

/**
 * A source capped at one copy at a time has a FIFO queue with a single message group (the SQS
 * event source's maxConcurrency cannot go below 2). The planner's and the copier's sends do not know
 * about FIFO queues, so the group is added here, for queue URLs ending in `.fifo`; deduplication is
 * content-based on those queues.
 */
export function addFifoMessageGroup(sqs: SQSClient, group = "copies"): void {
  // The lean SendMessageBatch (functions/queue/lean-sqs.ts) adds the same group itself.
  markFifoMessageGroup(sqs, group);
  sqs.middlewareStack.add(
    (next) => async (args) => {
      const input = args.input as {
        QueueUrl?: string;
        MessageBody?: string;
        MessageGroupId?: string;
        Entries?: { MessageGroupId?: string }[];
      };
      if (input.QueueUrl?.endsWith(".fifo")) {
        if (Array.isArray(input.Entries)) {
          for (const entry of input.Entries) entry.MessageGroupId ??= group;
        } else if (input.MessageBody !== undefined) {
          input.MessageGroupId ??= group;
        }
      }
      return next(args);
    },
    { step: "initialize", name: FIFO_MESSAGE_GROUP_MIDDLEWARE },
  );
}
