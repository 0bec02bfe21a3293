import { CopyObjectCommand, DeleteObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import type { BackupConfig } from "../functions/config/config.ts";
import type { ArchiveFormat } from "../functions/domain/archive.ts";
import { ContainerError, containerCheck, MediaShortError } from "../functions/domain/container-check.ts";
import { catalogKey, parseWindowKeyTail, streamPrefix, utcDate } from "../functions/domain/keys.ts";
import { type Manifest, uncover } from "../functions/domain/manifest.ts";
import { decodeKeySegment, encodeKeySegment } from "../functions/domain/names.ts";
import { normalizeRanges, subtractRanges, type TimeRange } from "../functions/domain/ranges.ts";
import { forEachLimited } from "../functions/shared/for-each-limited.ts";
import { type BackupStore, type CatalogEntry, storeError } from "../functions/store/backup-store.ts";
import { FragmentIndexStore } from "../functions/store/fragment-index-store.ts";

export interface VerifyProblem {
  /**
   * `short`: the object's bytes are the recorded ones, but its media stops (or, with unix-time
   * timestamps, starts) more than 2 s inside its window: the copy holds less than the window (a
   * copy recorded before the copier checked media time). `replaced`: the object is not the one
   * the record describes (another copy of the window, with other bytes, replaced it after the
   * record was written); its bytes are checked for completeness instead of against the hash.
   */
  kind: "missing" | "corrupt" | "unrecorded" | "short" | "replaced";
  source: string;
  stream: string;
  key: string;
  detail: string;
  /**
   * With `repair`: true once the backup no longer claims the window (a missing, corrupt or short
   * one): its seconds are out of the stream's manifest, its catalog entry and completion record
   * dropped, so the planner copies it again from the source. The object itself stays (a short one
   * still holds some seconds) until that copy replaces it.
   */
  repaired?: boolean;
}

/** What `verify --repair` changed in one stream. */
export interface StreamRepair {
  source: string;
  stream: string;
  /** Seconds no longer counted as covered (a window's seconds that another intact window holds stay). */
  uncovered: TimeRange[];
  /** Windows no longer claimed (catalog entries or completion records dropped). */
  windows: number;
  catalogEntriesDropped: number;
  /** Entries of the fragment index (playback) dropped with them. */
  indexEntriesDropped: number;
  recordsDeleted: number;
  /**
   * Objects deleted: only those of windows whose every second an intact window holds (no copy of
   * them is planned, and the source is not their only other copy). Any other object stays until
   * the planner's new copy of its window replaces it: a short one still holds some seconds.
   */
  objectsDeleted: number;
  /** Corrupt objects moved out of their window's key (`{key}.corrupt-{unix seconds}`), kept. */
  setAside: string[];
  /** Short objects left at their key: the copier copies the window over them. */
  kept: string[];
  /**
   * Objects verify found bad that were stored again between its read and the repair's delete (a
   * copier's new copy): kept, not deleted (the delete is conditional on the ETag verify read).
   */
  replacedMeanwhile: string[];
  /** Why the repair of this stream did not complete (its problems stay unrepaired). */
  error?: string;
}

export interface VerifyProgress {
  stream: string;
  checked: number;
  /** Objects to check in this stream. */
  total: number;
  bytesRead: number;
}

export interface VerifyReport {
  streams: number;
  /** Recorded windows checked (read and hashed, or found missing). */
  checked: number;
  intact: number;
  bytesRead: number;
  problems: VerifyProblem[];
  /**
   * Corrupt objects an earlier `verify --repair` set aside (`{key}.corrupt-{unix seconds}`): kept
   * for whoever wants to look at them, expired with the stream's windows; not problems.
   */
  setAside?: string[];
  /** With `repair`: per stream with a missing, corrupt or short window, what was changed. */
  repairs?: StreamRepair[];
}

export interface VerifyOptions {
  config: BackupConfig;
  store: BackupStore;
  source?: string | undefined;
  stream?: string | undefined;
  /** Only windows overlapping `[from, to)` (unix seconds). */
  from?: number | undefined;
  to?: number | undefined;
  /** Objects read at once (default 4). */
  concurrency?: number;
  onProgress?: (p: VerifyProgress) => void;
  /**
   * Stop claiming each missing, corrupt or short window (see VerifyProblem.repaired): the manifest
   * is written conditionally (If-Match, re-read and retried when a planner changed it meanwhile).
   */
  repair?: boolean;
  /** Unix seconds, for the manifest's updatedAt (default: the system clock). */
  now?: () => number;
}

interface Expected {
  key: string;
  from: number;
  duration: number;
  size: number;
  sha256: string;
  format?: ArchiveFormat;
  etag?: string;
  copiedAt?: number;
}

/** Kinds of problem whose window the backup claims without holding it whole. */
const REPAIRABLE = new Set<VerifyProblem["kind"]>(["missing", "corrupt", "short"]);

export async function verifyBackup(o: VerifyOptions): Promise<VerifyReport> {
  const report: VerifyReport = {
    streams: 0,
    checked: 0,
    intact: 0,
    bytesRead: 0,
    problems: [],
    ...(o.repair ? { repairs: [] } : {}),
  };
  for (const source of o.config.sources) {
    if (o.source && source.name !== o.source) continue;
    const pending = await o.store.pendingRecords(source.name);
    const catalogs = await catalogDaysByStream(o, source.name);
    const streams = new Set<string>([...pending.byStream.keys(), ...catalogs.keys()]);
    for (const s of await streamFolders(o, source.name)) streams.add(s);
    for (const stream of [...streams].sort()) {
      if (o.stream !== undefined && stream !== o.stream) continue;
      report.streams++;
      await verifyStream(
        o,
        report,
        source.name,
        stream,
        catalogs.get(stream) ?? [],
        pending.byStream.get(stream) ?? [],
      );
    }
  }
  return report;
}

/** Reads a stored window: hash against the record, and media time against its window. */
async function readBack(
  o: VerifyOptions,
  report: VerifyReport,
  progress: VerifyProgress,
  w: Expected,
  replaced: boolean,
  problem: (kind: VerifyProblem["kind"], key: string, detail: string) => void,
): Promise<boolean> {
  const format = w.format ?? (w.key.endsWith(".ts") ? "ts" : "mp4");
  const check = containerCheck(format, w);
  let incomplete: ContainerError | undefined;
  const got = await o.store.hashObject(
    w.key,
    (n) => {
      progress.bytesRead += n;
      report.bytesRead += n;
    },
    (chunk) => {
      if (incomplete) return;
      try {
        check.feed(chunk);
      } catch (error) {
        if (!(error instanceof ContainerError)) throw error;
        incomplete = error;
      }
    },
  );
  try {
    if (!incomplete) check.finish();
  } catch (error) {
    if (!(error instanceof ContainerError)) throw error;
    incomplete = error;
  }
  const hashMatches = got.size === w.size && got.sha256 === w.sha256;
  // Another copy of this window by the backup's copier (its metadata names the window), not an
  // object changed by something else.
  const otherCopy =
    replaced &&
    got.etag !== w.etag &&
    got.metadata.from === String(w.from) &&
    got.metadata.duration === String(w.duration);
  if (!hashMatches && !otherCopy) {
    problem(
      "corrupt",
      w.key,
      got.size !== w.size
        ? `size ${got.size} bytes, recorded ${w.size}`
        : `sha256 ${got.sha256}, recorded ${w.sha256}`,
    );
  } else if (incomplete instanceof MediaShortError) {
    // (Another ContainerError on bytes the hash vouches for means the check cannot read their media
    // clock, e.g. a copy recorded before it existed: nothing to judge by.)
    problem(
      "short",
      w.key,
      `${incomplete.message}; the backup counts the whole window as covered, so it is not copied again by itself (verify --repair stops counting it; restore refuses the window unless --allow-gaps)`,
    );
  } else if (!hashMatches && incomplete) {
    problem(
      "corrupt",
      w.key,
      `another copy of the window replaced the recorded object: ${incomplete.message}`,
    );
  } else if (!hashMatches) {
    problem(
      "replaced",
      w.key,
      `the object (ETag ${got.etag}, sha256 ${got.sha256.slice(0, 12)}…) is another copy of the window than its record ` +
        `describes (ETag ${w.etag}), from a copy that stopped before recording it; it is whole, and the redelivery of that copy re-records it`,
    );
    return true;
  } else {
    report.intact++;
    return true;
  }
  return false;
}

/** What choosing windows by span needs: the store and the span `[from, to)`. */
type SpanOptions = Pick<VerifyOptions, "store" | "from" | "to">;

/** Whether `[from, from + duration)` overlaps the requested span. */
export function overlaps(o: SpanOptions, from: number, duration: number): boolean {
  return (o.from === undefined || from + duration > o.from) && (o.to === undefined || from < o.to);
}

/** Days with a catalog, per stream of a source: only the days that overlap the requested span. */
export async function catalogDaysByStream(o: SpanOptions, source: string): Promise<Map<string, string[]>> {
  const folder = catalogKey(o.store.prefix, source, "x", "d").slice(0, -"x/d.json".length);
  const out = new Map<string, string[]>();
  for await (const obj of o.store.listObjects(folder)) {
    const m = /^([^/]+)\/(\d{4}-\d{2}-\d{2})\.json$/.exec(obj.key.slice(folder.length));
    if (!m) continue;
    const dayStart = Date.parse(`${m[2]}T00:00:00Z`) / 1000;
    if (!overlaps(o, dayStart, 86400)) continue;
    const stream = decodeKeySegment(m[1]!);
    out.set(stream, [...(out.get(stream) ?? []), m[2]!]);
  }
  return out;
}

/** Stream folders holding archive objects (so a stream nothing records is still looked at). */
async function streamFolders(o: VerifyOptions, source: string): Promise<string[]> {
  const folder = `${o.store.prefix}${encodeKeySegment(source)}/`;
  const out: string[] = [];
  let token: string | undefined;
  do {
    const page = await o.store.s3
      .send(
        new ListObjectsV2Command({
          Bucket: o.store.bucket,
          Prefix: folder,
          Delimiter: "/",
          ContinuationToken: token,
        }),
      )
      .catch((error: unknown) => {
        throw storeError(error, `list ${folder}`);
      });
    for (const p of page.CommonPrefixes ?? []) {
      if (p.Prefix) out.push(decodeKeySegment(p.Prefix.slice(folder.length).replace(/\/$/, "")));
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

async function verifyStream(
  o: VerifyOptions,
  report: VerifyReport,
  source: string,
  stream: string,
  catalogDays: string[],
  records: Expected[],
): Promise<void> {
  const expected = new Map<string, Expected>();
  for (const day of catalogDays) {
    const catalog = await o.store.readCatalog(source, stream, day);
    for (const w of catalog.windows) {
      if (overlaps(o, w.from, w.duration)) expected.set(w.key, w);
    }
  }
  // Pending records are newer than catalogs: they win.
  for (const r of records) if (overlaps(o, r.from, r.duration)) expected.set(r.key, r);

  const prefix = streamPrefix(o.store.prefix, source, stream);
  const stored = new Map<string, number>();
  const etags = new Map<string, string | undefined>();
  for await (const obj of o.store.listObjects(prefix)) {
    if (SET_ASIDE.test(obj.key)) {
      const w = parseWindowKeyTail(obj.key.slice(prefix.length).replace(SET_ASIDE, ""));
      if (!w || overlaps(o, w.from, w.duration)) report.setAside = [...(report.setAside ?? []), obj.key];
      continue;
    }
    const w = parseWindowKeyTail(obj.key.slice(prefix.length));
    if (w && !overlaps(o, w.from, w.duration)) continue;
    stored.set(obj.key, obj.size);
    etags.set(obj.key, obj.etag);
  }

  const found: VerifyProblem[] = [];
  const problem = (kind: VerifyProblem["kind"], key: string, detail: string) => {
    const p: VerifyProblem = { kind, source, stream, key, detail };
    report.problems.push(p);
    found.push(p);
  };
  /** Windows whose seconds the bucket holds whole (intact, or a whole other copy). */
  const held: Expected[] = [];
  const unrecorded = [...stored].filter(([key]) => !expected.has(key));
  // Whether the backup counts such an object's seconds (one manifest read, only when there is one).
  const covered = unrecorded.length > 0 ? (await o.store.readManifest(source, stream)).manifest.covered : [];
  for (const [key, size] of unrecorded) {
    const w = parseWindowKeyTail(key.slice(prefix.length));
    const claimed = w && covered.some((r) => r.from <= w.from && w.from + w.duration <= r.to);
    problem(
      "unrecorded",
      key,
      `${size} bytes, no completion record or catalog entry (a copy still finishing, a copier that died before recording it, or not written by the backup)` +
        (w && !claimed
          ? "; the backup does not count its seconds as backed up (e.g. after verify --repair), so the next run copies the window again over it"
          : ""),
    );
  }
  const toRead = [...expected.values()].sort((a, b) => a.from - b.from);
  const progress: VerifyProgress = { stream, checked: 0, total: toRead.length, bytesRead: 0 };
  await forEachLimited(toRead, o.concurrency ?? 4, async (w) => {
    const size = stored.get(w.key);
    if (size === undefined) {
      problem(
        "missing",
        w.key,
        `recorded (${w.size} bytes, sha256 ${w.sha256.slice(0, 12)}…) but not in the bucket`,
      );
    } else {
      // A record names the ETag of its upload (records from before do not): another ETag means
      // another copy of the window replaced the object, which the hash cannot judge.
      const listedEtag = etags.get(w.key);
      const replaced = w.etag !== undefined && listedEtag !== undefined && listedEtag !== w.etag;
      if (size !== w.size && !replaced) {
        // The recorded object with another size (a replaced one is read first to tell which).
        problem("corrupt", w.key, `size ${size} bytes, recorded ${w.size}`);
      } else {
        if (await readBack(o, report, progress, w, replaced, problem)) held.push(w);
      }
    }
    report.checked++;
    progress.checked++;
    o.onProgress?.(progress);
  });
  if (!o.repair) return;
  const bad = found.filter((p) => REPAIRABLE.has(p.kind));
  if (bad.length === 0) return;
  const windows = [...new Set(bad.map((p) => expected.get(p.key)!))];
  const corrupt = new Set(bad.filter((p) => p.kind === "corrupt").map((p) => p.key));
  const repair = await repairStream(o, source, stream, windows, held, { stored, etags, corrupt });
  report.repairs?.push(repair);
  if (repair.error === undefined) for (const p of bad) p.repaired = true;
}

/** Manifest writes a repair tries before giving up on a stream that keeps changing. */
const MANIFEST_ATTEMPTS = 5;

/** What a repaired corrupt object is renamed to: `{key}.corrupt-{unix seconds}` (see repairStream). */
export const SET_ASIDE = /\.corrupt-\d+$/;

/**
 * Stops claiming `bad` windows of a stream: their seconds (except those a `held` window stores)
 * leave the manifest, then their catalog entries and completion records are dropped. In this order
 * so that an interruption leaves a state the next `verify --repair` finds again (a record still
 * pending re-covers the window at the next planner run, and verify then reports it again). Entries
 * and records newer than the copy verify read (a copy recorded meanwhile) are kept.
 *
 * Objects: the source is the only other copy of a window, and may have deleted it already, so an
 * object is deleted only when intact windows hold all its seconds. A short one stays where it is:
 * the copier refuses a stored object whose media stops early and copies the window over it. A
 * corrupt one (other bytes than recorded) could pass the copier's checks of a stored object and be
 * recorded as the window, so it is set aside first: copied to `{key}.corrupt-{now}` (same folder,
 * same lifecycle expiry; no window key, so nothing reads it as a window) and removed from the key.
 */
async function repairStream(
  o: VerifyOptions,
  source: string,
  stream: string,
  bad: Expected[],
  held: Expected[],
  listing: {
    /** Objects listed in the stream's folder (size) and their ETags. */
    stored: ReadonlyMap<string, number>;
    etags: ReadonlyMap<string, string | undefined>;
    /** Keys verify found corrupt. */
    corrupt: ReadonlySet<string>;
  },
): Promise<StreamRepair> {
  const range = (w: Expected): TimeRange => ({ from: w.from, to: w.from + w.duration });
  const uncovered = subtractRanges(normalizeRanges(bad.map(range)), normalizeRanges(held.map(range)));
  const out: StreamRepair = {
    source,
    stream,
    uncovered,
    windows: bad.length,
    catalogEntriesDropped: 0,
    indexEntriesDropped: 0,
    recordsDeleted: 0,
    objectsDeleted: 0,
    setAside: [],
    kept: [],
    replacedMeanwhile: [],
  };
  const stillCovered = (m: Manifest) =>
    uncovered.filter((u) => m.covered.some((r) => r.from < u.to && u.from < r.to));
  const heldRanges = normalizeRanges(held.map(range));
  const redundant = (w: Expected) =>
    listing.stored.has(w.key) && subtractRanges([range(w)], heldRanges).length === 0;
  const now = o.now?.() ?? Math.floor(Date.now() / 1000);
  try {
    // 0. Corrupt objects the copier could mistake for the window are set aside (before the planner
    // can plan the window again).
    for (const w of bad) {
      if (!listing.corrupt.has(w.key) || !listing.stored.has(w.key) || redundant(w)) continue;
      const aside = `${w.key}.corrupt-${now}`;
      const etag = listing.etags.get(w.key);
      await o.store.s3
        .send(
          new CopyObjectCommand({
            Bucket: o.store.bucket,
            Key: aside,
            CopySource: `${o.store.bucket}/${w.key.split("/").map(encodeURIComponent).join("/")}`,
            ...(etag ? { CopySourceIfMatch: etag } : {}),
          }),
        )
        .catch((error: unknown) => {
          throw storeError(error, `set ${w.key} aside as ${aside}`);
        });
      out.setAside.push(aside);
      // Only the corrupt bytes just copied aside: a copier that stored the window again meanwhile
      // keeps its copy (If-Match; without a listed ETag, as before, unconditionally).
      if (
        (etag
          ? await o.store.deleteIfUnchanged(w.key, etag, `delete ${w.key}`)
          : await deleteObject(o, w.key)) === "changed"
      )
        out.replacedMeanwhile.push(w.key);
    }
    // 1. The manifest: conditional write (If-Match the ETag read), re-read and retried on a conflict.
    let written = uncovered.length === 0;
    for (let attempt = 0; !written && attempt < MANIFEST_ATTEMPTS; attempt++) {
      const read = await o.store.readManifest(source, stream);
      let m = read.manifest;
      for (const u of uncovered) m = uncover(m, u.from, u.to);
      if (m === read.manifest || read.etag === undefined) {
        written = true;
        break;
      }
      written = await o.store.writeManifest({ ...m, updatedAt: now }, read.etag);
    }
    if (!written) {
      out.error = `the manifest of ${source}/${stream} changed at each of ${MANIFEST_ATTEMPTS} attempts (a planner running); run verify --repair again`;
      return out;
    }
    // 2. Catalog entries of the windows, day by day (the copy verify read, or an older one).
    const isBadCopy = (w: Expected, e: Pick<CatalogEntry, "key" | "sha256" | "copiedAt">) =>
      e.key === w.key && (e.sha256 === w.sha256 || (w.copiedAt !== undefined && e.copiedAt <= w.copiedAt));
    const byDay = new Map<string, Expected[]>();
    for (const w of bad) byDay.set(utcDate(w.from), [...(byDay.get(utcDate(w.from)) ?? []), w]);
    for (const [day, list] of byDay) {
      // Conditional (updateCatalog): entries a planner adds meanwhile are kept.
      let dropped = 0;
      await o.store.updateCatalog(source, stream, day, (catalog) => {
        const windows = catalog.windows.filter((e) => !list.some((w) => isBadCopy(w, e)));
        dropped = catalog.windows.length - windows.length;
        return dropped === 0 ? undefined : { ...catalog, windows };
      });
      out.catalogEntriesDropped += dropped;
    }
    // ... and their fragment index entries (what playback serves), but not those of a newer copy.
    const index = new FragmentIndexStore(o.store);
    // Conditional (updateDay): entries a planner compacts in meanwhile are kept.
    for (const [day, list] of byDay) {
      let dropped = 0;
      await index.updateDay(source, stream, day, (current) => {
        const windows = current.filter(
          (e) =>
            !list.some(
              (w) => e.key === w.key && (e.etag === undefined || w.etag === undefined || e.etag === w.etag),
            ),
        );
        dropped = current.length - windows.length;
        return dropped === 0 ? undefined : windows;
      });
      out.indexEntriesDropped += dropped;
    }
    // 3. Completion records not compacted yet.
    // Each deleted only if it is still the record read (If-Match): a copy recorded between the read
    // and the delete keeps its record.
    for (const w of bad) {
      const id = { source, stream, from: w.from, duration: w.duration };
      const read = await o.store.getRecordTagged(id);
      if (!read || !isBadCopy(w, read.record)) continue;
      const key = o.store.recordKeyOf(id);
      if (read.etag === undefined) await o.store.deleteKeys([key]);
      else if (
        (await o.store.deleteIfUnchanged(key, read.etag, `delete the completion record ${key}`)) === "changed"
      )
        continue;
      out.recordsDeleted++;
    }
    // 4. Objects of windows that other intact windows hold whole (e.g. a short {0,600} beside
    // {0,300} and {300,300}): nothing copies them again, and nothing is lost with them.
    // Only the object verify read (If-Match its listed ETag): one stored again meanwhile stays.
    for (const w of bad.filter(redundant)) {
      const etag = listing.etags.get(w.key);
      const done = etag
        ? await o.store.deleteIfUnchanged(w.key, etag, `delete ${w.key}`)
        : await deleteObject(o, w.key);
      if (done === "deleted") out.objectsDeleted++;
      else out.replacedMeanwhile.push(w.key);
    }
    out.kept = bad
      .filter(
        (w) =>
          listing.stored.has(w.key) &&
          !listing.corrupt.has(w.key) &&
          !redundant(w) &&
          !out.replacedMeanwhile.includes(w.key),
      )
      .map((w) => w.key);
    // 5. A planner that read a record before step 3 may have claimed a window again.
    const again = stillCovered((await o.store.readManifest(source, stream)).manifest);
    if (again.length > 0) {
      out.error = `a planner run claimed ${again.length} of the repaired span(s) of ${source}/${stream} again meanwhile; run verify --repair again`;
    }
  } catch (error) {
    out.error = error instanceof Error ? error.message : String(error);
  }
  return out;
}

async function deleteObject(o: VerifyOptions, key: string): Promise<"deleted"> {
  await o.store.s3
    .send(new DeleteObjectCommand({ Bucket: o.store.bucket, Key: key }))
    .catch((error: unknown) => {
      throw storeError(error, `delete ${key}`);
    });
  return "deleted";
}
