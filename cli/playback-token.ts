/**
 * `flussonic-backup playback-token --config F --source S [--stream NAME] [--ttl SECONDS]`: prints a
 * playback token (functions/playback/token.ts) for `?token=` on the playback URLs, signed with the
 * first key of the environment variable the configuration's `playback.tokenKeysEnv` names
 * (FLUSSONIC_BACKUP_PLAYBACK_KEYS by default). The token alone is the last line of the output.
 */
import { listedStreams, loadConfigFile } from "../functions/config.ts";
import { createPlaybackToken, parseTokenKeys } from "../functions/playback/token.ts";
import { sourceNamed } from "./backup-target.ts";
import { errorContext } from "./error-messages.ts";
import { UsageError } from "./time-arg.ts";

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
  let keys: string[];
  try {
    keys = parseTokenKeys(variable, (o.env ?? process.env)[variable]);
  } catch (error) {
    throw new UsageError(`playback-token: ${(error as Error).message}`);
  }
  const now = o.now ?? Math.floor(Date.now() / 1000);
  const expires = now + o.ttlSeconds;
  const scope =
    o.stream !== undefined
      ? `stream "${o.stream}" of source "${source.name}"`
      : `every stream of source "${source.name}"`;
  out.write(
    `Playback token for ${scope}, valid until ${new Date(expires * 1000).toISOString()}; add it to playback URLs as ?token=\n`,
  );
  out.write(`${createPlaybackToken(keys[0]!, { source: source.name, stream: o.stream }, expires)}\n`);
  return 0;
}
