/**
 * `flussonic-backup cost`: what the backup costs per source and stream, from what it counted while
 * it ran. Each window's record (and, once compacted, its catalog entry) carries the S3 requests its
 * copy made and, in Lambda, the copy's GB-seconds (functions/copier/copy-window.ts): the report
 * reads the catalogs of the days asked and the records not compacted yet, never the archive objects.
 * Bytes stored are split by storage class as the bucket's lifecycle moves them
 * (`deployment.storageClassTransition`), and the month is projected at list prices
 * (functions/domain/prices.ts, overridable with the configuration's `prices`).
 */
import type { BackupConfig } from "../functions/config/config.ts";
import { defaultStreamSettings } from "../functions/config/stream-settings.ts";
import { catalogKey, utcDate } from "../functions/domain/keys.ts";
import type { CopyRecord } from "../functions/domain/manifest.ts";
import { decodeKeySegment } from "../functions/domain/names.ts";
import {
  byClass,
  LIST_PRICES,
  lambdaCost,
  type Prices,
  requestsCost,
  storageCostPerMonth,
} from "../functions/domain/prices.ts";
import type { BackupStore, CatalogEntry } from "../functions/store/backup-store.ts";

const DAY = 86_400;

export interface CostDeps {
  config: BackupConfig;
  store: BackupStore;
  /** Unix seconds. */
  now: number;
  /** Unix seconds: windows copied from then on (default: 30 days before now). */
  since?: number;
  only?: { source?: string | undefined; stream?: string | undefined };
}

export interface StreamCost {
  source: string;
  stream: string;
  /** Windows copied since `since`. */
  windows: number;
  /** Bytes of the windows copied since `since` still kept, by the storage class they are in now. */
  bytesByClass: Record<string, number>;
  /**
   * S3 requests the copies counted (windows without counts, written before them, add nothing), and
   * their share of the SQS requests that received and deleted their messages (records since the
   * copier counts them; estimated from the batch size in AWS).
   */
  requests: { put: number; get: number; sqs: number };
  /** Windows whose record carried request counts. */
  counted: number;
  /**
   * The requests of the windows without counts (entries `rebuild` made from the stored objects,
   * copies made before the counts), estimated at the average of the stream's counted windows (else
   * the source's); in the month, never in `requests`. Absent when every window was counted.
   */
  estimated?: { put: number; get: number; windows: number };
  /** Lambda GB-seconds the copies recorded; undefined when none ran in Lambda (the local runtime). */
  gbSeconds: number | undefined;
  /** The month at these rates: storage at steady state, requests and Lambda per day x 30. */
  month: { storageUsd: number; requestsUsd: number; lambdaUsd: number; totalUsd: number };
}

/**
 * The planner's requests for a whole source, as it kept them in the source's catalogs of the days
 * asked (each run's S3 and SQS requests, folded into the next catalog it wrote).
 */
export interface PlannerCost {
  source: string;
  /** Planner runs counted. */
  runs: number;
  requests: { put: number; get: number; sqs: number };
  /** The month at this rate (requests only: the planner's Lambda time is not counted). */
  monthUsd: number;
}

export interface CostReport {
  since: number;
  now: number;
  prices: Prices;
  streams: StreamCost[];
  /** Per source; none with `--stream` (the planner's counts are the whole source's). */
  planner: PlannerCost[];
  total: {
    bytes: number;
    /** The copies' requests and the planner's. */
    requests: { put: number; get: number; sqs: number };
    gbSeconds: number | undefined;
    monthUsd: number;
  };
  notes: string[];
}

/** The list prices with the configuration's overrides. */
export function pricesOf(config: BackupConfig): Prices {
  const own = Object.fromEntries(Object.entries(config.prices ?? {}).filter(([, v]) => v !== undefined));
  return { ...LIST_PRICES, ...own };
}

export async function readCost(deps: CostDeps): Promise<CostReport> {
  const { config, store, now } = deps;
  const since = deps.since ?? now - 30 * DAY;
  const prices = pricesOf(config);
  const transition = config.deployment.storageClassTransition;
  const noncurrentDays = config.deployment.noncurrentVersionDays;
  const streams: StreamCost[] = [];
  const planner: PlannerCost[] = [];
  const periodDays = Math.max(1 / 24, (now - since) / DAY);
  for (const source of config.sources) {
    if (deps.only?.source && source.name !== deps.only.source) continue;
    const entries = new Map<string, CatalogEntry[]>();
    const plannerOps: Record<string, number> = {};
    let plannerRuns = 0;
    // Stream names from the catalogs' folders (the source is not asked).
    const folder = catalogKey(store.prefix, source.name, "-", "-").replace(/-\/-\.json$/, "");
    const days = new Set<string>();
    for (let d = since - (since % DAY); d <= now; d += DAY) days.add(`${utcDate(d)}.json`);
    for await (const o of store.listObjects(folder)) {
      const [stream, day] = o.key.slice(folder.length).split("/");
      if (!stream || !day || !days.has(day)) continue;
      const name = decodeKeySegment(stream);
      if (deps.only?.stream && name !== deps.only.stream) continue;
      const catalog = await store.readCatalog(source.name, name, day.slice(0, -".json".length));
      entries.set(name, [...(entries.get(name) ?? []), ...catalog.windows]);
      if (catalog.planner) {
        plannerRuns += catalog.planner.runs;
        for (const [op, n] of Object.entries(catalog.planner.ops)) plannerOps[op] = (plannerOps[op] ?? 0) + n;
      }
    }
    if (!deps.only?.stream && plannerRuns > 0) {
      const requests = byClass(plannerOps);
      planner.push({
        source: source.name,
        runs: plannerRuns,
        requests,
        monthUsd: requestsCost(
          {
            put: (requests.put * 30) / periodDays,
            get: (requests.get * 30) / periodDays,
            sqs: (requests.sqs * 30) / periodDays,
          },
          prices,
        ),
      });
    }
    const pending = await store.pendingRecords(source.name, deps.only?.stream);
    for (const [name, records] of pending.byStream) {
      entries.set(name, [...(entries.get(name) ?? []), ...records.map(catalogEntryOf)]);
    }
    const rows: StreamCost[] = [];
    for (const [stream, all] of [...entries].sort(([a], [b]) => a.localeCompare(b))) {
      const retentionDays = defaultStreamSettings(source, stream).retentionDays;
      // One entry per window (a record not compacted yet may also be in a catalog).
      const byKey = new Map(all.filter((e) => e.copiedAt >= since).map((e) => [e.key, e]));
      const windows = [...byKey.values()];
      const bytesByClass: Record<string, number> = {};
      const requests = { put: 0, get: 0, sqs: 0 };
      let counted = 0;
      let gbSeconds: number | undefined;
      let bytes = 0;
      for (const w of windows) {
        bytes += w.size;
        const age = (now - (w.from + w.duration)) / DAY;
        if (age <= Math.ceil(retentionDays) + 1) {
          const cls = transition && age >= transition.afterDays ? transition.storageClass : "STANDARD";
          bytesByClass[cls] = (bytesByClass[cls] ?? 0) + w.size;
        }
        if (w.requests) {
          requests.put += w.requests.put;
          requests.get += w.requests.get;
          requests.sqs += w.requests.sqs ?? 0;
          counted++;
        }
        if (w.gbSeconds !== undefined) gbSeconds = (gbSeconds ?? 0) + w.gbSeconds;
      }
      const perMonth = 30 / periodDays;
      const gbPerMonth = (bytes / 1e9) * perMonth;
      const keptDays = Math.ceil(retentionDays) + 1 + noncurrentDays;
      const storageUsd =
        transition?.storageClass === "GLACIER_IR"
          ? storageCostPerMonth(gbPerMonth, keptDays, prices, transition.afterDays).usd +
            (windows.length * perMonth * prices.transitionPer1000) / 1000
          : storageCostPerMonth(gbPerMonth, keptDays, prices).usd;
      const lambdaUsd =
        gbSeconds === undefined ? 0 : lambdaCost(gbSeconds * perMonth, windows.length * perMonth, prices);
      rows.push({
        source: source.name,
        stream,
        windows: windows.length,
        bytesByClass,
        requests,
        counted,
        gbSeconds,
        month: { storageUsd, requestsUsd: 0, lambdaUsd, totalUsd: 0 },
      });
    }
    // Windows without counts are estimated at the counted ones' average: the stream's, else the
    // source's (none counted anywhere: nothing to estimate from, they add nothing).
    const sourceCounted = rows.reduce((n, r) => n + r.counted, 0);
    const sourceAverage = (k: "put" | "get") =>
      rows.reduce((n, r) => n + r.requests[k], 0) / Math.max(1, sourceCounted);
    for (const r of rows) {
      const missing = r.windows - r.counted;
      const average = (k: "put" | "get") => (r.counted > 0 ? r.requests[k] / r.counted : sourceAverage(k));
      if (missing > 0 && sourceCounted > 0) {
        r.estimated = {
          put: Math.round(average("put") * missing),
          get: Math.round(average("get") * missing),
          windows: missing,
        };
      }
      const perMonth = 30 / periodDays;
      const put = r.requests.put + (r.estimated?.put ?? 0);
      const get = r.requests.get + (r.estimated?.get ?? 0);
      r.month.requestsUsd = requestsCost(
        { put: put * perMonth, get: get * perMonth, sqs: r.requests.sqs * perMonth },
        prices,
      );
      r.month.totalUsd = r.month.storageUsd + r.month.requestsUsd + r.month.lambdaUsd;
      streams.push(r);
    }
  }
  const gbs = streams.filter((s) => s.gbSeconds !== undefined);
  return {
    since,
    now,
    prices,
    streams,
    planner,
    total: {
      bytes: streams.reduce((n, s) => n + Object.values(s.bytesByClass).reduce((a, b) => a + b, 0), 0),
      requests: {
        put:
          streams.reduce((n, s) => n + s.requests.put, 0) + planner.reduce((n, p) => n + p.requests.put, 0),
        get:
          streams.reduce((n, s) => n + s.requests.get, 0) + planner.reduce((n, p) => n + p.requests.get, 0),
        sqs:
          streams.reduce((n, s) => n + s.requests.sqs, 0) + planner.reduce((n, p) => n + p.requests.sqs, 0),
      },
      gbSeconds: gbs.length > 0 ? gbs.reduce((n, s) => n + (s.gbSeconds ?? 0), 0) : undefined,
      monthUsd:
        streams.reduce((n, s) => n + s.month.totalUsd, 0) + planner.reduce((n, p) => n + p.monthUsd, 0),
    },
    notes: [
      `Prices: ${prices.region} list prices (override them with "prices" in the configuration).`,
      "Requests: the copier's S3 requests, counted into each window's record (windows without counts, such as catalog entries `rebuild` made from the stored objects, are estimated at the average of the counted ones, shown apart); the planner's S3 and SQS requests, counted per source as it runs and kept in the next catalog it writes (a run whose counts are not written yet when its process ends, e.g. the last run of `run --once` or a Lambda instance retired after runs that wrote no catalog, is not in them). The copier's SQS requests (receive, delete): counted by the local runtime's poller (its polling included) into the records of the copies (those after a run's last copy are in none), in AWS estimated at 2 a window (the event source mapping's receive and delete of a batch of 1; its idle polling is per queue, not per window: docs/cost.md).",
      gbs.length > 0
        ? "Lambda GB-seconds: the copies' own duration x the function's memory."
        : "Lambda GB-seconds: none recorded (copies outside Lambda, as with the local runtime, cost no Lambda time).",
      `Storage: the month's copies kept retention + 1 + ${noncurrentDays} days (old versions, deployment.noncurrentVersionDays)${transition ? `, in ${transition.storageClass} after ${transition.afterDays} days${transition.storageClass === "GLACIER_IR" ? ` (billed ${prices.glacierIrMinimumDays} days at least)` : " (priced as STANDARD here)"}` : ""}.`,
    ],
  };
}

function catalogEntryOf(r: CopyRecord): CatalogEntry {
  const { source: _source, stream: _stream, ...entry } = r;
  return entry;
}
