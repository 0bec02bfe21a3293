/**
 * What a valid config does that the operator should hear about on every run.
 */
import type { BackupConfig } from "./schema.ts";
import { inClear } from "./url.ts";

/**
 * What a valid config does that the operator should hear about on every run and in `config check`:
 * credentials sent in clear because allowCredentialsOverHttp says so.
 */
export function configWarnings(config: BackupConfig): string[] {
  return config.sources.flatMap((s) =>
    s.auth.type !== "none" && s.allowCredentialsOverHttp
      ? [s.url, s.archiveUrl]
          .filter((u): u is string => u !== undefined && inClear(u))
          .map(
            (u) =>
              `source ${s.name}: its ${s.auth.type} credentials go in clear over ${u.replace(/\/$/, "")} (allowCredentialsOverHttp): anyone on the network path can read them`,
          )
      : [],
  );
}
