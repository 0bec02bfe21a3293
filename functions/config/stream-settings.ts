/**
 * Per-stream effective settings: a stream's overrides over its source's.
 */
import type { ArchiveFormat } from "../domain/archive.ts";
import type { SourceConfig } from "./schema.ts";
/** Per-stream effective settings: the stream's overrides over the source's. */
export interface StreamSettings {
  name: string;
  retentionDays: number;
  format: ArchiveFormat;
}

/** The streams a source lists explicitly, with effective settings; undefined for "all". */
export function listedStreams(source: SourceConfig): StreamSettings[] | undefined {
  if (source.streams === "all") return undefined;
  return source.streams.map((entry) =>
    typeof entry === "string"
      ? { name: entry, retentionDays: source.retentionDays, format: source.format }
      : {
          name: entry.name,
          retentionDays: entry.retentionDays ?? source.retentionDays,
          format: entry.format ?? source.format,
        },
  );
}

/** Settings for a stream discovered with streams "all". */
export function defaultStreamSettings(source: SourceConfig, name: string): StreamSettings {
  return { name, retentionDays: source.retentionDays, format: source.format };
}
