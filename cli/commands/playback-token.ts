/**
 * `flussonic-backup playback-token --config F --source S [--stream NAME] [--ttl SECONDS]`: prints a
 * playback token (functions/playback/token.ts) for `?token=` on the playback URLs, signed with the
 * first key of the environment variable the configuration's `playback.tokenKeysEnv` names
 * (FLUSSONIC_BACKUP_PLAYBACK_KEYS by default). When that variable is not set and the config deploys
 * playback (`deployment.playback`), the key is read from the stack's Secrets Manager secret
 * (functions/playback/deployed-secrets.ts) with the caller's AWS credentials and region. The token
 * alone is the last line of the output.
 */
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { listedStreams, loadConfigFile } from "../../functions/config/config.ts";
import { playbackTokenSecretName } from "../../functions/playback/deployed-secrets.ts";
import { createPlaybackToken, parseTokenKeys } from "../../functions/playback/token.ts";
import { sourceNamed } from "./backup-target.ts";
import { errorContext } from "./error-messages.ts";
import { UsageError } from "./usage-error.ts";

export interface PlaybackTokenOptions {
  config?: string | undefined;
  source: string;
  stream?: string | undefined;
  /** Seconds the token is valid. */
  ttlSeconds: number;
  env?: NodeJS.ProcessEnv;
  /** Unix seconds (tests). */
  now?: number;
  out?: { write(s: string): unknown };
  /** Reads a Secrets Manager secret string (default: the SDK with the caller's credentials). */
  readSecret?: (secretId: string) => Promise<string>;
}

export async function playbackTokenCommand(o: PlaybackTokenOptions): Promise<number> {
  const out = o.out ?? process.stdout;
  if (!o.config) throw new UsageError("-c/--config <file> is required");
  errorContext.configFile = o.config;
  const config = loadConfigFile(o.config);
  const source = sourceNamed(config, o.source);
  const listed = listedStreams(source);
  if (o.stream !== undefined && listed && !listed.some((s) => s.name === o.stream)) {
    throw new UsageError(
      `--stream: no stream "${o.stream}" in source "${source.name}" (streams: ${listed.map((s) => s.name).join(", ")})`,
    );
  }
  const variable = config.playback.tokenKeysEnv;
  const fromEnv = (o.env ?? process.env)[variable];
  let keys: string[];
  let signedWith: string;
  if (fromEnv === undefined && config.deployment.playback) {
    const secret = playbackTokenSecretName(config.bucket);
    let value: string;
    try {
      value = await (o.readSecret ?? readSecretString)(secret);
    } catch (error) {
      const e = error as { name?: string; message?: string };
      throw new Error(
        `playback-token: cannot read the playback keys from Secrets Manager secret ${secret} (the stack's deployment.playback): ${e.name ?? "Error"}: ${e.message ?? "unreadable"}; use AWS credentials allowed secretsmanager:GetSecretValue on it and the stack's region (AWS_REGION), or set ${variable} to sign with a local key`,
      );
    }
    try {
      keys = parseTokenKeys(`secret ${secret}`, value);
    } catch {
      throw new Error(
        `playback-token: Secrets Manager secret ${secret} holds no usable playback key (comma-separated keys of at least 32 characters, current first): put one there, e.g. aws secretsmanager put-secret-value --secret-id ${secret} --secret-string "$(openssl rand -hex 32)"`,
      );
    }
    signedWith = `the deployed stack's key (Secrets Manager secret ${secret})`;
  } else {
    try {
      keys = parseTokenKeys(variable, fromEnv);
    } catch (error) {
      throw new UsageError(`playback-token: ${(error as Error).message}`);
    }
    signedWith = `the first key in ${variable}`;
  }
  const now = o.now ?? Math.floor(Date.now() / 1000);
  const expires = now + o.ttlSeconds;
  const scope =
    o.stream !== undefined
      ? `stream "${o.stream}" of source "${source.name}"`
      : `every stream of source "${source.name}"`;
  out.write(
    `Playback token for ${scope}, valid until ${new Date(expires * 1000).toISOString()}, signed with ${signedWith}; add it to playback URLs as ?token=\n`,
  );
  out.write(`${createPlaybackToken(keys[0]!, { source: source.name, stream: o.stream }, expires)}\n`);
  return 0;
}

/** The secret string of `secretId`, with the SDK's default credentials and region. */
async function readSecretString(secretId: string): Promise<string> {
  const client = new SecretsManagerClient({});
  try {
    const got = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
    if (typeof got.SecretString !== "string") throw new Error("the secret holds no string");
    return got.SecretString;
  } finally {
    client.destroy();
  }
}
