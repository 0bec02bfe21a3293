/**
 * `flussonic-backup rebuild`: the backup's bookkeeping (manifests, per-day catalogs, the fragment
 * index) rebuilt from what is its truth, the stored window objects: their keys (window start,
 * duration, format), sizes, ETags, and their bytes, read back from S3 (never from the source) and
 * hashed as a stream (nothing held but the hash state and the container check), like the copier's
 * already-stored path (copy-window.ts recordFromStoredObject).
 *
 * Resumable: a catalog entry that names the listed object's key, size and ETag is kept without a
 * read, and each day's catalog is written as soon as it is done, so a rerun after an interruption
 * only hashes what is still missing. A damaged (not JSON) manifest, catalog, completion record or
 * fragment index day is reported with its key and rebuilt, never read as empty.
 *
 * Coverage comes from the stored windows alone: what a manifest covered and no stored window holds
 * now is un-covered and counted (`noLongerStoredSeconds`), so the next run copies it again if the
 * source still has it. Days and streams are visited from their objects and from their catalogs and
 * manifests, so a day (or a stream) whose objects are all gone is un-covered too.
 */

import type { BackupConfig } from "../functions/config/config.ts";
import { recordFromStoredObject } from "../functions/copier/copy-window.ts";
import type { ArchiveFormat } from "../functions/domain/archive.ts";
import type { StoredWindowIndex } from "../functions/domain/fragment-index.ts";
import {
  catalogKey,
  fragmentIndexKey,
  manifestKey,
  parseWindowKeyTail,
  streamPrefix,
  utcDate,
} from "../functions/domain/keys.ts";
import {
  type CopyRecord,
  emptyManifest,
  type Manifest,
  SAMPLE_SECONDS,
} from "../functions/domain/manifest.ts";
import { decodeKeySegment } from "../functions/domain/names.ts";
import { normalizeRanges, subtractRanges, type TimeRange } from "../functions/domain/ranges.ts";
import { forEachLimited } from "../functions/shared/for-each-limited.ts";
import type { BackupStore, Catalog, CatalogEntry } from "../functions/store/backup-store.ts";
import { DamagedObjectError } from "../functions/store/backup-store.ts";
import { FragmentIndexStore } from "../functions/store/fragment-index-store.ts";
import { reindexBackup } from "./reindex.ts";

export interface RebuildOptions {
  config: BackupConfig;
  store: BackupStore;
  source: string;
  stream?: string | undefined;
  /** Objects hashed at once (default 2). */
  concurrency?: number;
  /** Unix seconds (the manifest's updatedAt). */
  now?: () => number;
  onProgress?: (p: { stream: string; day: string; hashed: number; total: number }) => void;
}

export interface RebuildProblem {
  /**
   * `damaged`: a bookkeeping object that was not JSON (rebuilt). `incomplete`: a stored window
   * whose bytes are not the whole window (left out of the bookkeeping: `verify --repair` or the
   * next copy replaces it).
   */
  kind: "damaged" | "incomplete";
  stream: string;
  key: string;
  detail: string;
}

export interface StreamRebuild {
  stream: string;
  /** Window objects in the stream's folder. */
  stored: number;
  /** Catalog entries that already described their object (no read). */
  kept: number;
  /** Entries taken from pending completion records that describe their object (no read). */
  fromRecords: number;
  /** Objects read back and hashed. */
  hashed: number;
  bytesHashed: number;
  /** Catalog entries whose object is no longer in the bucket (dropped). */
  dropped: number;
  /** Seconds the manifest covered that no stored window holds (un-covered). */
  noLongerStoredSeconds: number;
  catalogsWritten: number;
  manifestWritten: boolean;
  indexed: number;
}

export interface RebuildReport {
  source: string;
  streams: StreamRebuild[];
  problems: RebuildProblem[];
}

interface StoredWindow {
  key: string;
  from: number;
  duration: number;
  format: ArchiveFormat;
  size: number;
  etag: string | undefined;
  modified: number | undefined;
}

export async function rebuildBackup(o: RebuildOptions): Promise<RebuildReport> {
  const now = o.now ?? (() => Math.floor(Date.now() / 1000));
  const report: RebuildReport = { source: o.source, streams: [], problems: [] };
  const byStream = await storedWindows(o);
  const pending = await o.store.pendingRecords(o.source);
  const damagedRecords = new Map<string, DamagedObjectError[]>();
  for (const d of pending.damaged ?? []) {
    const stream = decodeKeySegment(d.key.split("/").at(-2) ?? "");
    damagedRecords.set(stream, [...(damagedRecords.get(stream) ?? []), d]);
  }
  const bookkept = await bookkeptDays(o);
  const streams =
    o.stream !== undefined ? [o.stream] : [...new Set([...byStream.keys(), ...bookkept.keys()])].sort();
  for (const stream of streams) {
    const windows = byStream.get(stream) ?? [];
    if (windows.length === 0 && !bookkept.has(stream)) {
      // Nothing stored and nothing claimed (a stream name mistyped): nothing to rebuild from, and
      // no manifest is written for it.
      report.streams.push({ ...emptyRebuild(stream), manifestWritten: false });
      continue;
    }
    report.streams.push(
      await rebuildStream(
        o,
        report,
        stream,
        windows,
        pending.byStream.get(stream) ?? [],
        damagedRecords.get(stream) ?? [],
        bookkept.get(stream) ?? new Set(),
        now,
      ),
    );
  }
  return report;
}

/** The window objects of the source (or of one stream), grouped by stream. */
async function storedWindows(o: RebuildOptions): Promise<Map<string, StoredWindow[]>> {
  const sourceFolder = streamPrefix(o.store.prefix, o.source, "x").slice(0, -"x/".length);
  const folder = o.stream !== undefined ? streamPrefix(o.store.prefix, o.source, o.stream) : sourceFolder;
  const out = new Map<string, StoredWindow[]>();
  for await (const obj of o.store.listObjects(folder)) {
    const rest = obj.key.slice(sourceFolder.length);
    const slash = rest.indexOf("/");
    if (slash < 0) continue;
    const w = parseWindowKeyTail(rest.slice(slash + 1));
    if (!w) continue;
    const stream = decodeKeySegment(rest.slice(0, slash));
    const list = out.get(stream) ?? [];
    list.push({
      key: obj.key,
      ...w,
      format: obj.key.endsWith(".ts") ? "ts" : "mp4",
      size: obj.size,
      etag: obj.etag,
      modified: obj.modified,
    });
    out.set(stream, list);
  }
  return out;
}

/**
 * The streams that have a manifest or catalogs, with the days of their catalogs: visited even when
 * no window object is left (their claims are dropped then).
 */
async function bookkeptDays(o: RebuildOptions): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  const at = (stream: string) => out.get(stream) ?? out.set(stream, new Set()).get(stream)!;
  const catalogs = catalogKey(o.store.prefix, o.source, "x", "d").slice(0, -"x/d.json".length);
  const manifests = manifestKey(o.store.prefix, o.source, "x").slice(0, -"x.json".length);
  const wanted = (stream: string) => o.stream === undefined || stream === o.stream;
  for await (const obj of o.store.listObjects(catalogs)) {
    const m = /^([^/]+)\/(\d{4}-\d{2}-\d{2})\.json$/.exec(obj.key.slice(catalogs.length));
    if (!m) continue;
    const stream = decodeKeySegment(m[1]!);
    if (wanted(stream)) at(stream).add(m[2]!);
  }
  for await (const obj of o.store.listObjects(manifests)) {
    const m = /^([^/]+)\.json$/.exec(obj.key.slice(manifests.length));
    if (!m) continue;
    const stream = decodeKeySegment(m[1]!);
    if (wanted(stream)) at(stream);
  }
  return out;
}

function emptyRebuild(stream: string): StreamRebuild {
  return {
    stream,
    stored: 0,
    kept: 0,
    fromRecords: 0,
    hashed: 0,
    bytesHashed: 0,
    dropped: 0,
    noLongerStoredSeconds: 0,
    catalogsWritten: 0,
    manifestWritten: false,
    indexed: 0,
  };
}

function describes(e: { key: string; size: number; etag?: string | undefined }, w: StoredWindow): boolean {
  return e.key === w.key && e.size === w.size && (e.etag === undefined || e.etag === w.etag);
}

function entryOf(r: CopyRecord): CatalogEntry {
  const { source: _s, stream: _t, index: _i, ...entry } = r;
  return entry;
}

async function rebuildStream(
  o: RebuildOptions,
  report: RebuildReport,
  stream: string,
  windows: StoredWindow[],
  records: CopyRecord[],
  damagedRecords: DamagedObjectError[],
  catalogDays: ReadonlySet<string>,
  now: () => number,
): Promise<StreamRebuild> {
  const r: StreamRebuild = { ...emptyRebuild(stream), stored: windows.length };
  const damaged = (key: string, detail: string) =>
    report.problems.push({ kind: "damaged", stream, key, detail });
  const indexStore = new FragmentIndexStore(o.store);
  const recordOf = new Map(records.map((x) => [`${x.from}-${x.duration}`, x]));
  // Days with a catalog and no object left are visited too: their entries are dropped.
  const byDay = new Map<string, StoredWindow[]>([...catalogDays].map((day) => [day, []]));
  for (const w of windows) {
    const day = utcDate(w.from);
    byDay.set(day, [...(byDay.get(day) ?? []), w]);
  }
  const catalogued: CatalogEntry[] = [];
  for (const [day, list] of [...byDay].sort(([a], [b]) => a.localeCompare(b))) {
    let catalog: Catalog;
    try {
      catalog = await o.store.readCatalog(o.source, stream, day);
    } catch (error) {
      if (!(error instanceof DamagedObjectError)) throw error;
      damaged(error.key, "catalog rebuilt from the stored windows");
      catalog = { version: 1, source: o.source, stream, day, windows: [] };
    }
    const listed = new Map(catalog.windows.map((e) => [`${e.from}-${e.duration}`, e]));
    const entries = new Map<string, CatalogEntry>();
    const todo: StoredWindow[] = [];
    for (const w of list) {
      const id = `${w.from}-${w.duration}`;
      const e = listed.get(id);
      const rec = recordOf.get(id);
      if (e && describes(e, w)) {
        entries.set(id, e);
        r.kept++;
      } else if (rec && describes(rec, w)) {
        entries.set(id, entryOf(rec));
        r.fromRecords++;
      } else {
        todo.push(w);
      }
    }
    const built: StoredWindowIndex[] = [];
    let hashed = 0;
    await forEachLimited(
      todo.sort((a, b) => a.from - b.from),
      o.concurrency ?? 2,
      async (w) => {
        const rec = await recordFromStoredObject(
          { store: o.store, now: () => w.modified ?? now() },
          {
            v: 1,
            source: o.source,
            stream,
            from: w.from,
            duration: w.duration,
            format: w.format,
            leaseUntil: 0,
          },
          w.key,
        );
        r.bytesHashed += w.size;
        o.onProgress?.({ stream, day, hashed: ++hashed, total: todo.length });
        if (!rec) {
          report.problems.push({
            kind: "incomplete",
            stream,
            key: w.key,
            detail: "not the whole window (left out; `verify --repair` or the next copy replaces it)",
          });
          return;
        }
        r.hashed++;
        entries.set(`${w.from}-${w.duration}`, entryOf(rec));
        if (rec.index) built.push(rec.index);
      },
    );
    // An entry of a window not in the listing is dropped only when its object is gone; entries the
    // planner added since the listing (re-read just before the write) are kept.
    const fresh = await o.store.readCatalog(o.source, stream, day).catch(() => catalog);
    const listedIds = new Set(list.map((w) => `${w.from}-${w.duration}`));
    const checked = new Set<string>();
    for (const e of [...catalog.windows, ...fresh.windows]) {
      const id = `${e.from}-${e.duration}`;
      if (listedIds.has(id) || entries.has(id) || checked.has(id)) continue;
      checked.add(id);
      if (await o.store.windowExists(e.key)) entries.set(id, e);
      else r.dropped++;
    }
    // Written conditionally (updateCatalog): an entry a planner adds between that re-read and the
    // write is kept too, the write done again on the catalog it wrote.
    const byTime = (list: CatalogEntry[]) => list.sort((a, b) => a.from - b.from || a.duration - b.duration);
    let sorted: CatalogEntry[] = [];
    try {
      await o.store.updateCatalog(o.source, stream, day, (current) => {
        const merged = new Map(entries);
        for (const e of current.windows) {
          const id = `${e.from}-${e.duration}`;
          if (!merged.has(id) && !listedIds.has(id) && !checked.has(id)) merged.set(id, e);
        }
        sorted = byTime([...merged.values()]);
        if (JSON.stringify(sorted) === JSON.stringify(current.windows)) return undefined;
        // The planner's request counts the catalog carries (`cost`) are kept.
        const planner = current.planner ? { planner: current.planner } : {};
        return { version: 1, source: o.source, stream, day, windows: sorted, ...planner };
      });
    } catch (error) {
      // A damaged catalog (the reason to rebuild) has nothing to merge: it is replaced, only if it
      // is still the damaged object read (If-Match its ETag).
      if (!(error instanceof DamagedObjectError)) throw error;
      sorted = byTime([...entries.values()]);
      const replaced = await o.store.writeCatalog(
        { version: 1, source: o.source, stream, day, windows: sorted },
        error.etag ?? null,
      );
      if (!replaced) {
        throw new Error(
          `the damaged catalog of ${o.source}/${stream} on ${day} changed while it was rebuilt; run rebuild again`,
        );
      }
    }
    if (JSON.stringify(sorted) !== JSON.stringify(fresh.windows)) r.catalogsWritten++;
    catalogued.push(...sorted);
    // The fragment index: a damaged day object is a cache of the windows, rebuilt below.
    let indexed: StoredWindowIndex[] = [];
    try {
      indexed = (await indexStore.readDay(o.source, stream, day))?.windows ?? [];
    } catch {
      const key = fragmentIndexKey(o.store.prefix, o.source, stream, day);
      damaged(key, "fragment index rebuilt from the stored windows");
      await o.store.deleteKeys([key]);
    }
    // Index entries of windows whose object is gone (playback would list them): removed, by a
    // conditional write, only after their object was looked for.
    const catalogIds = new Set(sorted.map((e) => `${e.from}-${e.duration}`));
    const missing = new Set<string>();
    for (const w of indexed) {
      const id = `${w.from}-${w.duration}`;
      if (listedIds.has(id) || catalogIds.has(id) || missing.has(id)) continue;
      if (!(await o.store.windowExists(w.key))) missing.add(id);
    }
    if (missing.size > 0) {
      await indexStore.updateDay(o.source, stream, day, (windows) => {
        const kept = windows.filter((w) => !missing.has(`${w.from}-${w.duration}`));
        return kept.length === windows.length ? undefined : kept;
      });
    }
    if (built.length > 0) r.indexed += await indexStore.addWindows(o.source, stream, built);
  }

  const manifest = await rebuildManifest(o, stream, catalogued, damaged, now);
  r.manifestWritten = manifest.written;
  r.noLongerStoredSeconds = manifest.noLongerStoredSeconds;
  // A damaged record of a window catalogued now describes nothing the catalog lacks: delete it.
  const done = new Set(catalogued.map((e) => e.key));
  const stale = damagedRecords.filter((d) => {
    const m = /\/(\d+)-(\d+)\.json$/.exec(d.key);
    return (
      m && catalogued.some((e) => e.from === Number(m[1]) && e.duration === Number(m[2]) && done.has(e.key))
    );
  });
  for (const d of stale) damaged(d.key, "completion record deleted (its window is catalogued)");
  await o.store.deleteKeys(stale.map((d) => d.key));

  // Windows kept from catalogs whose index is lost: reindex reads them by ranged GETs.
  const reindexed = await reindexBackup({ config: o.config, store: o.store, source: o.source, stream });
  r.indexed += reindexed.indexed;
  return r;
}

/**
 * The manifest of the catalogued windows: covered seconds and head from them alone (what the old
 * manifest covered beyond them is counted as no longer stored); leases, totals (when larger: they
 * are history) and the bitrate sample kept from a readable manifest. Conditional write, re-read and
 * retried when the planner changed it meanwhile.
 */
async function rebuildManifest(
  o: RebuildOptions,
  stream: string,
  entries: CatalogEntry[],
  damaged: (key: string, detail: string) => void,
  now: () => number,
): Promise<{ written: boolean; noLongerStoredSeconds: number }> {
  for (let attempt = 0; attempt < 5; attempt++) {
    let current: Manifest | undefined;
    let etag: string | undefined;
    try {
      const read = await o.store.readManifest(o.source, stream);
      current = read.etag === undefined ? undefined : read.manifest;
      etag = read.etag;
    } catch (error) {
      if (!(error instanceof DamagedObjectError)) throw error;
      if (attempt === 0) damaged(error.key, "manifest rebuilt from the stored windows");
      etag = error.etag;
    }
    const base = current ?? emptyManifest(o.source, stream);
    // Only stored windows are covered (the catalogs were re-read just before their conditional
    // writes, so windows the planner added meanwhile are among them). A window the planner adds
    // after that is under-claimed until the next planner run records it again: never over-claimed.
    const covered = normalizeRanges(entries.map((e) => ({ from: e.from, to: e.from + e.duration })));
    const noLongerStoredSeconds = seconds(subtractRanges(normalizeRanges(base.covered), covered));
    const bytes = entries.reduce((n, e) => n + e.size, 0);
    const head = covered.at(-1)?.to ?? 0;
    const next: Manifest = {
      ...base,
      covered,
      windows: Math.max(base.windows, entries.length),
      bytes: Math.max(base.bytes, bytes),
      sample: base.sample ?? recentSample(entries),
      coverageClipped: true,
      head,
      updatedAt: now(),
    };
    if (
      current &&
      JSON.stringify(current.covered) === JSON.stringify(next.covered) &&
      current.head === next.head &&
      current.windows === next.windows &&
      current.bytes === next.bytes
    ) {
      return { written: false, noLongerStoredSeconds };
    }
    if (!next.sample) delete next.sample;
    if (await o.store.writeManifest(next, etag)) return { written: true, noLongerStoredSeconds };
  }
  throw new Error(
    `the manifest of ${o.source}/${stream} kept changing while it was rebuilt; run rebuild again`,
  );
}

function seconds(ranges: readonly TimeRange[]): number {
  return ranges.reduce((n, r) => n + (r.to - r.from), 0);
}

/** Bytes and seconds of the newest hour of windows (the planner's bitrate estimate). */
function recentSample(entries: CatalogEntry[]): Manifest["sample"] {
  let bytes = 0;
  let seconds = 0;
  for (const e of [...entries].sort((a, b) => b.from - a.from)) {
    if (seconds >= SAMPLE_SECONDS) break;
    bytes += e.size;
    seconds += e.duration;
  }
  return seconds > 0 ? { bytes, seconds } : undefined;
}
