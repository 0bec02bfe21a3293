/**
 * The fragment index in S3 (fragment-index.ts): one object per stream and UTC day,
 * `{prefix}.backup/index/{source}/{stream}/{YYYY-MM-DD}.json`, written by the planner when it
 * compacts completion records (beside the day's catalog) and by `reindex`; plus the indexes still
 * inside pending completion records, so a window is findable as soon as its copy is recorded.
 */
import { GetObjectCommand, PutObjectCommand, S3ServiceException } from "@aws-sdk/client-s3";
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
    const body = await this.#getJson<FragmentIndexDay>(
      fragmentIndexKey(this.#store.prefix, source, stream, day),
    );
    return body?.v === FRAGMENT_INDEX_VERSION && Array.isArray(body.windows) ? body : undefined;
  }

  async writeDay(d: FragmentIndexDay): Promise<void> {
    const s = this.#store;
    this.#count("PutObject");
    await s.s3
      .send(
        new PutObjectCommand({
          Bucket: s.bucket,
          Key: fragmentIndexKey(s.prefix, d.source, d.stream, d.day),
          Body: JSON.stringify(d),
          ContentType: "application/json",
        }),
      )
      .catch((error: unknown) => {
        throw storeError(error, `write fragment index of ${d.stream} on ${d.day}`);
      });
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
      const current = await this.readDay(source, stream, day);
      const byWindow = new Map((current?.windows ?? []).map((w) => [`${w.from}-${w.duration}`, w]));
      for (const e of list) byWindow.set(`${e.from}-${e.duration}`, e);
      await this.writeDay({
        v: FRAGMENT_INDEX_VERSION,
        source,
        stream,
        day,
        windows: [...byWindow.values()].sort((a, b) => a.from - b.from || a.duration - b.duration),
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
      const record = await this.#getJson<CopyRecord>(o.key);
      if (record?.index && record.stream === stream) byWindow.set(`${m[1]}-${m[2]}`, record.index);
    }
    return [...byWindow.values()]
      .map((w) => decodeWindowIndex(w))
      .filter((w): w is WindowIndex => w !== undefined)
      .sort((a, b) => a.from - b.from || a.duration - b.duration);
  }

  async #getJson<T>(key: string): Promise<T | undefined> {
    const s = this.#store;
    this.#count("GetObject");
    try {
      const res = await s.s3.send(new GetObjectCommand({ Bucket: s.bucket, Key: key }));
      return JSON.parse((await res.Body?.transformToString()) ?? "null") as T;
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
