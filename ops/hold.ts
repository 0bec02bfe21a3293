/**
 * `hold` and `release`: a range of one stream kept past its retention (a case is open), and let go.
 * Each window overlapping the range gets a held copy (functions/store/holds.ts) with an S3 legal
 * hold when the bucket has Object Lock; the hold goes into the source's hold book, so the planner
 * holds windows that arrive later inside it. Every hold and release is in the audit trail.
 */
import { randomBytes } from "node:crypto";
import type { BackupConfig } from "../functions/config/config.ts";
import { type Hold, holdsOverlapping } from "../functions/domain/evidence.ts";
import { normalizeRanges, subtractRanges, type TimeRange } from "../functions/domain/ranges.ts";
import type { BackupStore } from "../functions/store/backup-store.ts";
import {
  bucketHasObjectLock,
  heldWindowsIn,
  holdWindow,
  readHoldBook,
  unholdWindow,
  updateHoldBook,
} from "../functions/store/holds.ts";
import { appendAudit } from "./audit.ts";
import { absence, recordedWindowsIn } from "./restore.ts";

/** A hold refused for a reason the operator can act on (printed as is). */
export class HoldError extends Error {
  readonly usage: boolean;
  constructor(message: string, usage = false) {
    super(message);
    this.name = "HoldError";
    this.usage = usage;
  }
}

export interface HoldOptions {
  store: BackupStore;
  config: BackupConfig;
  source: string;
  stream: string;
  from: number;
  to: number;
  reason: string;
  by: string;
  now: number;
}

export interface HoldResult {
  hold: Hold;
  windows: number;
  /** Seconds of the range the backup does not hold. */
  missing: TimeRange[];
}

export async function holdRange(o: HoldOptions): Promise<HoldResult> {
  const legalHold = await legalHoldChoice(o.store, o.config);
  const recorded = await recordedWindowsIn(o.store, o.source, o.stream, o.from, o.to);
  const alreadyHeld = await heldWindowsIn(o.store, o.source, o.stream, o.from, o.to);
  if (recorded.length === 0 && alreadyHeld.length === 0) {
    const { etag } = await o.store.readManifest(o.source, o.stream);
    // An unknown stream is a mistake; a known one with nothing stored yet can still be held.
    if (etag === undefined) throw new HoldError(await absence(o.store, o.source, o.stream, o.from, o.to));
  }
  const held = new Set(alreadyHeld.map((w) => `${w.from}-${w.duration}`));
  let windows = alreadyHeld.length;
  for (const w of recorded) {
    if (held.has(`${w.from}-${w.duration}`)) {
      if (legalHold) await holdWindow(o.store, { ...w, source: o.source, stream: o.stream }, true);
      continue;
    }
    await holdWindow(o.store, { ...w, source: o.source, stream: o.stream }, legalHold);
    held.add(`${w.from}-${w.duration}`);
    windows++;
  }
  const have = normalizeRanges(
    [...recorded, ...alreadyHeld].map((w) => ({ from: w.from, to: w.from + w.duration })),
  );
  const missing = subtractRanges([{ from: o.from, to: o.to }], have);
  const hold: Hold = {
    id: `${new Date(o.now * 1000).toISOString().slice(0, 10).replaceAll("-", "")}-${randomBytes(4).toString("hex")}`,
    stream: o.stream,
    from: o.from,
    to: o.to,
    reason: o.reason,
    by: o.by,
    createdAt: o.now,
    legalHold,
  };
  await updateHoldBook(o.store, o.source, (book) => ({ ...book, holds: [...book.holds, hold] }));
  await appendAudit(o.store, {
    action: "hold",
    at: o.now,
    by: o.by,
    source: o.source,
    stream: o.stream,
    from: o.from,
    to: o.to,
    detail: { id: hold.id, reason: o.reason, windows, legalHold, missingSeconds: secondsOf(missing) },
  });
  return { hold, windows, missing };
}

export interface ReleaseOptions {
  store: BackupStore;
  source: string;
  /** A hold id, or the stream and range it was made with. */
  id?: string | undefined;
  stream?: string | undefined;
  from?: number | undefined;
  to?: number | undefined;
  by: string;
  now: number;
}

export interface ReleaseResult {
  released: Hold[];
  /** Held copies removed (no other hold covers them). */
  removed: number;
}

export async function releaseHold(o: ReleaseOptions): Promise<ReleaseResult> {
  const { book } = await readHoldBook(o.store, o.source);
  const matches = (h: Hold) =>
    o.id !== undefined ? h.id === o.id : h.stream === o.stream && h.from === o.from && h.to === o.to;
  const released = book.holds.filter(matches);
  if (released.length === 0) {
    const what = o.id !== undefined ? `hold ${o.id}` : `hold of stream "${o.stream}" over that range`;
    const ids = book.holds.map((h) => h.id);
    throw new HoldError(
      `no ${what} in source ${o.source} (its holds: ${ids.length > 0 ? ids.join(", ") : "none"}; \`holds\` lists them)`,
    );
  }
  const after = await updateHoldBook(o.store, o.source, (b) => {
    const gone = b.holds.filter(matches);
    const episodes = gone.filter((h) => h.origin?.episode !== undefined);
    return {
      ...b,
      holds: b.holds.filter((h) => !matches(h)),
      // An episode still listed at the source is not held again once released.
      ...(episodes.length > 0
        ? {
            releasedEpisodes: [
              ...(b.releasedEpisodes ?? []),
              ...episodes.map((h) => ({ stream: h.stream, id: h.id })),
            ],
          }
        : {}),
    };
  });
  let removed = 0;
  for (const h of released) {
    for (const w of await heldWindowsIn(o.store, o.source, h.stream, h.from, h.to)) {
      // A copy another hold still covers stays.
      if (holdsOverlapping(after, h.stream, w.from, w.from + w.duration).length > 0) continue;
      await unholdWindow(o.store, w.key, h.legalHold);
      removed++;
    }
    await appendAudit(o.store, {
      action: "release",
      at: o.now,
      by: o.by,
      source: o.source,
      stream: h.stream,
      from: h.from,
      to: h.to,
      detail: { id: h.id, reason: h.reason, ...(h.origin ? { episode: h.origin.episode } : {}) },
    });
  }
  return { released, removed };
}

/** Whether holds put S3 legal holds: as the config asks and the bucket allows. */
async function legalHoldChoice(store: BackupStore, config: BackupConfig): Promise<boolean> {
  const asked = config.evidence.legalHold;
  if (asked === "off") return false;
  const has = await bucketHasObjectLock(store);
  if (!has && asked === "required") {
    throw new HoldError(
      `evidence.legalHold is "required" but bucket ${store.bucket} has no Object Lock, so no window can carry a legal hold: deploy the bucket with Object Lock (deployment.objectLock; it can only be set when the bucket is created), or set evidence.legalHold to "auto" to keep held windows by the held prefix alone`,
      true,
    );
  }
  return has;
}

function secondsOf(ranges: readonly TimeRange[]): number {
  return ranges.reduce((n, r) => n + r.to - r.from, 0);
}
