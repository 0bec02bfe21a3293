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
  /** S3 requests the copies counted (windows without counts, written before them, add nothing). */
  requests: { put: number; get: number };
  /** Windows whose record carried request counts. */
  counted: number;
  /** Lambda GB-seconds the copies recorded; undefined when none ran in Lambda (the local runtime). */
  gbSeconds: number | undefined;
  /** The month at these rates: storage at steady state, requests and Lambda per day x 30. */
  month: { storageUsd: number; requestsUsd: number; lambdaUsd: number; totalUsd: number };
}

export interface CostReport {
  since: number;
  now: number;
  prices: Prices;
  streams: StreamCost[];
  total: {
    bytes: number;
    requests: { put: number; get: number };
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
  for (const source of config.sources) {
    if (deps.only?.source && source.name !== deps.only.source) continue;
    const entries = new Map<string, CatalogEntry[]>();
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
    }
    const pending = await store.pendingRecords(source.name, deps.only?.stream);
    for (const [name, records] of pending.byStream) {
      entries.set(name, [...(entries.get(name) ?? []), ...records.map(catalogEntryOf)]);
    }
    for (const [stream, all] of [...entries].sort(([a], [b]) => a.localeCompare(b))) {
      const retentionDays = defaultStreamSettings(source, stream).retentionDays;
      // One entry per window (a record not compacted yet may also be in a catalog).
      const byKey = new Map(all.filter((e) => e.copiedAt >= since).map((e) => [e.key, e]));
      const windows = [...byKey.values()];
      const bytesByClass: Record<string, number> = {};
      const requests = { put: 0, get: 0 };
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
          counted++;
        }
        if (w.gbSeconds !== undefined) gbSeconds = (gbSeconds ?? 0) + w.gbSeconds;
      }
      const periodDays = Math.max(1 / 24, (now - since) / DAY);
      const perMonth = 30 / periodDays;
      const gbPerMonth = (bytes / 1e9) * perMonth;
      const keptDays = Math.ceil(retentionDays) + 1 + noncurrentDays;
      const storageUsd =
        transition?.storageClass === "GLACIER_IR"
          ? storageCostPerMonth(gbPerMonth, keptDays, prices, transition.afterDays).usd +
            (windows.length * perMonth * prices.transitionPer1000) / 1000
          : storageCostPerMonth(gbPerMonth, keptDays, prices).usd;
      const requestsUsd = requestsCost(
        { put: requests.put * perMonth, get: requests.get * perMonth, sqs: 0 },
        prices,
      );
      const lambdaUsd =
        gbSeconds === undefined ? 0 : lambdaCost(gbSeconds * perMonth, windows.length * perMonth, prices);
      streams.push({
        source: source.name,
        stream,
        windows: windows.length,
        bytesByClass,
        requests,
        counted,
        gbSeconds,
        month: { storageUsd, requestsUsd, lambdaUsd, totalUsd: storageUsd + requestsUsd + lambdaUsd },
      });
    }
  }
  const gbs = streams.filter((s) => s.gbSeconds !== undefined);
  return {
    since,
    now,
    prices,
    streams,
    total: {
      bytes: streams.reduce((n, s) => n + Object.values(s.bytesByClass).reduce((a, b) => a + b, 0), 0),
      requests: {
        put: streams.reduce((n, s) => n + s.requests.put, 0),
        get: streams.reduce((n, s) => n + s.requests.get, 0),
      },
      gbSeconds: gbs.length > 0 ? gbs.reduce((n, s) => n + (s.gbSeconds ?? 0), 0) : undefined,
      monthUsd: streams.reduce((n, s) => n + s.month.totalUsd, 0),
    },
    notes: [
      `Prices: ${prices.region} list prices (override them with "prices" in the configuration).`,
      "Requests: the copier's, counted into each window's record; the planner's and SQS's are not counted (see docs/cost.md for their measured share).",
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
