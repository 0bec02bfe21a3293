/**
 * `status`: per source and stream, the archive (asked from the source) against the backup (the
 * manifest's covered ranges plus pending completion records), and the copy queues' depth.
 * Costs what a planner run costs, plus one listing of the manifests folder and the queue attributes.
 */
import { GetQueueUrlCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { type BackupConfig, listedStreams, type SourceConfig } from "../functions/config/config.ts";
import { type Coverage, coverage } from "../functions/domain/coverage.ts";
import { type DepthBasis, marginSeconds, sourceDepth } from "../functions/domain/deadlines.ts";
import { manifestKey } from "../functions/domain/keys.ts";
import { activeLeases, applyRecords, emptyManifest, storedBitrateBps } from "../functions/domain/manifest.ts";
import { decodeKeySegment } from "../functions/domain/names.ts";
import { clipRanges, normalizeRanges, subtractRanges, type TimeRange } from "../functions/domain/ranges.ts";
import { streamWindowSeconds } from "../functions/planner/plan-backup.ts";
import { queueDepth, queueName } from "../functions/queue/source-queues.ts";
import type { DvrDepth } from "../functions/source/dvr-depth.ts";
import type { ArchiveSource } from "../functions/source/flussonic.ts";
import { type BackupStore, DamagedObjectError } from "../functions/store/backup-store.ts";

export interface StreamStatus {
  stream: string;
  format: string;
  retentionStart: number;
  windowSeconds: number;
  /** Recorded ranges in the retention window; undefined when the source could not be asked. */
  archive: TimeRange[] | undefined;
  /** Stored ranges in the retention window. */
  backedUp: TimeRange[];
  coverage: Coverage;
  /** Recorded copies (the manifest's totals, including windows retention has pruned since). */
  windows: number;
  bytes: number;
  /** Windows planned and not recorded yet (active leases). */
  leased: number;
  /** Completion records not yet compacted into the manifest. */
  pendingRecords: number;
  /**
   * Seconds left until the source deletes the oldest second the backup lacks (the margin); absent
   * when it lacks nothing or the archive is unknown.
   */
  marginSeconds?: number;
  /** The source's archive depth the margin is computed from, and where that figure comes from. */
  sourceDepthSeconds?: number;
  depthBasis?: DepthBasis;
  /** Seconds the source deleted before they were copied ("lost at the source before backup"), for good. */
  lostAtSourceSeconds: number;
  /**
   * Why the source could not say what this stream recorded (e.g. "HTTP 404, unknown to the
   * source": renamed or deleted there); the planner fails on the stream for the same reason.
   */
  error?: string;
  /**
   * A stream the backup holds but nobody plans any more: the source no longer lists it (deleted or
   * renamed there) or the config no longer lists it. Its copies stay until retention expires them.
   */
  retired?: {
    reason: "gone at the source" | "not in the config";
    /** End of the newest stored window (unix seconds; 0: nothing stored): it went after that. */
    lastStoredSecond: number;
  };
}

export interface QueueStatus {
  /** Waiting and delayed (retry back-off) messages. */
  queued: number;
  inFlight: number;
  deadLettered: number;
}

export interface SourceStatus {
  source: string;
  paused: boolean;
  /** Why, when the operator paused it (`flussonic-backup pause`). */
  pausedReason?: string;
  queue: QueueStatus | undefined;
  streams: StreamStatus[];
  /** Why part of the picture is missing (source unreachable, queue absent...). */
  errors: string[];
}

export interface BackupStatus {
  at: number;
  /** A margin below this is a warning (config marginWarningSeconds). */
  marginWarningSeconds: number;
  bucket: string;
  prefix: string;
  settleSeconds: number;
  sources: SourceStatus[];
}

export interface StatusDeps {
  config: BackupConfig;
  store: BackupStore;
  sqs: SQSClient;
  flussonic: (source: string) => ArchiveSource;
  /** Unix seconds. */
  now: number;
  /** The copier timeout the planner sizes windows with (900 s in Lambda). */
  copyTimeoutSeconds: number;
  only?: { source?: string | undefined; stream?: string | undefined };
}

export async function readBackupStatus(deps: StatusDeps): Promise<BackupStatus> {
  const sources: SourceStatus[] = [];
  for (const source of deps.config.sources) {
    if (deps.only?.source && source.name !== deps.only.source) continue;
    sources.push(await sourceStatus(deps, source));
  }
  return {
    at: deps.now,
    bucket: deps.config.bucket,
    prefix: deps.config.prefix,
    settleSeconds: deps.config.settleSeconds,
    marginWarningSeconds: deps.config.marginWarningSeconds,
    sources,
  };
}

async function sourceStatus(deps: StatusDeps, source: SourceConfig): Promise<SourceStatus> {
  const errors: string[] = [];
  const client = deps.flussonic(source.name);
  const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

  // Streams: those configured (or listed by the source), and those the backup has a manifest of.
  const settings = new Map<
    string,
    {
      retentionDays: number;
      format: string;
      bitrateBps: number | undefined;
      depth?: DvrDepth;
      retired?: NonNullable<StreamStatus["retired"]>["reason"];
      /** Why what it recorded is unknown (its server's stream list failed). */
      unknown?: string;
    }
  >();
  const listed = listedStreams(source);
  let sourceReachable = true;
  // A Central source's servers whose stream list failed: their streams are unknown, not retired.
  const unlisted = new Map<string, string>();
  if (listed) {
    for (const s of listed) settings.set(s.name, { ...s, bitrateBps: undefined });
  } else {
    try {
      for (const s of await client.listDvrStreams()) {
        settings.set(s.name, {
          retentionDays: source.retentionDays,
          format: source.format,
          bitrateBps: s.bitrateBps,
          depth: {
            ...(s.expirationSeconds ? { expirationSeconds: s.expirationSeconds } : {}),
            ...(s.oldest ? { oldest: s.oldest } : {}),
          },
        });
      }
    } catch (e) {
      sourceReachable = false;
      errors.push(`archive unknown: ${message(e)}`);
    }
    for (const gap of client.listingGaps?.() ?? []) {
      unlisted.set(gap.server, gap.error.message);
      errors.push(`archive unknown: ${gap.error.message}`);
    }
  }
  const manifestsFolder = manifestKey(deps.store.prefix, source.name, "x").slice(0, -"x.json".length);
  for await (const o of deps.store.listObjects(manifestsFolder)) {
    const name = decodeKeySegment(o.key.slice(manifestsFolder.length).replace(/\.json$/, ""));
    // In the backup, not planned: the source does not list it any more (with streams "all"), or
    // the config does not. When the source could not be asked, nothing is known about it.
    const unlistedWhy = unlisted.get(name.slice(0, name.indexOf("/")));
    if (!settings.has(name) && unlistedWhy !== undefined) {
      settings.set(name, {
        retentionDays: source.retentionDays,
        format: source.format,
        bitrateBps: undefined,
        unknown: unlistedWhy,
      });
    } else if (!settings.has(name))
      settings.set(name, {
        retentionDays: source.retentionDays,
        format: source.format,
        bitrateBps: undefined,
        ...(listed
          ? { retired: "not in the config" as const }
          : sourceReachable
            ? { retired: "gone at the source" as const }
            : {}),
      });
  }

  const pending = await deps.store.pendingRecords(source.name);
  const streams: StreamStatus[] = [];
  const names = [...settings.keys()].sort();
  for (const name of names) {
    if (deps.only?.stream && name !== deps.only.stream) continue;
    const st = settings.get(name)!;
    const records = pending.byStream.get(name) ?? [];
    // A damaged manifest is this stream's error (with how to rebuild it), not the whole status's;
    // nothing is counted as backed up for it until it is rebuilt.
    let damaged: string | undefined;
    const stored = await deps.store.readManifest(source.name, name).catch((e: unknown) => {
      if (!(e instanceof DamagedObjectError)) throw e;
      damaged = e.message;
      return { manifest: emptyManifest(source.name, name), etag: undefined };
    });
    const manifest = applyRecords(stored.manifest, damaged ? [] : records, deps.now);
    const retentionStart = Math.floor(deps.now - st.retentionDays * 86400);
    let archive: TimeRange[] | undefined;
    let error: string | undefined = damaged ?? (st.unknown ? `archive unknown: ${st.unknown}` : undefined);
    if (sourceReachable && !st.retired && !st.unknown) {
      try {
        archive = await client.recordedRanges(name, { from: retentionStart, to: deps.now });
      } catch (e) {
        error ??= `archive unknown: ${message(e)}`;
      }
    }
    const windowSeconds = streamWindowSeconds(
      deps.config,
      source,
      st.bitrateBps ?? storedBitrateBps(manifest),
      deps.copyTimeoutSeconds,
      manifest.reads,
    );
    const backedUp = normalizeRanges(manifest.covered);
    const race = archive ? raceOf(archive, backedUp, st, manifest.sourceOldest, retentionStart, deps) : {};
    streams.push({
      stream: name,
      format: st.format,
      retentionStart,
      windowSeconds,
      archive,
      backedUp,
      coverage: coverage({
        archive,
        backedUp,
        retentionStart,
        now: deps.now,
        settleSeconds: deps.config.settleSeconds,
        windowSeconds,
      }),
      windows: manifest.windows,
      bytes: manifest.bytes,
      leased: activeLeases(manifest, deps.now).length,
      pendingRecords: records.length,
      ...race,
      lostAtSourceSeconds: manifest.lostAtSource?.seconds ?? 0,
      ...(error ? { error } : {}),
      ...(st.retired ? { retired: { reason: st.retired, lastStoredSecond: manifest.head } } : {}),
    });
  }

  let queue: QueueStatus | undefined;
  try {
    queue = await queueStatus(deps.sqs, source.name);
  } catch (e) {
    errors.push(`queues unknown: ${message(e)}`);
  }
  const control = await deps.store.readControl(source.name).catch(() => undefined);
  return {
    source: source.name,
    paused: source.paused || Boolean(control),
    ...(control ? { pausedReason: control.reason || "paused by the operator" } : {}),
    queue,
    streams,
    errors,
  };
}

/** The stream's margin as the planner computes it (domain/deadlines.ts). */
function raceOf(
  archive: TimeRange[],
  backedUp: TimeRange[],
  st: { retentionDays: number; depth?: DvrDepth },
  previousOldest: number | undefined,
  retentionStart: number,
  deps: StatusDeps,
): Pick<StreamStatus, "marginSeconds" | "sourceDepthSeconds" | "depthBasis"> {
  const first = archive[0]?.from;
  const depth = sourceDepth({
    expirationSeconds: st.depth?.expirationSeconds,
    oldest: st.depth?.oldest ?? (first !== undefined && first > retentionStart ? first : undefined),
    previousOldest,
    retentionSeconds: st.retentionDays * 86400,
    now: deps.now,
  });
  const lacking = subtractRanges(
    clipRanges(archive, retentionStart, deps.now - deps.config.settleSeconds),
    backedUp,
  );
  const margin = marginSeconds(lacking, depth, deps.now);
  return {
    ...(margin !== undefined ? { marginSeconds: margin } : {}),
    sourceDepthSeconds: depth.seconds,
    depthBasis: depth.basis,
  };
}

/** Depth of a source's copy queue and dead-letter queue. */
export async function queueStatus(sqs: SQSClient, source: string): Promise<QueueStatus> {
  const urls = await sourceQueueUrls(sqs, source);
  const q = await queueDepth(sqs, urls.url);
  const dlq = await queueDepth(sqs, urls.deadLetterUrl);
  return {
    queued: q.visible + q.delayed,
    inFlight: q.inFlight,
    deadLettered: dlq.visible + dlq.inFlight + dlq.delayed,
  };
}

/** URLs of a source's copy queue and dead-letter queue (they exist once `run` or the stack made them). */
export async function sourceQueueUrls(
  sqs: SQSClient,
  source: string,
): Promise<{ url: string; deadLetterUrl: string }> {
  const url = async (name: string) => {
    try {
      const res = await sqs.send(new GetQueueUrlCommand({ QueueName: name }));
      if (!res.QueueUrl) throw new Error("no URL in the answer");
      return res.QueueUrl;
    } catch (e) {
      throw new Error(`queue ${name}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    }
  };
  // In AWS a central source's queues (and a source capped at one copy's) are FIFO: `<name>.fifo`.
  const name = queueName(source);
  try {
    return { url: await url(name), deadLetterUrl: await url(`${name}-dlq`) };
  } catch (error) {
    try {
      return { url: await url(`${name}.fifo`), deadLetterUrl: await url(`${name}-dlq.fifo`) };
    } catch {
      throw error;
    }
  }
}
