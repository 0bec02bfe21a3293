/** The client of a configured source: one Flussonic server, or the fleet behind a Flussonic Central. */
import type { SourceConfig, SourceCredentials } from "../config/config.ts";
import { CentralClient, type CentralClientOptions } from "./central.ts";
import { type ArchiveSource, FlussonicClient, type FlussonicClientOptions } from "./flussonic.ts";

export function openSource(
  source: SourceConfig,
  credentials: SourceCredentials,
  options: FlussonicClientOptions & CentralClientOptions = {},
): ArchiveSource {
  return source.kind === "central"
    ? new CentralClient(source, credentials, options)
    : new FlussonicClient(source, credentials, options);
}
