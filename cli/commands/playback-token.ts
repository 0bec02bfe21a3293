/**
 * `flussonic-backup playback-token --config F --source S [--stream NAME] [--ttl SECONDS]`: prints a
 * playback token (functions/playback/token.ts) for `?token=` on the playback URLs, signed with the
 * first key of the environment variable the configuration's `playback.tokenKeysEnv` names
 * (FLUSSONIC_BACKUP_PLAYBACK_KEYS by default). When that variable is not set and the config deploys
 * playback (`deployment.playback`), the key is read from the stack's Secrets Manager secret
 * (functions/playback/deployed-secrets.ts) with the caller's AWS credentials and region. The token
 * alone is the last line of the output.
 *
 * Each token issued is in the audit trail (docs/evidence.md): before the token is printed, a
 * `playback-token` record (who, source, stream, expiry, the token's id: the first 16 hex digits of
 * its SHA-256, never the token or a key) is appended to the bucket the configuration names, reached
 * as the operator commands reach it (the AWS variables, or `--embedded`). Without access to the
 * bucket the token is still printed and one line on stderr says that no record was written and
 * why; `--require-audit` refuses the token then (exit 1), `--no-audit` does not try.
 */
import { createHash } from "node:crypto";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { listedStreams, loadConfigFile } from "../../functions/config/config.ts";
import { playbackTokenSecretName } from "../../functions/playback/deployed-secrets.ts";
import { createPlaybackToken, parseTokenKeys } from "../../functions/playback/token.ts";
import { appendAudit, operatorName } from "../../ops/audit.ts";
import { type BackupTarget, openBackupTarget, sourceNamed } from "./backup-target.ts";
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
  /** `--embedded [dir]`: the backup of `run --embedded` (default: the AWS variables). */
  embedded?: string | boolean | undefined;
  /**
   * The audit record: "auto" (default) written when the bucket can be reached, a line on stderr
   * when not; "required": no token without it; "off" (`--no-audit`): not tried.
   */
  audit?: "auto" | "required" | "off";
  /** Who issues the token (default user@host). */
  by?: string | undefined;
  err?: { write(s: string): unknown };
  /** Opens the backup (tests); default: as the operator commands do. */
  openTarget?: () => Promise<Pick<BackupTarget, "store" | "close">>;
}

/** Longest wait for the audit record before the token is printed without it (auto) or refused. */
const AUDIT_TIMEOUT_MS = 20_000;

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
  const token = createPlaybackToken(keys[0]!, { source: source.name, stream: o.stream }, expires);
  const tokenId = createHash("sha256").update(token).digest("hex").slice(0, 16);
  const audit = o.audit ?? "auto";
  let audited = "";
  if (audit !== "off") {
    const failure = await auditToken(o, {
      action: "playback-token",
      at: now,
      by: o.by ?? operatorName(),
      source: source.name,
      ...(o.stream !== undefined ? { stream: o.stream } : {}),
      detail: { tokenId, expires, ttlSeconds: o.ttlSeconds, signedWith: signedWith.replace(/^the /, "") },
    });
    if (failure !== undefined) {
      const line = `playback-token: no audit record written (${failure})`;
      if (audit === "required") {
        (o.err ?? process.stderr).write(
          `${line}; no token issued (--require-audit): give access to bucket ${config.bucket} (the AWS variables, or --embedded <dir>) and try again\n`,
        );
        return 1;
      }
      (o.err ?? process.stderr).write(
        `${line}; the token is issued without one (--require-audit refuses it instead, --no-audit does not try)\n`,
      );
    } else audited = `, recorded in the audit trail as token ${tokenId}`;
  }
  out.write(
    `Playback token for ${scope}, valid until ${new Date(expires * 1000).toISOString()}, signed with ${signedWith}${audited}; add it to playback URLs as ?token=\n`,
  );
  out.write(`${token}\n`);
  return 0;
}

/** Appends the token's audit record; the reason it could not, or undefined when it did. */
async function auditToken(
  o: PlaybackTokenOptions,
  record: Parameters<typeof appendAudit>[1],
): Promise<string | undefined> {
  let target: Pick<BackupTarget, "store" | "close"> | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    const attempt = (async () => {
      target = await (
        o.openTarget ??
        (() => openBackupTarget({ config: o.config, embedded: o.embedded }, { flussonic: false }))
      )();
      await appendAudit(target.store, record);
    })();
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`bucket not reached within ${AUDIT_TIMEOUT_MS / 1000} s`)),
        AUDIT_TIMEOUT_MS,
      );
    });
    await Promise.race([attempt, timeout]);
    return undefined;
  } catch (error) {
    const e = error as { name?: string; message?: string };
    // StoreErrors say "S3: cannot ... <what AWS said>"; others their message.
    return (e.message || e.name || String(error)).split("\n")[0];
  } finally {
    clearTimeout(timer);
    await target?.close().catch(() => undefined);
  }
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
