/**
 * Builds the fragment index (functions/domain/fragment-index.ts) of windows stored before copiers
 * recorded it, from the stored objects in S3, never from the source. Each object is read with
 * ranged GETs through the same container check and indexer the copier uses; in fMP4 the bytes of
 * large `mdat` payloads are not downloaded at all (the next range starts after them), so the
 * bytes read are mostly `moov`/`moof` boxes. Memory stays bounded: nothing is held but one
 * `moof` and the window's index.
 *
 * Idempotent: a window whose index entry names the same key (and, when both are known, the same
 * ETag) is left alone; entries are merged into the per-day objects by window.
 */
import { GetObjectCommand } from "@aws-sdk/client-s3";
import type { BackupConfig } from "../functions/config/config.ts";
import type { ArchiveFormat } from "../functions/domain/archive.ts";
import { ContainerError } from "../functions/domain/container-check.ts";
import { encodeWindowIndex, type StoredWindowIndex } from "../functions/domain/fragment-index.ts";
import { indexingCheck } from "../functions/domain/fragment-indexer.ts";
import { utcDate } from "../functions/domain/keys.ts";
import { forEachLimited } from "../functions/shared/for-each-limited.ts";
import { type BackupStore, storeError } from "../functions/store/backup-store.ts";
import { FragmentIndexStore } from "../functions/store/fragment-index-store.ts";
import { catalogDaysByStream, overlaps } from "./verify.ts";

export interface ReindexOptions {
  config: BackupConfig;
  store: BackupStore;
  source?: string | undefined;
  stream?: string | undefined;
  /** Only windows overlapping `[from, to)` (unix seconds). */
  from?: number | undefined;
  to?: number | undefined;
  /** Objects read at once (default 4). */
  concurrency?: number;
  /** Largest ranged GET in bytes (default 1 MiB). */
  rangeBytes?: number;
  onProgress?: (p: { source: string; stream: string; day: string; indexed: number; total: number }) => void;
}

export interface ReindexProblem {
  /**
   * `missing`: listed in a catalog or record but not in the bucket (expired by the lifecycle rule
   * or deleted): nothing to index. `unreadable`: its bytes are not whole media, or it changed while
   * it was read (run reindex again).
   */
  kind: "missing" | "unreadable";
  source: string;
  stream: string;
  key: string;
  detail: string;
}

export interface ReindexReport {
  streams: number;
  /** Windows listed in catalogs or pending records within the span. */
  windows: number;
  /** Windows whose index was built now. */
  indexed: number;
  /** Windows that had an index already. */
  alreadyIndexed: number;
  /** Bytes read from S3 and ranged GETs made. */
  bytesRead: number;
  gets: number;
  /** Index objects written (one per stream and day with new entries). */
  daysWritten: number;
  problems: ReindexProblem[];
}

/** A window as catalogs and records list it. */
interface Listed {
  from: number;
  duration: number;
  format?: ArchiveFormat;
  key: string;
  etag?: string;
}

/**
 * The rest of an `mdat` this long or longer is not downloaded: the next range starts after it.
 * fMP4 ranges start at this size (a `moof` is a few kilobytes) and double while nothing is skipped
 * (small fragments are cheaper read through than asked for one by one).
 */
const SKIP_AT_LEAST = 16 * 1024;

export async function reindexBackup(o: ReindexOptions): Promise<ReindexReport> {
  const report: ReindexReport = {
    streams: 0,
    windows: 0,
    indexed: 0,
    alreadyIndexed: 0,
    bytesRead: 0,
    gets: 0,
    daysWritten: 0,
    problems: [],
  };
  const indexStore = new FragmentIndexStore(o.store);
  for (const source of o.config.sources) {
    if (o.source && source.name !== o.source) continue;
    const pending = await o.store.pendingRecords(source.name);
    const catalogs = await catalogDaysByStream(o, source.name);
    const streams = new Set([...catalogs.keys(), ...pending.byStream.keys()]);
    for (const stream of [...streams].sort()) {
      if (o.stream !== undefined && stream !== o.stream) continue;
      report.streams++;
      // Windows by day: the catalog's, then pending records (newer: they win).
      const byDay = new Map<string, Map<string, Listed>>();
      const add = (w: Listed) => {
        if (!overlaps(o, w.from, w.duration)) return;
        const day = utcDate(w.from);
        const m = byDay.get(day) ?? new Map<string, Listed>();
        m.set(`${w.from}-${w.duration}`, w);
        byDay.set(day, m);
      };
      for (const day of catalogs.get(stream) ?? []) {
        for (const w of (await o.store.readCatalog(source.name, stream, day)).windows) add(w);
      }
      const pendingIndexed = new Map<string, StoredWindowIndex>();
      for (const r of pending.byStream.get(stream) ?? []) {
        add(r);
        if (r.index) pendingIndexed.set(`${r.from}-${r.duration}`, r.index);
      }
      for (const [day, windows] of [...byDay].sort(([a], [b]) => a.localeCompare(b))) {
        const current = await indexStore.readDay(source.name, stream, day);
        const known = new Map((current?.windows ?? []).map((e) => [`${e.from}-${e.duration}`, e]));
        for (const [id, e] of pendingIndexed) known.set(id, e);
        const todo = [...windows.values()].filter((w) => {
          const e = known.get(`${w.from}-${w.duration}`);
          return !(
            e &&
            e.key === w.key &&
            (e.etag === undefined || w.etag === undefined || e.etag === w.etag)
          );
        });
        report.windows += windows.size;
        report.alreadyIndexed += windows.size - todo.length;
        const built: StoredWindowIndex[] = [];
        await forEachLimited(
          todo.sort((a, b) => a.from - b.from),
          o.concurrency ?? 4,
          async (w) => {
            try {
              built.push(await indexStoredWindow(o, report, w));
            } catch (error) {
              const status = (error as { status?: number }).status;
              const problem = (kind: ReindexProblem["kind"], detail: string) =>
                report.problems.push({ kind, source: source.name, stream, key: w.key, detail });
              if (error instanceof ContainerError) problem("unreadable", error.message);
              else if (status === 404) problem("missing", "not in the bucket (expired or deleted)");
              else if (status === 412) problem("unreadable", "the object changed while it was read");
              else throw error;
            }
            o.onProgress?.({ source: source.name, stream, day, indexed: built.length, total: todo.length });
          },
        );
        if (built.length > 0) {
          await indexStore.addWindows(source.name, stream, built);
          report.daysWritten++;
          report.indexed += built.length;
        }
      }
      // The summary playback reads instead of one object per day (days written before it existed).
      await indexStore.refreshSummary(source.name, stream);
    }
  }
  return report;
}

/**
 * The index of one stored window, read with ranged GETs: each range is fed to the indexing check
 * as it arrives; when the check is about to pass over a long `mdat` payload, the next range starts
 * after the payload.
 */
async function indexStoredWindow(
  o: ReindexOptions,
  report: ReindexReport,
  w: Listed,
): Promise<StoredWindowIndex> {
  const format = w.format ?? (w.key.endsWith(".ts") ? "ts" : "mp4");
  const { check, indexer } = indexingCheck(format, w);
  const maxRange = o.rangeBytes ?? 1024 * 1024;
  let range = format === "mp4" ? Math.min(SKIP_AT_LEAST, maxRange) : maxRange;
  let offset = 0;
  let size: number | undefined;
  let etag: string | undefined;
  while (size === undefined || offset < size) {
    if (size !== undefined && check.skippable >= SKIP_AT_LEAST) {
      const n = Math.min(check.skippable, size - offset);
      check.passOver(n);
      offset += n;
      range = Math.min(SKIP_AT_LEAST, maxRange);
      continue;
    }
    report.gets++;
    o.store.requests.set("GetObject", (o.store.requests.get("GetObject") ?? 0) + 1);
    const res = await o.store.s3
      .send(
        new GetObjectCommand({
          Bucket: o.store.bucket,
          Key: w.key,
          Range: `bytes=${offset}-${offset + range - 1}`,
          ...(etag ? { IfMatch: etag } : {}),
        }),
      )
      .catch((error: unknown) => {
        throw storeError(error, `read ${w.key} from byte ${offset}`);
      });
    const total = /\/(\d+)$/.exec(res.ContentRange ?? "")?.[1];
    size = total !== undefined ? Number(total) : (res.ContentLength ?? 0);
    etag ??= res.ETag;
    // Read to the end of the range (at most one range wasted on a payload): an abandoned response
    // would close the connection the next GET can reuse.
    for await (const chunk of res.Body as AsyncIterable<Uint8Array>) {
      check.feed(chunk);
      offset += chunk.length;
      report.bytesRead += chunk.length;
    }
    if (check.skippable < SKIP_AT_LEAST) range = Math.min(range * 2, maxRange);
    if (size === 0) break;
  }
  check.finish();
  return encodeWindowIndex(indexer.result(w.key, size ?? 0, etag));
}
