import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { type BackupStore, storeError } from "../functions/adapters/backup-store.ts";
import type { BackupConfig } from "../functions/config.ts";
import type { ArchiveFormat } from "../functions/domain/archive.ts";
import { ContainerError, containerCheck, MediaShortError } from "../functions/domain/container-check.ts";
import { catalogKey, parseWindowKeyTail, streamPrefix } from "../functions/domain/keys.ts";
import { decodeKeySegment, encodeKeySegment } from "../functions/domain/names.ts";
import { forEachLimited } from "../functions/plan-backup.ts";

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
}

interface Expected {
  key: string;
  from: number;
  duration: number;
  size: number;
  sha256: string;
  format?: ArchiveFormat;
  etag?: string;
}

export async function verifyBackup(o: VerifyOptions): Promise<VerifyReport> {
  const report: VerifyReport = { streams: 0, checked: 0, intact: 0, bytesRead: 0, problems: [] };
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
): Promise<void> {
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
      `${incomplete.message}; the backup counts the whole window as covered, so it is not copied again by itself (restore refuses the window unless --allow-gaps)`,
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
  } else {
    report.intact++;
  }
}

function overlaps(o: VerifyOptions, from: number, duration: number): boolean {
  return (o.from === undefined || from + duration > o.from) && (o.to === undefined || from < o.to);
}

/** Days with a catalog, per stream of a source: only the days that overlap the requested span. */
async function catalogDaysByStream(o: VerifyOptions, source: string): Promise<Map<string, string[]>> {
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
    const w = parseWindowKeyTail(obj.key.slice(prefix.length));
    if (w && !overlaps(o, w.from, w.duration)) continue;
    stored.set(obj.key, obj.size);
    etags.set(obj.key, obj.etag);
  }

  const problem = (kind: VerifyProblem["kind"], key: string, detail: string) =>
    report.problems.push({ kind, source, stream, key, detail });
  for (const [key, size] of stored) {
    if (!expected.has(key)) {
      problem(
        "unrecorded",
        key,
        `${size} bytes, no completion record or catalog entry (a copy still finishing, a copier that died before recording it, or not written by the backup)`,
      );
    }
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
        await readBack(o, report, progress, w, replaced, problem);
      }
    }
    report.checked++;
    progress.checked++;
    o.onProgress?.(progress);
  });
}
