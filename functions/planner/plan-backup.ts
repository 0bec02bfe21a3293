/**
 * The planner: per source, per stream, diff what the source recorded against what the backup holds
 * and queue the missing windows. Costs O(streams) S3 requests (one manifest read per stream, fewer
 * in a long-lived process: read-streams.ts listManifests; one listing of pending completion records
 * per source), never a listing of stored objects but for a
 * stream without a manifest that has a folder (known from one delimiter listing of the source).
 *
 * A run, per source: reading (read-streams.ts), choosing (choose-windows.ts), leasing
 * (lease-windows.ts), compacting (compact-records.ts).
 */

import {
  type BackupConfig,
  configWarnings,
  defaultStreamSettings,
  LEASE_START_MARGIN_SECONDS,
  listedStreams,
  type SourceConfig,
  type StreamSettings,
} from "../config/config.ts";
import { bandwidthAt } from "../domain/bandwidth-schedule.ts";
import { marginWarningAt } from "../domain/deadlines.ts";
import { BackupError } from "../domain/errors.ts";
import type { CopyRecord } from "../domain/manifest.ts";
import { encodeKeySegment } from "../domain/names.ts";
import type { CopyQueue } from "../queue/copy-queue.ts";
import { forEachLimited } from "../shared/for-each-limited.ts";
import type { Log } from "../shared/log.ts";
import { countRequests, RequestTally } from "../shared/request-scope.ts";
import type { ArchiveSource, DvrStream } from "../source/flussonic.ts";
import type { BackupStore } from "../store/backup-store.ts";
import type { Signer } from "../store/signing.ts";
import { signingKeyConfigured } from "../store/signing-key.ts";
import { chooseWindows } from "./choose-windows.ts";
import { compactUnplanned, writeCatalogs } from "./compact-records.ts";
import { proveDays } from "./day-proofs.ts";
import { holdEpisodes } from "./episode-holds.ts";
import { leaseAndQueue } from "./lease-windows.ts";
import type { PlanReport, SourcePlan } from "./plan-report.ts";
import {
  listManifests,
  MANIFEST_LISTING_MIN_STREAMS,
  readStream,
  type StreamState,
  saveManifestSnapshot,
} from "./read-streams.ts";

export type { PlanReport, SourcePlan, StreamPlan } from "./plan-report.ts";
export { streamWindowSeconds } from "./read-streams.ts";

export interface PlannerDeps {
  config: BackupConfig;
  store: BackupStore;
  queue: CopyQueue;
  flussonic: (source: string) => ArchiveSource;
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
  /** A source's manifests are listed from this many streams (default MANIFEST_LISTING_MIN_STREAMS). */
  manifestListingMinStreams?: number;
  /**
   * The copies of a source share one throttle of its whole cap (the local runtime): windows are
   * never held in the queue for another's share of the cap (domain/cap-share.ts), which only the
   * Lambda copiers, a throttle each, need. The shares are still written (what AWS would do).
   */
  copiesShareOneThrottle?: boolean;
  /**
   * The key day proofs are signed with (asked once a proof is due); default: the configured one
   * (evidence.kmsKey, the stack's KMS key, or the PEM in evidence.signingKeyEnv), none: no proofs.
   */
  proofSigner?: () => Promise<Signer | undefined>;
}

/** One planning run over every configured source. */
export async function planBackup(deps: PlannerDeps): Promise<PlanReport> {
  const at = deps.now();
  // Said on every run, not once: credentials in clear are a standing risk, not an event.
  for (const warning of configWarnings(deps.config)) deps.logger.warn(warning);
  const sources: SourcePlan[] = [];
  let signer: Promise<Signer | undefined> | undefined;
  const proofSigner = () =>
    (signer ??= (
      deps.proofSigner ??
      (async () => (await import("../store/signing.ts")).configuredSigner(deps.config.evidence, process.env))
    )());
  try {
    for (const source of deps.config.sources) {
      if (deps.onlySources && !deps.onlySources.includes(source.name)) continue;
      // The run's S3 and SQS requests, counted for `cost` and kept with the next catalog written
      // (a source paused by its config makes none, and its run is not counted).
      const counted = !deps.dryRun && !source.paused;
      const tally = counted
        ? (deps.store.plannerTallies.get(source.name) ?? new RequestTally())
        : new RequestTally();
      if (counted) {
        deps.store.plannerTallies.set(source.name, tally);
        tally.add("run");
      }
      sources.push(await countRequests(tally, () => planSource(deps, source, at, proofSigner)));
    }
  } finally {
    if (signer) (await signer.catch(() => undefined))?.close?.();
  }
  return { at, sources };
}

async function planSource(
  deps: PlannerDeps,
  source: SourceConfig,
  now: number,
  proofSigner: () => Promise<Signer | undefined>,
): Promise<SourcePlan> {
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
    // A Central source: servers listed whose streams could not be (their backups are not retired).
    if (!listed) for (const gap of client.listingGaps?.() ?? []) fail(undefined, gap.error);
  } catch (error) {
    fail(undefined, error);
    return report;
  }

  // The keys of the pending completion records only: each stream's records are read with the
  // stream, folded into its catalogs at once and kept without their fragment indexes, so that the
  // run never holds every record of the source (a fleet's memory does not grow with its windows).
  let pending: Map<string, string[]>;
  try {
    pending = await deps.store.pendingRecordKeys(source.name);
  } catch (error) {
    fail(undefined, error);
    return report;
  }

  // Which streams have stored windows at all: one delimiter listing of the source's folder, made
  // only once a stream without a manifest turns up (a new backup: thousands of them), so that only
  // folders that exist are listed one by one. Undefined when the listing failed: each is listed.
  let folders: Promise<Set<string> | undefined> | undefined;
  const storedFolders = () =>
    (folders ??= deps.store
      .listFolders(`${deps.store.prefix}${encodeKeySegment(source.name)}/`)
      .catch(() => undefined));
  // A listing (billed as a PUT) pays only when it saves enough GETs: a few streams' manifests are
  // read one by one, each with the ETag held (a 304 when unchanged).
  const listing =
    streams.length >= (deps.manifestListingMinStreams ?? MANIFEST_LISTING_MIN_STREAMS)
      ? await listManifests(deps, source.name)
      : undefined;
  const states: StreamState[] = [];
  await forEachLimited(streams, deps.streamConcurrency ?? 16, async ({ settings, info }) => {
    try {
      const read = await deps.store.readRecords(settings.name, pending.get(settings.name) ?? []);
      for (const damaged of read.damaged) fail(undefined, damaged);
      const state = await readStream(
        deps,
        source,
        client,
        settings,
        info,
        read.records,
        now,
        storedFolders,
        listing,
      );
      // Catalogs (and fragment indexes) before the manifest, as always: the lease write folds the
      // records into the manifest later in this run, from what is kept of them here.
      if (!deps.dryRun && read.records.length > 0) {
        await writeCatalogs(deps.store, source.name, settings.name, read.records);
      }
      state.records = read.records.map(withoutIndex);
      states.push(state);
    } catch (error) {
      fail(settings.name, error);
    }
  });
  states.sort((a, b) => (a.settings.name < b.settings.name ? -1 : a.settings.name > b.settings.name ? 1 : 0));

  const chosen = chooseWindows(deps, source, states, now);
  const leaseUntil = now + deps.config.leaseSeconds;
  // The share of the cap (domain/cap-share.ts): a stream not read (or a listing with gaps, a damaged
  // record: any error so far) may hide windows in flight.
  const share = {
    allStreamsRead: states.length === streams.length && report.errors.length === 0,
    holdForSpans: !deps.copiesShareOneThrottle,
    leaseSlackSeconds: deps.config.leaseSeconds - deps.copyTimeoutSeconds - LEASE_START_MARGIN_SECONDS,
  };
  const compacted = await leaseAndQueue(deps, source, states, chosen, leaseUntil, now, report, fail, share);
  if (!deps.dryRun) {
    const planned = new Set(states.map((s) => s.settings.name));
    const concurrency = deps.streamConcurrency ?? 16;
    compacted.push(
      ...(await compactUnplanned(deps.store, source.name, planned, pending, now, concurrency, fail)),
    );
    try {
      await deps.store.deleteKeys(compacted);
      report.recordsCompacted = compacted.length;
    } catch (error) {
      fail(undefined, error);
    }
    await saveManifestSnapshot(deps, source.name, now);
  }

  if (!deps.dryRun && source.episodes) {
    const names = streams.map((s) => s.settings.name);
    const episodes = await holdEpisodes(deps, source, client, names, now);
    if (episodes) report.episodes = episodes;
  }

  if (!deps.dryRun && (deps.proofSigner || signingKeyConfigured(deps.config.evidence, process.env))) {
    const proven = states.map((s) => ({
      stream: s.settings.name,
      missing: s.missing,
      keepFrom: now - s.settings.retentionDays * 86400,
    }));
    const written = await proveDays({ ...deps, signer: proofSigner }, source, client, proven, now);
    if (written.length > 0) report.proofs = written;
  }

  report.streams = states.map((s) => s.plan);
  // The race with the source's retention, said in the run's output before anything is lost.
  for (const s of states) {
    const margin = s.plan.marginSeconds;
    const warnAt = marginWarningAt(deps.config.marginWarningSeconds, s.plan.sourceDepthSeconds);
    if (margin !== undefined && margin < warnAt) {
      const atRisk = (s.plan.atRisk ?? []).reduce((n, r) => n + (r.to - r.from), 0);
      // A first backup always starts in the race (the source's oldest seconds are about to go): it
      // is said once as what happens, not as a warning, unless seconds will be lost anyway.
      if (s.manifest.windows === 0 && atRisk === 0) {
        log.info("first backup: the oldest seconds are copied first, before the source deletes them", {
          source: source.name,
          stream: s.settings.name,
          marginSeconds: margin,
        });
        continue;
      }
      log.warn("margin below the warning threshold: the source deletes what the backup lacks soon", {
        source: source.name,
        stream: s.settings.name,
        marginSeconds: margin,
        thresholdSeconds: warnAt,
        secondsAtRisk: atRisk,
        ...(atRisk > 0 ? { firstLostAt: s.plan.atRisk![0]!.lostAt } : {}),
      });
    }
  }
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
 * A record as the lease write still needs it (applyRecords, when a manifest write is merged again):
 * its fragment index, the bulk of it and already in the index objects, is dropped.
 */
function withoutIndex(r: CopyRecord): CopyRecord {
  if (r.index === undefined) return r;
  const { index: _, ...rest } = r;
  return rest;
}
