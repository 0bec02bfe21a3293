/**
 * The planner: per source, per stream, diff what the source recorded against what the backup holds
 * and queue the missing windows. Costs O(streams) S3 requests (one manifest read per stream, one
 * listing of pending completion records per source), never a listing of stored objects but for a
 * stream without a manifest that has a folder (known from one delimiter listing of the source).
 */

import {
  type BackupConfig,
  configWarnings,
  defaultStreamSettings,
  listedStreams,
  type SourceConfig,
  type StreamSettings,
} from "../config/config.ts";
import type { CopyMessage } from "../copier/copy-window.ts";
import { bandwidthAt } from "../domain/bandwidth-schedule.ts";
import { dueRanges } from "../domain/coverage.ts";
import { BackupError } from "../domain/errors.ts";
import { parseWindowKeyTail, streamPrefix, utcDate } from "../domain/keys.ts";
import {
  activeLeases,
  applyRecords,
  type CopyRecord,
  keepStored,
  type Lease,
  type Manifest,
  pruneBefore,
  storedBitrateBps,
  unverifiedClaims,
} from "../domain/manifest.ts";
import { encodeKeySegment } from "../domain/names.ts";
import {
  clipRanges,
  intersectRanges,
  normalizeRanges,
  type TimeRange,
  totalSeconds,
} from "../domain/ranges.ts";
import {
  ASSUMED_BITRATE_BPS,
  type CopyWindow,
  countWindows,
  cutWindows,
  cutWindowsNewestFirst,
  lowestCopyingMbps,
  missingRanges,
  windowLengthFor,
} from "../domain/windows.ts";
import type { CopyQueue } from "../queue/copy-queue.ts";
import { forEachLimited } from "../shared/for-each-limited.ts";
import type { Log } from "../shared/log.ts";
import type { DvrStream, FlussonicClient } from "../source/flussonic.ts";
import { type BackupStore, CONDITIONAL_ATTEMPTS, raceBackoff } from "../store/backup-store.ts";
import { FragmentIndexStore } from "../store/fragment-index-store.ts";

export interface PlannerDeps {
  config: BackupConfig;
  store: BackupStore;
  queue: CopyQueue;
  flussonic: (source: string) => FlussonicClient;
  /** Unix seconds. */
  now: () => number;
  /** The copier's timeout (Lambda: 900 s); windows are sized to finish well within it. */
  copyTimeoutSeconds: number;
  logger: Log;
  /** Streams planned at once per source (index requests in flight). */
  streamConcurrency?: number;
  /** Only these sources (a planner fanned out per source group). */
  onlySources?: readonly string[];
  /** Plan and report only: queue nothing, lease nothing, write nothing (`run --dry-run`). */
  dryRun?: boolean;
}

export interface StreamPlan {
  stream: string;
  /** Recorded seconds in the retention window (up to now). */
  recordedSeconds: number;
  /** Of those, the seconds old enough to copy (before the settle margin and the open window). */
  copyableSeconds: number;
  /** Of the copyable seconds, how many the backup holds. */
  backedUpSeconds: number;
  /** Newest second stored (exclusive end), 0 when nothing is. */
  head: number;
  windowSeconds: number;
  planned: number;
  /** Estimated bytes of the planned windows (bitrate x duration). */
  plannedBytes: number;
  /** Missing windows left for a later run (budget). */
  deferred: number;
}

export interface SourcePlan {
  source: string;
  paused: boolean;
  /** Why nothing was planned when not paused by config or operator (a no-copy schedule period). */
  pausedReason?: string;
  streams: StreamPlan[];
  planned: CopyMessage[];
  deferred: number;
  recordsCompacted: number;
  /** Estimated bytes of the planned windows (bitrate x duration). */
  plannedBytes: number;
  errors: { stream: string | undefined; message: string; kind: string }[];
}

export interface PlanReport {
  at: number;
  sources: SourcePlan[];
}

/** One planning run over every configured source. */
export async function planBackup(deps: PlannerDeps): Promise<PlanReport> {
  const at = deps.now();
  // Said on every run, not once: credentials in clear are a standing risk, not an event.
  for (const warning of configWarnings(deps.config)) deps.logger.warn(warning);
  const sources: SourcePlan[] = [];
  for (const source of deps.config.sources) {
    if (deps.onlySources && !deps.onlySources.includes(source.name)) continue;
    sources.push(await planSource(deps, source, at));
  }
  return { at, sources };
}

interface StreamState {
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
  missing: TimeRange[];
  horizon: number;
  plan: StreamPlan;
}

async function planSource(deps: PlannerDeps, source: SourceConfig, now: number): Promise<SourcePlan> {
  const report: SourcePlan = {
    source: source.name,
    paused: source.paused,
    streams: [],
    planned: [],
    deferred: 0,
    recordsCompacted: 0,
    plannedBytes: 0,
    errors: [],
  };
  const log = deps.logger;
  // Paused (maintenance, by config or by `flussonic-backup pause`): no request at all to the
  // source; finished copies are compacted on resume.
  const control = source.paused
    ? undefined
    : await deps.store.readControl(source.name).catch(() => undefined);
  if (source.paused || control) {
    report.paused = true;
    log.info("source paused: not planned", { source: source.name, reason: control?.reason ?? "config" });
    return report;
  }
  // A no-copy period of the bandwidth schedule: nothing is planned (the copiers would only defer
  // the messages again and again) and the source gets no request; the first run after the period
  // plans what it missed.
  if (bandwidthAt(source.bandwidthSchedule, source.maxBandwidthMbps, now, source.timeZone) === 0) {
    report.paused = true;
    report.pausedReason = "the bandwidth schedule allows no copying now";
    log.info("source in a no-copy period of its bandwidth schedule: not planned", { source: source.name });
    return report;
  }
  const client = deps.flussonic(source.name);
  const fail = (stream: string | undefined, error: unknown) => {
    const kind = error instanceof BackupError ? error.kind : "unexpected";
    const message = error instanceof Error ? error.message : String(error);
    report.errors.push({ stream, message, kind });
    log.warn("planning failed", { source: source.name, stream, kind, error: message });
  };

  let streams: { settings: StreamSettings; info: DvrStream | undefined }[];
  try {
    const listed = listedStreams(source);
    streams = listed
      ? listed.map((settings) => ({ settings, info: undefined }))
      : (await client.listDvrStreams()).map((info) => ({
          settings: defaultStreamSettings(source, info.name),
          info,
        }));
  } catch (error) {
    fail(undefined, error);
    return report;
  }

  let pending: Awaited<ReturnType<BackupStore["pendingRecords"]>>;
  try {
    pending = await deps.store.pendingRecords(source.name);
  } catch (error) {
    fail(undefined, error);
    return report;
  }
  for (const damaged of pending.damaged ?? []) fail(undefined, damaged);

  const copierBandwidthBps = (source.maxBandwidthMbps * 1_000_000) / source.maxConcurrentCopies;
  // Which streams have stored windows at all: one delimiter listing of the source's folder, made
  // only once a stream without a manifest turns up (a new backup: thousands of them), so that only
  // folders that exist are listed one by one. Undefined when the listing failed: each is listed.
  let folders: Promise<Set<string> | undefined> | undefined;
  const storedFolders = () =>
    (folders ??= deps.store
      .listFolders(`${deps.store.prefix}${encodeKeySegment(source.name)}/`)
      .catch(() => undefined));
  const states: StreamState[] = [];
  await forEachLimited(streams, deps.streamConcurrency ?? 16, async ({ settings, info }) => {
    try {
      states.push(
        await readStream(
          deps,
          source,
          client,
          settings,
          info,
          pending.byStream.get(settings.name) ?? [],
          now,
          storedFolders,
        ),
      );
    } catch (error) {
      fail(settings.name, error);
    }
  });
  states.sort((a, b) => (a.settings.name < b.settings.name ? -1 : a.settings.name > b.settings.name ? 1 : 0));

  // Budget: only queue what the source's copiers can start before the leases end, so that a big
  // backlog is fed run by run instead of expiring in the queue.
  const startDeadline = Math.max(60, deps.config.leaseSeconds - deps.copyTimeoutSeconds);
  const copySeconds = (s: StreamState, w: CopyWindow) =>
    Math.max(1, (w.duration * s.bitrateBps) / copierBandwidthBps);
  let budget = (source.maxConcurrentCopies * startDeadline) / 2;
  for (const s of states) {
    for (const l of activeLeases(s.manifest, now)) budget -= copySeconds(s, l);
  }

  const chosen = new Map<StreamState, CopyWindow[]>();
  const take = (s: StreamState, w: CopyWindow, demand = false): boolean => {
    if (source.paused || (budget <= 0 && !demand)) return false;
    budget -= copySeconds(s, w);
    const list = chosen.get(s) ?? [];
    list.push(w);
    chosen.set(s, list);
    return true;
  };
  // First the live edge of every stream (newest windows after what is stored, at most an hour):
  // that is the demand, planned whatever the budget says, so that no stream (late in name order,
  // or after an estimate too high) falls behind the source's own retention. Then back-fill oldest
  // first within the budget, round-robin across streams, so that nothing waits behind one long
  // history.
  const backfill: { s: StreamState; windows: Generator<CopyWindow> }[] = [];
  for (const s of states) {
    const edgeFrom = Math.max(s.manifest.head, s.horizon - 3600);
    const edge = s.missing
      .filter((r) => r.to > edgeFrom)
      .map((r) => ({ from: Math.max(r.from, edgeFrom), to: r.to }));
    for (const w of cutWindowsNewestFirst(edge, s.windowSeconds, s.horizon)) {
      if (!take(s, w, true)) break;
    }
    const older = s.missing
      .filter((r) => r.from < edgeFrom)
      .map((r) => ({ from: r.from, to: Math.min(r.to, edgeFrom) }));
    backfill.push({ s, windows: cutWindows(older, s.windowSeconds, s.horizon) });
  }
  let active = backfill;
  while (active.length > 0 && budget > 0 && !source.paused) {
    const next: typeof active = [];
    for (const b of active) {
      const w = b.windows.next();
      if (w.done) continue;
      take(b.s, w.value);
      next.push(b);
    }
    active = next;
  }
  for (const s of states) {
    s.plan.deferred = countWindows(s.missing, s.windowSeconds, s.horizon) - (chosen.get(s)?.length ?? 0);
  }

  // Queue, then lease what was queued (a crash in between only causes a duplicate, which the
  // idempotent copier absorbs).
  const messages: { s: StreamState; m: CopyMessage }[] = [];
  const leaseUntil = now + deps.config.leaseSeconds;
  for (const [s, windows] of chosen) {
    for (const w of windows) {
      messages.push({
        s,
        m: {
          v: 1,
          source: source.name,
          stream: s.settings.name,
          from: w.from,
          duration: w.duration,
          format: s.settings.format,
          leaseUntil,
        },
      });
    }
  }
  const sent = deps.dryRun
    ? { sent: messages.map((x) => x.m), failed: [] }
    : await deps.queue.send(
        source.name,
        messages.map((x) => x.m),
      );
  for (const f of sent.failed)
    fail(f.message.stream, new Error(`could not queue window ${f.message.from}: ${f.reason}`));
  const sentSet = new Set(sent.sent);
  for (const { s, m } of messages) {
    if (!sentSet.has(m)) continue;
    s.manifest = {
      ...s.manifest,
      leases: [...s.manifest.leases, { from: m.from, duration: m.duration, until: leaseUntil }],
    };
    s.changed = true;
    s.plan.planned++;
    s.plan.plannedBytes += Math.round((m.duration * s.bitrateBps) / 8);
    report.planned.push(m);
    report.plannedBytes += Math.round((m.duration * s.bitrateBps) / 8);
  }

  const compacted: string[] = [];
  await forEachLimited(deps.dryRun ? [] : states, deps.streamConcurrency ?? 16, async (s) => {
    try {
      if (s.records.length > 0) await writeCatalogs(deps.store, source.name, s.settings.name, s.records);
      if (s.changed) {
        const m = {
          ...s.manifest,
          covered: unpackRanges(s.covered),
          leases: activeLeases(s.manifest, now),
          updatedAt: now,
        };
        const leased = m.leases.filter((l) => l.until === leaseUntil);
        if (!(await writeManifestMerging(deps.store, m, s.etag, s.records, leased, now))) {
          log.warn("manifest changed meanwhile; this stream is re-planned next run", {
            source: source.name,
            stream: s.settings.name,
          });
          return;
        }
      }
      for (const r of s.records) compacted.push(deps.store.recordKeyOf(r));
    } catch (error) {
      fail(s.settings.name, error);
    }
  });
  // Records of streams not planned this run (gone at the source, out of the config, or failed
  // before planning) are folded into their manifests and catalogs all the same: nothing copied
  // stays pending for good.
  const plannedNames = new Set(states.map((s) => s.settings.name));
  const unplanned = deps.dryRun ? [] : [...pending.byStream].filter(([name]) => !plannedNames.has(name));
  await forEachLimited(unplanned, deps.streamConcurrency ?? 16, async ([stream, records]) => {
    try {
      compacted.push(...(await compactRecords(deps.store, source.name, stream, records, now)));
    } catch (error) {
      fail(stream, error);
    }
  });
  try {
    await deps.store.deleteKeys(compacted);
    report.recordsCompacted = compacted.length;
  } catch (error) {
    fail(undefined, error);
  }

  report.streams = states.map((s) => s.plan);
  report.deferred = states.reduce((n, s) => n + s.plan.deferred, 0);
  log.info("planned", {
    source: source.name,
    streams: states.length,
    planned: report.planned.length,
    deferred: report.deferred,
    recordsCompacted: report.recordsCompacted,
    errors: report.errors.length,
  });
  return report;
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
    copierBandwidthBps: (mbps * 1_000_000) / source.maxConcurrentCopies,
    copyBudgetSeconds: copyTimeoutSeconds / 3,
    ...(reads ? { reads } : {}),
  });
}

async function readStream(
  deps: PlannerDeps,
  source: SourceConfig,
  client: FlussonicClient,
  settings: StreamSettings,
  info: DvrStream | undefined,
  records: CopyRecord[],
  now: number,
  storedFolders: () => Promise<Set<string> | undefined>,
): Promise<StreamState> {
  const stored = await deps.store.readManifest(source.name, settings.name);
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
  const changed = manifest !== stored.manifest;

  let bitrateBps = info?.bitrateBps ?? storedBitrateBps(manifest);
  if (bitrateBps === undefined && !info) bitrateBps = (await client.dvrStream(settings.name)).bitrateBps;
  bitrateBps ??= ASSUMED_BITRATE_BPS;

  const recorded = await client.recordedRanges(settings.name, { from: retentionStart, to: now });
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
    },
  };
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

function unpackRanges(packed: Float64Array): TimeRange[] {
  const ranges: TimeRange[] = [];
  for (let i = 0; i < packed.length; i += 2) ranges.push({ from: packed[i]!, to: packed[i + 1]! });
  return ranges;
}

/** Folds a stream's completion records into its manifest and catalogs; the record keys to delete. */
async function compactRecords(
  store: BackupStore,
  source: string,
  stream: string,
  records: CopyRecord[],
  now: number,
): Promise<string[]> {
  const stored = await store.readManifest(source, stream);
  const manifest = applyRecords(stored.manifest, records, now);
  await writeCatalogs(store, source, stream, records);
  const m = { ...manifest, leases: activeLeases(manifest, now), updatedAt: now };
  if (!(await writeManifestMerging(store, m, stored.etag, records, [], now))) return [];
  return records.map((r) => store.recordKeyOf(r));
}

/**
 * Writes a stream's manifest, conditionally (If-Match the ETag it was read with). When another
 * planner wrote it meanwhile (a scheduled event delivered twice, `run --once` beside the service,
 * two services on one bucket), its manifest is read again, this run's completion records and new
 * leases are folded into it, and the write is tried again: neither planner's coverage nor leases
 * are lost. False after CONDITIONAL_ATTEMPTS lost races (the records stay pending for the next run).
 */
async function writeManifestMerging(
  store: BackupStore,
  m: Manifest,
  etag: string | undefined,
  records: readonly CopyRecord[],
  leased: readonly Lease[],
  now: number,
): Promise<boolean> {
  let next = m;
  let tag = etag;
  for (let attempt = 1; ; attempt++) {
    if (await store.writeManifest(next, tag)) return true;
    if (attempt >= CONDITIONAL_ATTEMPTS) return false;
    await raceBackoff(attempt);
    const fresh = await store.readManifest(m.source, m.stream);
    const merged = applyRecords(fresh.manifest, records, now);
    const held = new Set(merged.leases.map((l) => `${l.from}-${l.duration}-${l.until}`));
    next = {
      ...merged,
      leases: [
        ...activeLeases(merged, now),
        ...leased.filter((l) => !held.has(`${l.from}-${l.duration}-${l.until}`)),
      ],
      updatedAt: now,
    };
    tag = fresh.etag;
  }
}

/**
 * A missing manifest with the coverage and totals of the windows stored in the stream's folder (the
 * same object when there are none). The catalogs are left to `flussonic-backup rebuild`.
 */
async function adoptStoredWindows(
  deps: PlannerDeps,
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

/**
 * Adds records to their per-day catalogs (idempotent: keyed by window start and duration, so that
 * windows of different lengths from the same start, e.g. {0,600} next to {0,300} and {300,300}
 * after a lost lease and a new window length, are all listed; restore picks a cover without overlap).
 */
async function writeCatalogs(
  store: BackupStore,
  source: string,
  stream: string,
  records: CopyRecord[],
): Promise<void> {
  const byDay = new Map<string, CopyRecord[]>();
  for (const r of records) {
    const day = utcDate(r.from);
    byDay.set(day, [...(byDay.get(day) ?? []), r]);
  }
  for (const [day, list] of byDay) {
    // Conditional on the catalog read, and merged again into the current one when another planner
    // wrote it meanwhile: its entries are kept (backup-store.ts updateCatalog).
    await store.updateCatalog(source, stream, day, (catalog) => {
      const byWindow = new Map(catalog.windows.map((w) => [`${w.from}-${w.duration}`, w]));
      for (const r of list) {
        byWindow.set(`${r.from}-${r.duration}`, {
          from: r.from,
          duration: r.duration,
          format: r.format,
          key: r.key,
          size: r.size,
          sha256: r.sha256,
          copiedAt: r.copiedAt,
          ...(r.etag ? { etag: r.etag } : {}),
          ...(r.versionId ? { versionId: r.versionId } : {}),
        });
      }
      return {
        ...catalog,
        windows: [...byWindow.values()].sort((a, b) => a.from - b.from || a.duration - b.duration),
      };
    });
  }
  // The records' fragment indexes go to the per-day index objects beside the catalogs.
  await new FragmentIndexStore(store).compactRecords(source, stream, records);
}
