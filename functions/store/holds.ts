/**
 * Holds in the bucket: the book of a source's holds (`.backup/holds/{source}.json`, one small
 * object the copier reads after each window it stores) and the held copies of windows
 * (`.backup/held/...`, under no lifecycle rule, with an S3 legal hold when the bucket has Object
 * Lock). A held window is a server-side copy: the window itself still expires with its stream's
 * retention, the copy stays until the last hold over it is released.
 */
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadObjectCommand,
  PutObjectLegalHoldCommand,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { emptyHoldBook, type Hold, type HoldBook, holdsOverlapping } from "../domain/evidence.ts";
import { heldFolder, heldKey, holdsKey, utcDate } from "../domain/keys.ts";
import type { CopyRecord } from "../domain/manifest.ts";
import {
  type BackupStore,
  CONDITIONAL_ATTEMPTS,
  raceBackoff,
  StoreError,
  storeError,
} from "./backup-store.ts";

/** A stored window as holds see it: its record (catalog entry or completion record). */
export type HeldWindowSource = Pick<
  CopyRecord,
  "source" | "stream" | "from" | "duration" | "format" | "key" | "size" | "sha256" | "etag" | "copiedAt"
>;

/** A held copy of a window. */
export interface HeldWindow extends HeldWindowSource {
  /** Key of the window the copy was made from. */
  originalKey: string;
  versionId?: string;
}

export async function readHoldBook(
  store: BackupStore,
  source: string,
): Promise<{ book: HoldBook; etag?: string }> {
  const got = await store.readObject<HoldBook>(holdsKey(store.prefix, source));
  if (!got) return { book: emptyHoldBook(source) };
  return { book: { ...emptyHoldBook(source), ...got.body }, ...(got.etag ? { etag: got.etag } : {}) };
}

/**
 * Read, change, write of a source's hold book, conditional on its ETag and done again when another
 * writer changed it meanwhile (two operators at once), so that no hold is lost.
 */
export async function updateHoldBook(
  store: BackupStore,
  source: string,
  change: (book: HoldBook) => HoldBook,
): Promise<HoldBook> {
  for (let attempt = 1; ; attempt++) {
    const { book, etag } = await readHoldBook(store, source);
    const next = change(book);
    if (await store.writeObject(holdsKey(store.prefix, source), JSON.stringify(next), etag ?? null))
      return next;
    if (attempt >= CONDITIONAL_ATTEMPTS) {
      throw new StoreError(
        `S3: the holds of source ${source} kept changing while they were written (${attempt} attempts); try again`,
      );
    }
    await raceBackoff(attempt);
  }
}

/** Whether the bucket has Object Lock (so objects can carry a legal hold). */
export async function bucketHasObjectLock(store: BackupStore): Promise<boolean> {
  try {
    const res = await store.s3.send(new GetObjectLockConfigurationCommand({ Bucket: store.bucket }));
    return res.ObjectLockConfiguration?.ObjectLockEnabled === "Enabled";
  } catch (error) {
    const status = error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
    // No configuration (404), or a store without the call (400, 501): no Object Lock.
    if (status === 404 || status === 400 || status === 501) return false;
    throw storeError(error, "read the bucket's Object Lock configuration");
  }
}

function meta(s: string): string {
  return /^[\x20-\x7e]*$/.test(s) ? s : encodeURIComponent(s);
}

/**
 * Copies a window to its held key (server-side), with a legal hold when asked; the copy is made
 * only from the object its record describes (If-Match its ETag, when known). A copy already there
 * with the same SHA-256 is kept. Returns the held copy.
 */
export async function holdWindow(
  store: BackupStore,
  w: HeldWindowSource,
  legalHold: boolean,
): Promise<HeldWindow> {
  const Key = heldKey(store.prefix, w, w.format);
  const existing = await headHeld(store, Key);
  if (existing && existing.sha256 === w.sha256) {
    if (legalHold) await setLegalHold(store, Key, true);
    return existing;
  }
  const res = await store.s3
    .send(
      new CopyObjectCommand({
        Bucket: store.bucket,
        Key,
        CopySource: `${store.bucket}/${encodeURIComponent(w.key).replaceAll("%2F", "/")}`,
        ...(w.etag ? { CopySourceIfMatch: w.etag } : {}),
        MetadataDirective: "REPLACE",
        ContentType: w.format === "mp4" ? "video/mp4" : "video/mp2t",
        Metadata: {
          source: meta(w.source),
          stream: meta(w.stream),
          from: String(w.from),
          duration: String(w.duration),
          format: w.format,
          size: String(w.size),
          sha256: w.sha256,
          "copied-at": String(w.copiedAt),
          "original-key": meta(w.key),
        },
        ...(legalHold ? { ObjectLockLegalHoldStatus: "ON" as const } : {}),
      }),
    )
    .catch((error: unknown) => {
      throw storeError(error, `copy ${w.key} to ${Key}`);
    });
  return { ...w, key: Key, originalKey: w.key, ...(res.VersionId ? { versionId: res.VersionId } : {}) };
}

/** Turns a held copy's legal hold on or off. */
export async function setLegalHold(store: BackupStore, key: string, on: boolean): Promise<void> {
  await store.s3
    .send(
      new PutObjectLegalHoldCommand({
        Bucket: store.bucket,
        Key: key,
        LegalHold: { Status: on ? "ON" : "OFF" },
        ChecksumAlgorithm: "CRC32",
      }),
    )
    .catch((error: unknown) => {
      throw storeError(error, `${on ? "set" : "lift"} the legal hold of ${key}`);
    });
}

/** Removes a held copy (its legal hold lifted first, when it has one). */
export async function unholdWindow(store: BackupStore, key: string, legalHold: boolean): Promise<void> {
  if (legalHold) await setLegalHold(store, key, false);
  await store.s3.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: key })).catch((error: unknown) => {
    throw storeError(error, `delete ${key}`);
  });
}

async function headHeld(store: BackupStore, key: string): Promise<HeldWindow | undefined> {
  try {
    const res = await store.s3.send(new HeadObjectCommand({ Bucket: store.bucket, Key: key }));
    return heldFromMetadata(key, res.Metadata ?? {}, res.VersionId, res.ETag);
  } catch (error) {
    if (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404) return undefined;
    throw storeError(error, `check ${key}`);
  }
}

function heldFromMetadata(
  key: string,
  m: Record<string, string>,
  versionId: string | undefined,
  etag: string | undefined,
): HeldWindow | undefined {
  const decode = (s: string | undefined) => {
    if (s === undefined) return undefined;
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  const format = m.format;
  if (format !== "mp4" && format !== "ts") return undefined;
  if (!m.sha256 || !m.from || !m.duration || !m.size) return undefined;
  return {
    source: decode(m.source) ?? "",
    stream: decode(m.stream) ?? "",
    from: Number(m.from),
    duration: Number(m.duration),
    format,
    key,
    size: Number(m.size),
    sha256: m.sha256,
    copiedAt: Number(m["copied-at"] ?? 0),
    originalKey: decode(m["original-key"]) ?? "",
    ...(etag ? { etag } : {}),
    ...(versionId ? { versionId } : {}),
  };
}

/** Held copies of a stream's windows overlapping `[from, to)`: one listing per day, a HEAD each. */
export async function heldWindowsIn(
  store: BackupStore,
  source: string,
  stream: string,
  from: number,
  to: number,
): Promise<HeldWindow[]> {
  const out: HeldWindow[] = [];
  // A window starts at most a day before a second it holds (windows never cross midnight).
  for (let day = Math.floor(from / 86400) * 86400; day < to; day += 86400) {
    for await (const o of store.listObjects(heldFolder(store.prefix, source, stream, utcDate(day)))) {
      const w = await headHeld(store, o.key);
      if (w && w.from < to && from < w.from + w.duration) out.push(w);
    }
  }
  return out.sort((a, b) => a.from - b.from || a.duration - b.duration);
}

/** A stored window of a stream: its catalog entry or completion record. */
export type StoredWindow = Omit<HeldWindowSource, "source" | "stream">;

/** Stored windows of a stream overlapping `[from, to)`: the days' catalogs and the pending records. */
export async function storedWindowsIn(
  store: BackupStore,
  source: string,
  stream: string,
  from: number,
  to: number,
): Promise<StoredWindow[]> {
  const byWindow = new Map<string, StoredWindow>();
  for (let day = Math.floor(from / 86400) * 86400; day < to; day += 86400) {
    const catalog = await store.readCatalog(source, stream, utcDate(day));
    for (const w of catalog.windows) byWindow.set(`${w.from}-${w.duration}`, w);
  }
  const pending = await store.pendingRecords(source, stream);
  for (const r of pending.byStream.get(stream) ?? []) byWindow.set(`${r.from}-${r.duration}`, r);
  return [...byWindow.values()]
    .filter((w) => w.from < to && from < w.from + w.duration)
    .sort((a, b) => a.from - b.from || a.duration - b.duration);
}

/**
 * Holds the stored windows of `stream` overlapping `ranges` (each once, a copy already there
 * kept): the windows a new or grown hold covers. Returns how many windows it holds.
 */
export async function holdStoredIn(
  store: BackupStore,
  source: string,
  stream: string,
  ranges: readonly { from: number; to: number }[],
  legalHold: boolean,
): Promise<number> {
  const seen = new Set<string>();
  for (const r of ranges) {
    for (const w of await storedWindowsIn(store, source, stream, r.from, r.to)) {
      const key = `${w.from}-${w.duration}`;
      if (seen.has(key)) continue;
      seen.add(key);
      await holdWindow(store, { ...w, source, stream }, legalHold);
    }
  }
  return seen.size;
}

/**
 * The copier's part: a window just stored (or found stored) inside a hold of its stream is held at
 * once. One GET of the source's hold book per window (a 404 when the source has no holds).
 */
export async function holdArrivals(
  store: BackupStore,
  source: string,
  records: readonly CopyRecord[],
): Promise<number> {
  if (records.length === 0) return 0;
  const { book } = await readHoldBook(store, source);
  if (book.holds.length === 0) return 0;
  let held = 0;
  for (const r of records) {
    const holds: Hold[] = holdsOverlapping(book, r.stream, r.from, r.from + r.duration);
    if (holds.length === 0) continue;
    await holdWindow(
      store,
      r,
      holds.some((h) => h.legalHold),
    );
    held++;
  }
  return held;
}
