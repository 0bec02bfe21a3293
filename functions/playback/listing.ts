/**
 * What the player page lists: per source and stream, the backup's stored ranges, read from the
 * manifests and pending completion records only (never from the source). Served by the local
 * playback server and by the playback Lambda as `/_api/streams.json`.
 */
import { type BackupConfig, listedStreams } from "../config/config.ts";
import { manifestKey } from "../domain/keys.ts";
import { applyRecords } from "../domain/manifest.ts";
import { decodeKeySegment } from "../domain/names.ts";
import { normalizeRanges, type TimeRange } from "../domain/ranges.ts";
import type { BackupStore } from "../store/backup-store.ts";

/** One stream's backup as the page draws it (unix seconds). */
export interface PageStream {
  stream: string;
  format: string;
  retentionStart: number;
  /** Stored ranges (whole windows) in the retention window. */
  backedUp: TimeRange[];
  /** Gaps between stored ranges: recorded seconds the backup does not hold, or source gaps. */
  holes: TimeRange[];
  windows: number;
  bytes: number;
}

export interface PageListing {
  bucket: string;
  now: number;
  sources: { source: string; streams: PageStream[] }[];
}

/**
 * Per source and stream `allowed` grants (all with auth off): the stored ranges from the
 * manifest and the completion records not compacted yet (what `status` shows as "backup"),
 * without asking the source: a playback server may not reach it. Streams are filtered by
 * `allowed` before anything of theirs is read (one listing of a source's manifests, then the
 * manifest and the pending records of each granted stream only).
 */
export async function listCoverage(
  config: BackupConfig,
  store: BackupStore,
  now: number,
  allowed: ((source: string, stream: string) => boolean) | undefined,
): Promise<PageListing> {
  const sources: PageListing["sources"] = [];
  for (const source of config.sources) {
    const settings = new Map<string, { retentionDays: number; format: string }>();
    for (const s of listedStreams(source) ?? []) settings.set(s.name, s);
    const folder = manifestKey(store.prefix, source.name, "x").slice(0, -"x.json".length);
    for await (const obj of store.listObjects(folder)) {
      const name = decodeKeySegment(obj.key.slice(folder.length).replace(/\.json$/, ""));
      if (!settings.has(name))
        settings.set(name, { retentionDays: source.retentionDays, format: source.format });
    }
    const granted = [...settings.keys()].sort().filter((name) => !allowed || allowed(source.name, name));
    // Auth off: one listing of the source's records; with a token, one per granted stream only.
    const all = allowed ? undefined : await store.pendingRecords(source.name);
    const streams: PageStream[] = [];
    for (const name of granted) {
      const st = settings.get(name)!;
      const stored = await store.readManifest(source.name, name);
      const pending = all ?? (await store.pendingRecords(source.name, name));
      const manifest = applyRecords(stored.manifest, pending.byStream.get(name) ?? [], now);
      const retentionStart = Math.floor(now - st.retentionDays * 86400);
      const backedUp = normalizeRanges(manifest.covered)
        .filter((r) => r.to > retentionStart)
        .map((r) => ({ from: Math.max(r.from, retentionStart), to: r.to }));
      const holes: TimeRange[] = [];
      for (let i = 1; i < backedUp.length; i++)
        holes.push({ from: backedUp[i - 1]!.to, to: backedUp[i]!.from });
      streams.push({
        stream: name,
        format: st.format,
        retentionStart,
        backedUp,
        holes,
        windows: manifest.windows,
        bytes: manifest.bytes,
      });
    }
    if (streams.length > 0 || !allowed) sources.push({ source: source.name, streams });
  }
  return { bucket: config.bucket, now, sources };
}
