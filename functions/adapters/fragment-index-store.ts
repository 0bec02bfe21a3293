/**
 * The fragment index in S3 (fragment-index.ts): one object per stream and UTC day,
 * `{prefix}.backup/index/{source}/{stream}/{YYYY-MM-DD}.json`, written by the planner when it
 * compacts completion records (beside the day's catalog) and by `reindex`; plus the indexes still
 * inside pending completion records, so a window is findable as soon as its copy is recorded.
 */
import { GetObjectCommand, PutObjectCommand, S3ServiceException } from "@aws-sdk/client-s3";
import { RetryableError } from "../domain/errors.ts";
import {
  decodeWindowIndex,
  FRAGMENT_INDEX_VERSION,
  type FragmentIndexDay,
  type FragmentIndexReader,
  type StoredWindowIndex,
  type WindowIndex,
} from "../domain/fragment-index.ts";
import { fragmentIndexKey, recordsPrefix, utcDate } from "../domain/keys.ts";
import type { CopyRecord } from "../domain/manifest.ts";
import { encodeKeySegment } from "../domain/names.ts";
import { type BackupStore, storeError } from "./backup-store.ts";

const DAY = 86_400;

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
      await s.s3.send(
        new PutObjectCommand({
          Bucket: s.bucket,
          Key: fragmentIndexKey(s.prefix, d.source, d.stream, d.day),
          Body: JSON.stringify(d),
          ContentType: "application/json",
          // S3 refuses an upload without a checksum into a bucket with Object Lock retention.
          ChecksumAlgorithm: "CRC32",
          ...(ifMatch === undefined ? {} : ifMatch === null ? { IfNoneMatch: "*" } : { IfMatch: ifMatch }),
        }),
      );
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
    const folder = `${recordsPrefix(this.#store.prefix, source)}${encodeKeySegment(stream)}/`;
    for await (const o of this.#store.listObjects(folder)) {
      const m = /^(\d+)-(\d+)\.json$/.exec(o.key.slice(folder.length));
      if (!m || !overlaps(Number(m[1]), Number(m[2]))) continue;
      const record = (await this.#getJson<CopyRecord>(o.key))?.body;
      if (record?.index && record.stream === stream) byWindow.set(`${m[1]}-${m[2]}`, record.index);
    }
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
