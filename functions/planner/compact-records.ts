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
import type { RequestTally } from "../shared/request-scope.ts";
import { type BackupStore, CONDITIONAL_ATTEMPTS, raceBackoff } from "../store/backup-store.ts";
import { FragmentIndexStore } from "../store/fragment-index-store.ts";

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
  if ((await writeManifestMerging(store, m, stored.etag, records, [], now)) === undefined) return [];
  return records.map((r) => store.recordKeyOf(r));
}

/**
 * Writes a stream's manifest, conditionally (If-Match the ETag it was read with; If-None-Match for a
 * stream without one): the write that leases `leased` (lease-windows.ts). When another planner wrote
 * it meanwhile (a scheduled event delivered twice, `run --once` beside the service, two services on
 * one bucket), its manifest is read again, this run's completion records are folded into it, the
 * leases of `leased` that the other planner's leases or coverage now overlap are given up (that
 * planner queues those windows), and the write is tried again with the rest: neither planner's
 * coverage nor leases are lost, and no window is leased twice. Returns the leases written, or
 * undefined after CONDITIONAL_ATTEMPTS lost races (the records stay pending for the next run, and
 * none of `leased` is held).
 */
export async function writeManifestMerging(
  store: BackupStore,
  m: Manifest,
  etag: string | undefined,
  records: readonly CopyRecord[],
  leased: readonly Lease[],
  now: number,
): Promise<Lease[] | undefined> {
  let next = m;
  let tag = etag;
  let mine = [...leased];
  for (let attempt = 1; ; attempt++) {
    if (await store.writeManifest(next, tag)) return mine;
    if (attempt >= CONDITIONAL_ATTEMPTS) return undefined;
    await raceBackoff(attempt);
    const fresh = await store.readManifest(m.source, m.stream);
    const merged = applyRecords(fresh.manifest, records, now);
    const theirs = activeLeases(merged, now);
    const taken = [...theirs, ...merged.covered.map((r) => ({ from: r.from, duration: r.to - r.from }))];
    mine = mine.filter(
      (l) => !taken.some((t) => t.from < l.from + l.duration && l.from < t.from + t.duration),
    );
    next = { ...merged, leases: [...theirs, ...mine], updatedAt: now };
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
  // The planner's requests counted so far for the source ride along in one of these writes (the
  // first one no other stream is making at the same time): kept in the bucket for `cost` at no
  // request of their own; what the write does not take stays for the next.
  const tally = store.plannerTallies.get(source);
  let carrier = tally !== undefined && tally.ops.size > 0 && !flushing.has(tally) ? tally : undefined;
  for (const [day, list] of byDay) {
    let taken: Record<string, number> | undefined;
    if (carrier) flushing.add(carrier);
    // Conditional on the catalog read, and merged again into the current one when another planner
    // wrote it meanwhile: its entries are kept (backup-store.ts updateCatalog).
    try {
      await store.updateCatalog(source, stream, day, (catalog) => {
        taken = carrier?.record();
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
            // What the copy cost (the `cost` report), kept with the window.
            ...(r.requests ? { requests: r.requests } : {}),
            ...(r.gbSeconds !== undefined ? { gbSeconds: r.gbSeconds } : {}),
          });
        }
        return {
          ...catalog,
          windows: [...byWindow.values()].sort((a, b) => a.from - b.from || a.duration - b.duration),
          ...(taken ? { planner: addPlannerCounts(catalog.planner, taken) } : {}),
        };
      });
      if (carrier && taken) carrier.subtract(taken);
    } finally {
      if (carrier) flushing.delete(carrier);
    }
    carrier = undefined;
  }
  // The records' fragment indexes go to the per-day index objects beside the catalogs.
  await new FragmentIndexStore(store).compactRecords(source, stream, records);
}

/** Tallies being written into a catalog now (by another stream's write): not taken twice. */
const flushing = new WeakSet<RequestTally>();

/** A catalog's planner counts plus `taken` (a tally's record: the `run` entry counts runs). */
function addPlannerCounts(
  kept: { runs: number; ops: Record<string, number> } | undefined,
  taken: Record<string, number>,
): { runs: number; ops: Record<string, number> } {
  const ops = { ...(kept?.ops ?? {}) };
  for (const [op, n] of Object.entries(taken)) if (op !== "run") ops[op] = (ops[op] ?? 0) + n;
  return { runs: (kept?.runs ?? 0) + (taken.run ?? 0), ops };
}

/**
 * Records of streams not planned this run (gone at the source, out of the config, or failed before
 * planning) are folded into their manifests and catalogs all the same, so that nothing copied stays
 * pending for good. Returns the keys of the records folded in.
 */
export async function compactUnplanned(
  store: BackupStore,
  source: string,
  planned: ReadonlySet<string>,
  pending: ReadonlyMap<string, readonly string[]>,
  now: number,
  concurrency: number,
  fail: (stream: string | undefined, error: unknown) => void,
): Promise<string[]> {
  const compacted: string[] = [];
  const unplanned = [...pending].filter(([name]) => !planned.has(name));
  await forEachLimited(unplanned, concurrency, async ([stream, keys]) => {
    try {
      const read = await store.readRecords(stream, keys);
      for (const damaged of read.damaged) fail(undefined, damaged);
      if (read.records.length === 0) return;
      compacted.push(...(await compactRecords(store, source, stream, read.records, now)));
    } catch (error) {
      fail(stream, error);
    }
  });
  return compacted;
}
