/**
 * The fragment index in S3 (fragment-index.ts): one object per stream and UTC day,
 * `{prefix}.backup/index/{source}/{stream}/{YYYY-MM-DD}.json`, written by the planner when it
 * compacts completion records (beside the day's catalog) and by `reindex`; plus the indexes still
 * inside pending completion records, so a window is findable as soon as its copy is recorded.
 */
import { GetObjectCommand, S3ServiceException } from "@aws-sdk/client-s3";
import { RetryableError } from "../domain/errors.ts";
import {
  decodeWindowIndex,
  FRAGMENT_INDEX_VERSION,
  type FragmentIndexDay,
  type FragmentIndexReader,
  mergeSpans,
  type StoredSpans,
  type StoredWindowIndex,
  storedSpans,
  type WindowIndex,
} from "../domain/fragment-index.ts";
import { GAP_TOLERANCE_MS } from "../domain/hls-playlist.ts";
import {
  fragmentIndexFolder,
  fragmentIndexKey,
  fragmentIndexSummaryKey,
  recordsPrefix,
  utcDate,
} from "../domain/keys.ts";
import type { CopyRecord } from "../domain/manifest.ts";
import { encodeKeySegment } from "../domain/names.ts";
import { type BackupStore, storeError } from "./backup-store.ts";
import { jsonPut } from "./json-put.ts";

const DAY = 86_400;

/**
 * One day of the summary: what `storedSpans` gives for the day object whose ETag is `etag`. Used
 * only while the day object still has that ETag (checked against a listing), so a summary that
 * lags or lost an update costs reads, never a wrong answer.
 */
interface SummaryDay {
  etag: string;
  bytes: number;
  spans: [number, number][];
}

/** `{prefix}.backup/index/{source}/{stream}.summary.json`. */
interface FragmentIndexSummary {
  v: 1;
  source: string;
  stream: string;
  days: Record<string, SummaryDay>;
}

/** Conditional attempts at the summary before its update is left to the next writer. */
const SUMMARY_ATTEMPTS = 3;

export class FragmentIndexStore implements FragmentIndexReader {
  readonly #store: BackupStore;

  constructor(store: BackupStore) {
    this.#store = store;
  }

  #count(kind: string): void {
    const r = this.#store.requests;
    r.set(kind, (r.get(kind) ?? 0) + 1);
  }

  /** A stream's index object of one day, or undefined when there is none (or of another version). */
  async readDay(source: string, stream: string, day: string): Promise<FragmentIndexDay | undefined> {
    return (await this.#readDayTagged(source, stream, day)).day;
  }

  async #readDayTagged(
    source: string,
    stream: string,
    day: string,
  ): Promise<{ day: FragmentIndexDay | undefined; etag: string | undefined }> {
    const got = await this.#getJson<FragmentIndexDay>(
      fragmentIndexKey(this.#store.prefix, source, stream, day),
    );
    const body = got?.body;
    return {
      day: body?.v === FRAGMENT_INDEX_VERSION && Array.isArray(body.windows) ? body : undefined,
      etag: got?.etag,
    };
  }

  /**
   * Writes a day object; with `ifMatch`, only over the object of that ETag (`null`: only when there
   * is none) and returns false when it changed meanwhile.
   */
  async writeDay(d: FragmentIndexDay, ifMatch?: string | null): Promise<boolean> {
    const s = this.#store;
    this.#count("PutObject");
    try {
      const res = await s.s3.send(
        jsonPut({
          Bucket: s.bucket,
          Key: fragmentIndexKey(s.prefix, d.source, d.stream, d.day),
          Body: JSON.stringify(d),
          ...(ifMatch === undefined ? {} : ifMatch === null ? { IfNoneMatch: "*" } : { IfMatch: ifMatch }),
        }),
      );
      if (res.ETag) await this.#summarize(d, res.ETag);
      return true;
    } catch (error) {
      if (
        ifMatch !== undefined &&
        error instanceof S3ServiceException &&
        [409, 412].includes(error.$metadata.httpStatusCode ?? 0)
      ) {
        return false;
      }
      throw storeError(error, `write fragment index of ${d.stream} on ${d.day}`);
    }
  }

  /**
   * Read, change, write of one day object, conditional on its ETag and retried when another writer
   * (the planner's compaction, reindex, verify --repair) changed it meanwhile, so no one's entries
   * are lost. `change` gets the current windows and returns the new ones, or undefined to leave the
   * object as it is.
   */
  async updateDay(
    source: string,
    stream: string,
    day: string,
    change: (windows: StoredWindowIndex[]) => StoredWindowIndex[] | undefined,
  ): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const current = await this.#readDayTagged(source, stream, day);
      const windows = change(current.day?.windows ?? []);
      if (!windows) return;
      const next: FragmentIndexDay = { v: FRAGMENT_INDEX_VERSION, source, stream, day, windows };
      if (await this.writeDay(next, current.etag ?? null)) return;
      if (attempt >= 4) {
        throw new RetryableError(
          `S3: the fragment index of ${stream} on ${day} kept changing while it was written; try again`,
        );
      }
    }
  }

  /**
   * Adds window indexes to their per-day objects (read, merge, write: one GET and one PUT per day
   * touched). Idempotent: an entry replaces the one of the same window (`from`, `duration`).
   * Returns how many entries were written.
   */
  async addWindows(source: string, stream: string, entries: readonly StoredWindowIndex[]): Promise<number> {
    const byDay = new Map<string, StoredWindowIndex[]>();
    for (const e of entries) {
      if (e?.v !== FRAGMENT_INDEX_VERSION) continue;
      const day = utcDate(e.from);
      byDay.set(day, [...(byDay.get(day) ?? []), e]);
    }
    let written = 0;
    for (const [day, list] of byDay) {
      await this.updateDay(source, stream, day, (windows) => {
        const byWindow = new Map(windows.map((w) => [`${w.from}-${w.duration}`, w]));
        for (const e of list) byWindow.set(`${e.from}-${e.duration}`, e);
        return [...byWindow.values()].sort((a, b) => a.from - b.from || a.duration - b.duration);
      });
      written += list.length;
    }
    return written;
  }

  /**
   * The day's entry of the stream's summary, made from the day object just written (its ETag).
   * Best effort: a failure leaves the entry stale, and readers then read that day itself.
   */
  async #summarize(d: FragmentIndexDay, etag: string): Promise<void> {
    const s = this.#store;
    const key = fragmentIndexSummaryKey(s.prefix, d.source, d.stream);
    const windows = d.windows
      .map((w) => decodeWindowIndex(w))
      .filter((w): w is WindowIndex => w !== undefined);
    const day: SummaryDay = { etag, ...storedSpans(windows, GAP_TOLERANCE_MS) };
    for (let attempt = 0; attempt < SUMMARY_ATTEMPTS; attempt++) {
      try {
        const got = await this.#getJson<FragmentIndexSummary>(key).catch(() => undefined);
        const current =
          got?.body?.v === 1 && got.body.days && typeof got.body.days === "object"
            ? got.body
            : { v: 1 as const, source: d.source, stream: d.stream, days: {} };
        const next: FragmentIndexSummary = { ...current, days: { ...current.days, [d.day]: day } };
        this.#count("PutObject");
        await s.s3.send(
          jsonPut({
            Bucket: s.bucket,
            Key: key,
            Body: JSON.stringify(next),
            ...(got?.etag ? { IfMatch: got.etag } : { IfNoneMatch: "*" }),
          }),
        );
        return;
      } catch {
        // Another writer's summary update came first: read it again and add this day to it.
      }
    }
  }

  /**
   * Stored spans and bytes of `[fromSec, toSec)` (FragmentIndexReader.readStoredSpans) with a
   * bounded number of requests for any span: whole days from the summary, each used only while its
   * day object has the ETag it was made from (one listing of the stream's index folder, 1000 days
   * a page); the partial days at both ends, days the summary lacks or has stale, and days with
   * pending completion records are read as `readFragmentIndex` reads them.
   */
  async readStoredSpans(
    source: string,
    stream: string,
    fromSec: number,
    toSec: number,
  ): Promise<StoredSpans> {
    const firstFull = Math.ceil(fromSec / DAY) * DAY;
    const endFull = Math.floor(toSec / DAY) * DAY;
    if (endFull - firstFull < 3 * DAY) {
      return storedSpans(await this.readFragmentIndex(source, stream, fromSec, toSec), GAP_TOLERANCE_MS);
    }
    const overlaps = (from: number, duration: number) => from < toSec && from + duration > fromSec;
    const records = await this.#pendingRecordKeys(source, stream, overlaps);
    const recordDays = new Set(records.map((r) => utcDate(r.from)));
    const summary = (
      await this.#getJson<FragmentIndexSummary>(
        fragmentIndexSummaryKey(this.#store.prefix, source, stream),
      ).catch(() => undefined)
    )?.body;
    const days = summary?.v === 1 && summary.days && typeof summary.days === "object" ? summary.days : {};
    const direct: string[] = [];
    for (let day = Math.floor(fromSec / DAY) * DAY; day < firstFull; day += DAY) direct.push(utcDate(day));
    for (let day = endFull; day < toSec; day += DAY) direct.push(utcDate(day));
    const summarized: SummaryDay[] = [];
    const folder = fragmentIndexFolder(this.#store.prefix, source, stream);
    for await (const o of this.#store.listObjects(folder)) {
      const m = /^(\d{4}-\d{2}-\d{2})\.json$/.exec(o.key.slice(folder.length));
      if (!m) continue;
      const start = Date.parse(`${m[1]}T00:00:00Z`) / 1000;
      if (start < firstFull || start >= endFull) continue;
      const entry = days[m[1]!];
      if (entry && entry.etag === o.etag && !recordDays.has(m[1]!)) summarized.push(entry);
      else direct.push(m[1]!);
    }
    const byWindow = new Map<string, StoredWindowIndex>();
    for (const day of direct) {
      for (const w of (await this.readDay(source, stream, day))?.windows ?? []) {
        if (overlaps(w.from, w.duration)) byWindow.set(`${w.from}-${w.duration}`, w);
      }
    }
    await this.#addRecords(stream, records, byWindow);
    const read = storedSpans(
      [...byWindow.values()]
        .map((w) => decodeWindowIndex(w))
        .filter((w): w is WindowIndex => w !== undefined),
      GAP_TOLERANCE_MS,
    );
    return {
      spans: mergeSpans([...read.spans, ...summarized.flatMap((d) => d.spans)], GAP_TOLERANCE_MS),
      bytes: read.bytes + summarized.reduce((n, d) => n + d.bytes, 0),
    };
  }

  /**
   * The stream's summary brought up to date with every day object: one listing, one GET per day
   * the summary lacks or has stale, one PUT when anything changed (nothing but the listing and
   * the summary when it is up to date). For days written before summaries existed (`reindex`
   * runs it). Returns the days summarized now.
   */
  async refreshSummary(source: string, stream: string): Promise<number> {
    const s = this.#store;
    const key = fragmentIndexSummaryKey(s.prefix, source, stream);
    const got = await this.#getJson<FragmentIndexSummary>(key).catch(() => undefined);
    const old = got?.body?.v === 1 && got.body.days && typeof got.body.days === "object" ? got.body.days : {};
    const folder = fragmentIndexFolder(s.prefix, source, stream);
    const days: Record<string, SummaryDay> = {};
    let made = 0;
    for await (const o of s.listObjects(folder)) {
      const m = /^(\d{4}-\d{2}-\d{2})\.json$/.exec(o.key.slice(folder.length));
      if (!m) continue;
      const known = old[m[1]!];
      if (known && known.etag === o.etag) {
        days[m[1]!] = known;
        continue;
      }
      const day = await this.#getJson<FragmentIndexDay>(o.key).catch(() => undefined);
      if (!day?.etag || day.body?.v !== FRAGMENT_INDEX_VERSION || !Array.isArray(day.body.windows)) continue;
      const windows = day.body.windows
        .map((w) => decodeWindowIndex(w))
        .filter((w): w is WindowIndex => w !== undefined);
      days[m[1]!] = { etag: day.etag, ...storedSpans(windows, GAP_TOLERANCE_MS) };
      made++;
    }
    if (made === 0 && Object.keys(days).length === Object.keys(old).length) return 0;
    const summary: FragmentIndexSummary = { v: 1, source, stream, days };
    this.#count("PutObject");
    await s.s3
      .send(
        jsonPut({
          Bucket: s.bucket,
          Key: key,
          Body: JSON.stringify(summary),
        }),
      )
      .catch((error: unknown) => {
        throw storeError(error, `write the fragment index summary of ${stream}`);
      });
    return made;
  }

  /** The stream's pending completion records (one listing) whose window `wanted` takes. */
  async #pendingRecordKeys(
    source: string,
    stream: string,
    wanted: (from: number, duration: number) => boolean,
  ): Promise<{ key: string; from: number; duration: number }[]> {
    const folder = `${recordsPrefix(this.#store.prefix, source)}${encodeKeySegment(stream)}/`;
    const out: { key: string; from: number; duration: number }[] = [];
    for await (const o of this.#store.listObjects(folder)) {
      const m = /^(\d+)-(\d+)\.json$/.exec(o.key.slice(folder.length));
      if (m && wanted(Number(m[1]), Number(m[2])))
        out.push({ key: o.key, from: Number(m[1]), duration: Number(m[2]) });
    }
    return out;
  }

  /** The records' window indexes over the day objects' entries of the same windows (they are newer). */
  async #addRecords(
    stream: string,
    records: readonly { key: string; from: number; duration: number }[],
    byWindow: Map<string, StoredWindowIndex>,
  ): Promise<void> {
    for (const r of records) {
      const record = (await this.#getJson<CopyRecord>(r.key))?.body;
      if (record?.index && record.stream === stream) byWindow.set(`${r.from}-${r.duration}`, record.index);
    }
  }

  /** Moves the indexes of completion records into their per-day objects (the planner's compaction). */
  async compactRecords(source: string, stream: string, records: readonly CopyRecord[]): Promise<void> {
    const entries = records.flatMap((r) => (r.index ? [r.index] : []));
    if (entries.length > 0) await this.addWindows(source, stream, entries);
  }

  /**
   * The indexes of a stream's windows overlapping `[fromSec, toSec)`: one GET per UTC day in the
   * range (windows never cross midnight: their lengths divide a day), one listing of the stream's
   * pending records and one GET per pending record in the range. A pending record replaces the day
   * object's entry of the same window (it is newer). Sorted by `from`, then `duration`.
   */
  async readFragmentIndex(
    source: string,
    stream: string,
    fromSec: number,
    toSec: number,
  ): Promise<WindowIndex[]> {
    const byWindow = new Map<string, StoredWindowIndex>();
    const overlaps = (from: number, duration: number) => from < toSec && from + duration > fromSec;
    for (let day = Math.floor(fromSec / DAY) * DAY; day < toSec; day += DAY) {
      const d = await this.readDay(source, stream, utcDate(day));
      for (const w of d?.windows ?? []) {
        if (overlaps(w.from, w.duration)) byWindow.set(`${w.from}-${w.duration}`, w);
      }
    }
    await this.#addRecords(stream, await this.#pendingRecordKeys(source, stream, overlaps), byWindow);
    return [...byWindow.values()]
      .map((w) => decodeWindowIndex(w))
      .filter((w): w is WindowIndex => w !== undefined)
      .sort((a, b) => a.from - b.from || a.duration - b.duration);
  }

  async #getJson<T>(key: string): Promise<{ body: T; etag: string | undefined } | undefined> {
    const s = this.#store;
    this.#count("GetObject");
    try {
      const res = await s.s3.send(new GetObjectCommand({ Bucket: s.bucket, Key: key }));
      return { body: JSON.parse((await res.Body?.transformToString()) ?? "null") as T, etag: res.ETag };
    } catch (error) {
      if (
        error instanceof S3ServiceException &&
        (error.name === "NoSuchKey" || error.$metadata.httpStatusCode === 404)
      ) {
        return undefined;
      }
      throw storeError(error, `read ${key}`);
    }
  }
}
