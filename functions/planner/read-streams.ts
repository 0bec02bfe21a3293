/**
 * Reading, the planner's first step: per stream, its manifest (with the completion records folded
 * in and the coverage clipped at the retention) and the source's recorded ranges, and from both the
 * ranges the backup still lacks. A stream without a manifest adopts the windows stored in its folder.
 */

import type { BackupConfig, SourceConfig, StreamSettings } from "../config/config.ts";
import { copyBandwidthBps } from "../config/config.ts";
import { dueRanges } from "../domain/coverage.ts";
import { marginSeconds, type SourceDepth, sourceDepth } from "../domain/deadlines.ts";
import { parseWindowKeyTail, streamPrefix } from "../domain/keys.ts";
import { noteSourceArchive } from "../domain/lost-at-source.ts";
import {
  activeLeases,
  applyRecords,
  type CopyRecord,
  keepStored,
  type Manifest,
  pruneBefore,
  storedBitrateBps,
  unverifiedClaims,
} from "../domain/manifest.ts";
import { LIST_PRICES } from "../domain/prices.ts";
import {
  clipRanges,
  intersectRanges,
  normalizeRanges,
  subtractRanges,
  type TimeRange,
  totalSeconds,
} from "../domain/ranges.ts";
import { ASSUMED_BITRATE_BPS, lowestCopyingMbps, missingRanges, windowLengthFor } from "../domain/windows.ts";
import type { Log } from "../shared/log.ts";
import type { ArchiveSource, DvrStream } from "../source/flussonic.ts";
import type { BackupStore } from "../store/backup-store.ts";
import type { ManifestListing } from "../store/manifest-cache.ts";
import { DamagedSnapshotError } from "../store/manifest-snapshot.ts";
import type { StreamPlan } from "./plan-report.ts";

/** What reading needs of the planner's dependencies. */
export interface ReadDeps {
  config: BackupConfig;
  store: BackupStore;
  copyTimeoutSeconds: number;
  logger: Log;
}

/** One stream as read: held from the read to the write of every stream of the source. */
export interface StreamState {
  settings: StreamSettings;
  /** The manifest without its covered ranges (`covered` holds them until it is written). */
  manifest: Omit<Manifest, "covered">;
  /**
   * The manifest's covered ranges, packed (from, to pairs): held from the read to the write of
   * every stream of the source, as objects they were most of the planner's live heap, which every
   * major GC traced (10,000 streams x 150 ranges); a typed array is not traced.
   */
  covered: Float64Array;
  etag: string | undefined;
  records: CopyRecord[];
  changed: boolean;
  bitrateBps: number;
  windowSeconds: number;
  /** Recorded seconds not stored, leased or not leased (due ones only). */
  missing: TimeRange[];
  horizon: number;
  /** The source's depth the deadlines of this stream's seconds are computed from. */
  depth: SourceDepth;
  plan: StreamPlan;
}

/**
 * The window length of a stream: one window, at the copier's share of the lowest cap the source's
 * bandwidth schedule may impose during the copy, takes at most a third of the copier's timeout; and,
 * unless the source is known to answer Range (`reads`), one window is a short enough burst for the
 * cap (windowLengthFor). `status` sizes windows the same way.
 */
export function streamWindowSeconds(
  config: BackupConfig,
  source: SourceConfig,
  bitrateBps: number | undefined,
  copyTimeoutSeconds: number,
  reads?: Manifest["reads"],
): number {
  const mbps = lowestCopyingMbps(source.bandwidthSchedule, source.maxBandwidthMbps);
  return windowLengthFor({
    maxWindowSeconds: config.maxWindowSeconds,
    minWindowSeconds: config.minWindowSeconds,
    bitrateBps,
    copierBandwidthBps: copyBandwidthBps(source, mbps),
    copyBudgetSeconds: copyTimeoutSeconds / 3,
    ...(reads ? { reads } : {}),
  });
}

export async function readStream(
  deps: ReadDeps,
  source: SourceConfig,
  client: ArchiveSource,
  settings: StreamSettings,
  info: DvrStream | undefined,
  records: CopyRecord[],
  now: number,
  storedFolders: () => Promise<Set<string> | undefined>,
  listing?: ManifestListing,
): Promise<StreamState> {
  const stored = await deps.store.readManifest(source.name, settings.name, listing);
  const retentionStart = Math.floor(now - settings.retentionDays * 86400);
  const horizon = now - deps.config.settleSeconds;
  // No manifest (a new stream, or its manifest deleted): the stored windows are the truth, so that
  // none is planned and copied again. One listing of the stream's folder, only while there is none
  // and only when the source's folder listing shows the stream has one.
  const base =
    stored.etag === undefined
      ? await adoptStoredWindows(deps, source.name, settings.name, stored.manifest, storedFolders)
      : stored.manifest;
  let manifest = applyRecords(base, records, now);
  const unverified = unverifiedClaims(manifest, retentionStart, now);
  if (unverified.length > 0) {
    manifest = keepStored(
      manifest,
      unverified,
      await storedWindowRanges(deps.store, source.name, settings.name),
    );
  }
  manifest = pruneBefore(manifest, retentionStart);

  let facts: DvrStream | undefined = info;
  let bitrateBps = info?.bitrateBps ?? storedBitrateBps(manifest);
  if (bitrateBps === undefined && !info) {
    facts = await client.dvrStream(settings.name);
    bitrateBps = facts.bitrateBps;
  }
  bitrateBps ??= ASSUMED_BITRATE_BPS;

  const recorded = await client.recordedRanges(settings.name, { from: retentionStart, to: now });
  // The archive depth: the API's expiration (or the retention), unless the oldest second moves
  // faster (domain/deadlines.ts says which is trusted). The oldest second from the stream list, or
  // the first recorded one when it is newer than the retention start (else the span clipped it).
  const first = recorded[0]?.from;
  const oldest = facts?.oldest ?? (first !== undefined && first > retentionStart ? first : undefined);
  const depth = sourceDepth({
    expirationSeconds: facts?.expirationSeconds,
    oldest,
    previousOldest: manifest.sourceOldest,
    retentionSeconds: settings.retentionDays * 86400,
    now,
  });
  const lacking = subtractRanges(clipRanges(recorded, retentionStart, horizon), manifest.covered);
  const noted = noteSourceArchive(manifest, { oldest, lacking, liveFrom: horizon - 3600, retentionStart });
  if (noted.lost.length > 0) {
    deps.logger.warn("lost at the source before backup", {
      source: source.name,
      stream: settings.name,
      seconds: totalSeconds(noted.lost),
      from: noted.lost[0]!.from,
      to: noted.lost.at(-1)!.to,
    });
  }
  manifest = noted.manifest;
  const changed = manifest !== stored.manifest;
  const missing = missingRanges({
    recorded,
    covered: manifest.covered,
    leased: activeLeases(manifest, now),
    retentionStart,
    horizon,
  });
  const windowSeconds = streamWindowSeconds(
    deps.config,
    source,
    bitrateBps,
    deps.copyTimeoutSeconds,
    manifest.reads,
  );
  const copyable = dueRanges(recorded, retentionStart, horizon, windowSeconds);
  return {
    settings,
    manifest: withoutCovered(manifest),
    covered: packRanges(manifest.covered),
    etag: stored.etag,
    records,
    changed,
    bitrateBps,
    windowSeconds,
    missing,
    horizon,
    depth,
    plan: {
      stream: settings.name,
      recordedSeconds: totalSeconds(clipRanges(recorded, retentionStart, now)),
      copyableSeconds: totalSeconds(copyable),
      backedUpSeconds: totalSeconds(intersectRanges(manifest.covered, copyable)),
      head: manifest.head,
      windowSeconds,
      planned: 0,
      plannedBytes: 0,
      deferred: 0,
      ...(marginOf(lacking, depth, now) ?? {}),
      sourceDepthSeconds: depth.seconds,
      depthBasis: depth.basis,
      atRisk: [],
      lostAtSourceSeconds: manifest.lostAtSource?.seconds ?? 0,
      lostThisRun: totalSeconds(noted.lost),
    },
  };
}

/**
 * A source's manifests are listed (listManifests) only from this many streams: at list prices a LIST
 * costs what 12.5 GETs cost (functions/domain/prices.ts), and without it each manifest is read with
 * the ETag this process holds (a 304, one GET, when unchanged). One stream: a LIST saved every run.
 */
export const MANIFEST_LISTING_MIN_STREAMS = Math.ceil(LIST_PRICES.putPer1000 / LIST_PRICES.getPer1000);

/**
 * The source's manifests with their ETags, one listing (10 requests for 10,000 streams) before they
 * are read: a manifest this process holds and the listing shows unchanged is not read again, one not
 * listed is not asked for (store/manifest-cache.ts). A process that holds few of them (a new one: a
 * cold Lambda container, `run --once`) takes them from the source's snapshot instead, one GET, each
 * only while the listing shows the ETag it has there (store/manifest-snapshot.ts). A failed listing
 * costs nothing but the requests it saves: each manifest is then read as without it; a snapshot
 * missing, damaged or failing the same: each manifest it would have given is read.
 */
export async function listManifests(deps: ReadDeps, source: string): Promise<ManifestListing | undefined> {
  let listing: ManifestListing;
  try {
    listing = await deps.store.listManifests(source);
  } catch (error) {
    deps.logger.debug("manifests not listed: each is read", { source, error: messageOf(error) });
    return undefined;
  }
  try {
    const held = await deps.store.loadManifestSnapshot(source, listing);
    if (held > 0)
      deps.logger.debug("manifests taken from the source's snapshot", { source, manifests: held });
  } catch (error) {
    // Damaged: said, since nothing but a bug or a hand makes one; the run writes a new one.
    const said = { source, error: messageOf(error) };
    if (error instanceof DamagedSnapshotError)
      deps.logger.warn("manifest snapshot damaged, not used: each manifest is read", said);
    else deps.logger.debug("manifest snapshot not used: each manifest is read", said);
  }
  return listing;
}

/**
 * After a run that wrote any of the source's manifests: their snapshot, for the next new process
 * (one PutObject). A failure costs the next new process its GETs, nothing else: said at debug.
 */
export async function saveManifestSnapshot(deps: ReadDeps, source: string, now: number): Promise<void> {
  try {
    await deps.store.writeManifestSnapshot(source, now);
  } catch (error) {
    deps.logger.debug("manifest snapshot not written", { source, error: messageOf(error) });
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function marginOf(lacking: TimeRange[], depth: SourceDepth, now: number) {
  const margin = marginSeconds(lacking, depth, now);
  return margin === undefined ? undefined : { marginSeconds: margin };
}

function withoutCovered(m: Manifest): Omit<Manifest, "covered"> {
  const { covered: _, ...rest } = m;
  return rest;
}

function packRanges(ranges: readonly TimeRange[]): Float64Array {
  const packed = new Float64Array(ranges.length * 2);
  for (let i = 0; i < ranges.length; i++) {
    packed[2 * i] = ranges[i]!.from;
    packed[2 * i + 1] = ranges[i]!.to;
  }
  return packed;
}

export function unpackRanges(packed: Float64Array): TimeRange[] {
  const ranges: TimeRange[] = [];
  for (let i = 0; i < packed.length; i += 2) ranges.push({ from: packed[i]!, to: packed[i + 1]! });
  return ranges;
}

/**
 * A missing manifest with the coverage and totals of the windows stored in the stream's folder (the
 * same object when there are none). The catalogs are left to `flussonic-backup rebuild`.
 */
async function adoptStoredWindows(
  deps: ReadDeps,
  source: string,
  stream: string,
  empty: Manifest,
  storedFolders: () => Promise<Set<string> | undefined>,
): Promise<Manifest> {
  const folder = streamPrefix(deps.store.prefix, source, stream);
  // No folder for the stream in the source's listing: nothing stored, nothing to list.
  if ((await storedFolders())?.has(folder) === false) return empty;
  const windows: { from: number; to: number; size: number }[] = [];
  for await (const o of deps.store.listObjects(folder)) {
    const w = parseWindowKeyTail(o.key.slice(folder.length));
    if (w) windows.push({ from: w.from, to: w.from + w.duration, size: o.size });
  }
  if (windows.length === 0) return empty;
  const bytes = windows.reduce((n, w) => n + w.size, 0);
  deps.logger.warn("manifest missing: coverage taken from the stored windows", {
    source,
    stream,
    windows: windows.length,
    hint: `run \`flussonic-backup rebuild --source ${source} --stream ${stream}\` if its catalogs are gone too`,
  });
  return {
    ...empty,
    covered: normalizeRanges(windows),
    windows: windows.length,
    bytes,
    head: Math.max(...windows.map((w) => w.to)),
  };
}

/**
 * The windows stored for a stream, from a listing of its folder (once per stream, for a manifest
 * written by an older version: see unverifiedClaims).
 */
async function storedWindowRanges(store: BackupStore, source: string, stream: string): Promise<TimeRange[]> {
  const folder = streamPrefix(store.prefix, source, stream);
  const out: TimeRange[] = [];
  for await (const o of store.listObjects(folder)) {
    const w = parseWindowKeyTail(o.key.slice(folder.length));
    if (w) out.push({ from: w.from, to: w.from + w.duration });
  }
  return normalizeRanges(out);
}
