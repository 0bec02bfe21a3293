/**
 * Compacting, the planner's last step: completion records folded into the per-day catalogs (and
 * fragment indexes) and into the manifest, written conditionally and merged again when another
 * planner wrote it meanwhile; records of streams not planned this run are folded in all the same.
 */
import { utcDate } from "../domain/keys.ts";
import {
  activeLeases,
  applyRecords,
  type CopyRecord,
  type Lease,
  type Manifest,
} from "../domain/manifest.ts";
import { forEachLimited } from "../shared/for-each-limited.ts";
import type { Log } from "../shared/log.ts";
import { type BackupStore, CONDITIONAL_ATTEMPTS, raceBackoff } from "../store/backup-store.ts";
import { FragmentIndexStore } from "../store/fragment-index-store.ts";
import { type StreamState, unpackRanges } from "./read-streams.ts";

/** Folds a stream's completion records into its manifest and catalogs; the record keys to delete. */
export async function compactRecords(
  store: BackupStore,
  source: string,
  stream: string,
  records: CopyRecord[],
  now: number,
): Promise<string[]> {
  const stored = await store.readManifest(source, stream);
  const manifest = applyRecords(stored.manifest, records, now);
  await writeCatalogs(store, source, stream, records);
  const m = { ...manifest, leases: activeLeases(manifest, now), updatedAt: now };
  if (!(await writeManifestMerging(store, m, stored.etag, records, [], now))) return [];
  return records.map((r) => store.recordKeyOf(r));
}

/**
 * Writes a stream's manifest, conditionally (If-Match the ETag it was read with). When another
 * planner wrote it meanwhile (a scheduled event delivered twice, `run --once` beside the service,
 * two services on one bucket), its manifest is read again, this run's completion records and new
 * leases are folded into it, and the write is tried again: neither planner's coverage nor leases
 * are lost. False after CONDITIONAL_ATTEMPTS lost races (the records stay pending for the next run).
 */
export async function writeManifestMerging(
  store: BackupStore,
  m: Manifest,
  etag: string | undefined,
  records: readonly CopyRecord[],
  leased: readonly Lease[],
  now: number,
): Promise<boolean> {
  let next = m;
  let tag = etag;
  for (let attempt = 1; ; attempt++) {
    if (await store.writeManifest(next, tag)) return true;
    if (attempt >= CONDITIONAL_ATTEMPTS) return false;
    await raceBackoff(attempt);
    const fresh = await store.readManifest(m.source, m.stream);
    const merged = applyRecords(fresh.manifest, records, now);
    const held = new Set(merged.leases.map((l) => `${l.from}-${l.duration}-${l.until}`));
    next = {
      ...merged,
      leases: [
        ...activeLeases(merged, now),
        ...leased.filter((l) => !held.has(`${l.from}-${l.duration}-${l.until}`)),
      ],
      updatedAt: now,
    };
    tag = fresh.etag;
  }
}

/**
 * Adds records to their per-day catalogs (idempotent: keyed by window start and duration, so that
 * windows of different lengths from the same start, e.g. {0,600} next to {0,300} and {300,300}
 * after a lost lease and a new window length, are all listed; restore picks a cover without overlap).
 */
export async function writeCatalogs(
  store: BackupStore,
  source: string,
  stream: string,
  records: CopyRecord[],
): Promise<void> {
  const byDay = new Map<string, CopyRecord[]>();
  for (const r of records) {
    const day = utcDate(r.from);
    byDay.set(day, [...(byDay.get(day) ?? []), r]);
  }
  for (const [day, list] of byDay) {
    // Conditional on the catalog read, and merged again into the current one when another planner
    // wrote it meanwhile: its entries are kept (backup-store.ts updateCatalog).
    await store.updateCatalog(source, stream, day, (catalog) => {
      const byWindow = new Map(catalog.windows.map((w) => [`${w.from}-${w.duration}`, w]));
      for (const r of list) {
        byWindow.set(`${r.from}-${r.duration}`, {
          from: r.from,
          duration: r.duration,
          format: r.format,
          key: r.key,
          size: r.size,
          sha256: r.sha256,
          copiedAt: r.copiedAt,
          ...(r.etag ? { etag: r.etag } : {}),
          ...(r.versionId ? { versionId: r.versionId } : {}),
        });
      }
      return {
        ...catalog,
        windows: [...byWindow.values()].sort((a, b) => a.from - b.from || a.duration - b.duration),
      };
    });
  }
  // The records' fragment indexes go to the per-day index objects beside the catalogs.
  await new FragmentIndexStore(store).compactRecords(source, stream, records);
}

/** What writing needs of the planner's dependencies. */
export interface WriteDeps {
  store: BackupStore;
  logger: Log;
  streamConcurrency?: number;
  dryRun?: boolean;
}

/**
 * Writes each read stream's catalogs and, when it changed, its manifest (leases `until ===
 * leaseUntil` are this run's); then folds in the records of streams not planned this run, and
 * deletes the records folded in. Returns how many were.
 */
export async function compactSource(
  deps: WriteDeps,
  source: string,
  states: readonly StreamState[],
  pending: ReadonlyMap<string, CopyRecord[]>,
  leaseUntil: number,
  now: number,
  fail: (stream: string | undefined, error: unknown) => void,
): Promise<number | undefined> {
  const log = deps.logger;
  const compacted: string[] = [];
  await forEachLimited(deps.dryRun ? [] : states, deps.streamConcurrency ?? 16, async (s) => {
    try {
      if (s.records.length > 0) await writeCatalogs(deps.store, source, s.settings.name, s.records);
      if (s.changed) {
        const m = {
          ...s.manifest,
          covered: unpackRanges(s.covered),
          leases: activeLeases(s.manifest, now),
          updatedAt: now,
        };
        const leased = m.leases.filter((l) => l.until === leaseUntil);
        if (!(await writeManifestMerging(deps.store, m, s.etag, s.records, leased, now))) {
          log.warn("manifest changed meanwhile; this stream is re-planned next run", {
            source,
            stream: s.settings.name,
          });
          return;
        }
      }
      for (const r of s.records) compacted.push(deps.store.recordKeyOf(r));
    } catch (error) {
      fail(s.settings.name, error);
    }
  });
  // Records of streams not planned this run (gone at the source, out of the config, or failed
  // before planning) are folded into their manifests and catalogs all the same: nothing copied
  // stays pending for good.
  const plannedNames = new Set(states.map((s) => s.settings.name));
  const unplanned = deps.dryRun ? [] : [...pending].filter(([name]) => !plannedNames.has(name));
  await forEachLimited(unplanned, deps.streamConcurrency ?? 16, async ([stream, records]) => {
    try {
      compacted.push(...(await compactRecords(deps.store, source, stream, records, now)));
    } catch (error) {
      fail(stream, error);
    }
  });
  try {
    await deps.store.deleteKeys(compacted);
    return compacted.length;
  } catch (error) {
    fail(undefined, error);
  }
  return undefined;
}
