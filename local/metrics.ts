/**
 * What `run --metrics-port N` serves: `/metrics` in the Prometheus text format (prom-client) and
 * `/healthz`, which fails (503) when the last successful planner run is older than two schedules.
 * Fed from the runtime's events (copier outcomes, bytes, back-off changes, planner reports); queue
 * depth and copies in flight are read when scraped.
 */
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { BackupConfig } from "../functions/config/config.ts";
import type { CopierEvent } from "../functions/copier/copy-messages.ts";
import type { PlanReport } from "../functions/planner/plan-backup.ts";
import type { PressureChange } from "../functions/source/source-pressure.ts";
import { hostNameCheck, isLoopbackHost } from "./host-names.ts";

/** Reads a source's copy queue and dead-letter queue depth, and the copies running now. */
export interface QueueProbe {
  depth(source: string): Promise<{
    copy: { visible: number; inFlight: number; delayed: number };
    deadLetter: number;
  }>;
  copiesInFlight(source: string): number;
}

export interface BackupMetricsOptions {
  config: BackupConfig;
  /** Milliseconds between planner runs (the config's schedule). */
  scheduleMs: number;
  queues?: QueueProbe;
  /** Milliseconds (tests move time). */
  nowMs?: () => number;
}

/**
 * A failure reason as a label with few values: the HTTP status when there is one, else the kind of
 * failure. The whole reason goes to the log, never to a label (unbounded, may name streams).
 */
export function failureReason(reason: string): string {
  // First: a copy past its timeout ("aborted due to timeout") and a stalled body ("Body Timeout
  // Error" in a failed download) are timeouts, not aborts or plain download failures.
  if (!/^S3:/.test(reason) && /timed? ?out|timeout/i.test(reason)) return "timeout";
  if (/abort/i.test(reason)) return "aborted";
  const status = /\b(?:HTTP|status)\s*\(?(\d{3})\b/i.exec(reason);
  if (/^S3:/.test(reason)) return status ? `s3_http_${status[1]}` : "s3";
  if (status) return `http_${status[1]}`;
  if (/download failed/.test(reason)) return "download";
  if (/incomplete body|body has \d+ bytes/.test(reason)) return "incomplete_body";
  if (/not a copy message/.test(reason)) return "bad_message";
  if (/ECONNREFUSED|ECONNRESET|UND_ERR_SOCKET|other side closed/.test(reason)) return "connection";
  return "other";
}

export class BackupMetrics {
  readonly registry = new Registry();
  readonly #o: BackupMetricsOptions;
  readonly #now: () => number;
  /** When the last planner run succeeded (ms), or when the service started. */
  #lastPlanMs: number;
  #planned = false;
  readonly #windows: Counter<"source" | "outcome">;
  readonly #bytesCopied: Counter<"source">;
  readonly #bytesDownloaded: Counter<"source">;
  readonly #failures: Counter<"source" | "reason" | "result">;
  readonly #duration: Histogram<"source">;
  readonly #backoffLimit: Gauge<"source">;
  readonly #backoffPaused: Gauge<"source">;
  readonly #lag: Gauge<"source" | "stream">;
  readonly #missing: Gauge<"source" | "stream">;
  readonly #margin: Gauge<"source" | "stream">;
  readonly #atRisk: Gauge<"source" | "stream">;
  readonly #lostAtSource: Gauge<"source" | "stream">;
  readonly #planRuns: Counter<"result">;
  readonly #lastPlan: Gauge;
  /** Streams with per-stream series, by source (their series go when the stream does). */
  readonly #streamsSeen = new Map<string, Set<string>>();

  constructor(o: BackupMetricsOptions) {
    this.#o = o;
    this.#now = o.nowMs ?? Date.now;
    this.#lastPlanMs = this.#now();
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "flussonic_backup_" });
    this.#windows = new Counter({
      name: "flussonic_backup_windows_total",
      help: "Windows handled by the copiers, by outcome (copied, already-stored, gone, stale, deferred, retry, dead-lettered)",
      labelNames: ["source", "outcome"],
      registers,
    });
    this.#bytesCopied = new Counter({
      name: "flussonic_backup_copied_bytes_total",
      help: "Bytes of windows stored in S3",
      labelNames: ["source"],
      registers,
    });
    this.#bytesDownloaded = new Counter({
      name: "flussonic_backup_downloaded_bytes_total",
      help: "Bytes read from the source (copies in progress included)",
      labelNames: ["source"],
      registers,
    });
    this.#failures = new Counter({
      name: "flussonic_backup_copy_failures_total",
      help: "Failed copies by reason; result: retry (tried again later) or dead-lettered",
      labelNames: ["source", "reason", "result"],
      registers,
    });
    this.#duration = new Histogram({
      name: "flussonic_backup_copy_duration_seconds",
      help: "Time one window copy took (download, hash and upload)",
      labelNames: ["source"],
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 900],
      registers,
    });
    this.#backoffLimit = new Gauge({
      name: "flussonic_backup_source_concurrency_limit",
      help: "Copies the back-off gate allows at once now (maxConcurrentCopies when the source is healthy)",
      labelNames: ["source"],
      registers,
    });
    this.#backoffPaused = new Gauge({
      name: "flussonic_backup_source_backoff_paused",
      help: "1 while the source is paused by the back-off gate (429, 503, Retry-After, network errors)",
      labelNames: ["source"],
      registers,
    });
    this.#lag = new Gauge({
      name: "flussonic_backup_stream_lag_seconds",
      help: "Seconds between the last planner run and the newest second stored of the stream",
      labelNames: ["source", "stream"],
      registers,
    });
    this.#missing = new Gauge({
      name: "flussonic_backup_stream_missing_seconds",
      help: "Copyable seconds of the retention window the backup does not hold yet",
      labelNames: ["source", "stream"],
      registers,
    });
    this.#margin = new Gauge({
      name: "flussonic_backup_stream_margin_seconds",
      help: "Seconds left until the source deletes the oldest second of the stream the backup lacks (absent: it lacks nothing)",
      labelNames: ["source", "stream"],
      registers,
    });
    this.#atRisk = new Gauge({
      name: "flussonic_backup_stream_at_risk_seconds",
      help: "Seconds the planner foresees the source deleting before they can be copied at the source's cap",
      labelNames: ["source", "stream"],
      registers,
    });
    this.#lostAtSource = new Gauge({
      name: "flussonic_backup_stream_lost_at_source_seconds",
      help: "Seconds lost at the source before backup (deleted by its retention before they were copied), counted for good; not the gaps the source never recorded",
      labelNames: ["source", "stream"],
      registers,
    });
    this.#planRuns = new Counter({
      name: "flussonic_backup_planner_runs_total",
      help: "Planner runs by result (ok, failed)",
      labelNames: ["result"],
      registers,
    });
    this.#lastPlan = new Gauge({
      name: "flussonic_backup_planner_last_success_timestamp_seconds",
      help: "When the planner last ran successfully (unix seconds; 0: not yet)",
      registers,
    });
    for (const s of o.config.sources) {
      this.#backoffLimit.set({ source: s.name }, s.maxConcurrentCopies);
      this.#backoffPaused.set({ source: s.name }, 0);
      this.#bytesCopied.inc({ source: s.name }, 0);
      this.#bytesDownloaded.inc({ source: s.name }, 0);
      this.#windows.inc({ source: s.name, outcome: "copied" }, 0);
    }
    const probe = o.queues;
    if (probe) {
      const sources = o.config.sources.map((s) => s.name);
      new Gauge({
        name: "flussonic_backup_queue_messages",
        help: "Messages in a source's queues: queue copy (state visible, in_flight, delayed) or dead_letter",
        labelNames: ["source", "queue", "state"],
        registers,
        async collect() {
          this.reset();
          for (const source of sources) {
            try {
              const d = await probe.depth(source);
              this.set({ source, queue: "copy", state: "visible" }, d.copy.visible);
              this.set({ source, queue: "copy", state: "in_flight" }, d.copy.inFlight);
              this.set({ source, queue: "copy", state: "delayed" }, d.copy.delayed);
              this.set({ source, queue: "dead_letter", state: "visible" }, d.deadLetter);
            } catch {
              // The queue service does not answer: the series are absent for this scrape.
            }
          }
        },
      });
      new Gauge({
        name: "flussonic_backup_copies_in_flight",
        help: "Window copies running now in this process",
        labelNames: ["source"],
        registers,
        collect() {
          for (const source of sources) this.set({ source }, probe.copiesInFlight(source));
        },
      });
    }
  }

  event(e: CopierEvent): void {
    const source = e.message?.source ?? ("source" in e ? String(e.source) : "unknown");
    this.#windows.inc({ source, outcome: e.type });
    if (e.type === "copied") {
      this.#bytesCopied.inc({ source }, e.bytes);
      this.#duration.observe({ source }, e.seconds);
    }
    if (e.type === "retry" || e.type === "dead-lettered") {
      this.#failures.inc({ source, reason: failureReason(e.reason), result: e.type });
    }
  }

  bytes(source: string, n: number): void {
    this.#bytesDownloaded.inc({ source }, n);
  }

  pressure(source: string, change: PressureChange): void {
    this.#backoffLimit.set({ source }, change.limit);
    this.#backoffPaused.set({ source }, change.pausedUntilMs > this.#now() ? 1 : 0);
  }

  planned(report: PlanReport): void {
    this.#planRuns.inc({ result: "ok" });
    this.#lastPlanMs = this.#now();
    this.#planned = true;
    this.#lastPlan.set(Math.floor(this.#lastPlanMs / 1000));
    for (const s of report.sources) {
      for (const st of s.streams) {
        const labels = { source: s.source, stream: st.stream };
        // A stream never copied is behind by its whole retention.
        const lag = st.head > 0 ? report.at - st.head : this.#retentionSeconds(s.source, st.stream);
        this.#lag.set(labels, Math.max(0, lag));
        this.#missing.set(labels, Math.max(0, st.copyableSeconds - st.backedUpSeconds));
        if (st.marginSeconds !== undefined) this.#margin.set(labels, st.marginSeconds);
        else this.#margin.remove(labels);
        this.#atRisk.set(
          labels,
          (st.atRisk ?? []).reduce((n, r) => n + (r.to - r.from), 0),
        );
        if (st.lostAtSourceSeconds !== undefined) this.#lostAtSource.set(labels, st.lostAtSourceSeconds);
      }
      this.#dropVanished(s);
    }
  }

  /**
   * Removes the per-stream series of streams the source no longer has. Only after a run that
   * planned the source (not paused, no failure of the source itself); a stream whose own
   * planning failed keeps its series.
   */
  #dropVanished(s: PlanReport["sources"][number]): void {
    if (s.paused || s.errors.some((e) => e.stream === undefined)) return;
    const now = new Set([
      ...s.streams.map((st) => st.stream),
      ...s.errors.flatMap((e) => (e.stream ? [e.stream] : [])),
    ]);
    for (const stream of this.#streamsSeen.get(s.source) ?? []) {
      if (now.has(stream)) continue;
      this.#lag.remove({ source: s.source, stream });
      this.#missing.remove({ source: s.source, stream });
      this.#margin.remove({ source: s.source, stream });
      this.#atRisk.remove({ source: s.source, stream });
      this.#lostAtSource.remove({ source: s.source, stream });
    }
    this.#streamsSeen.set(s.source, now);
  }

  #retentionSeconds(source: string, stream: string): number {
    const s = this.#o.config.sources.find((x) => x.name === source);
    if (!s) return 0;
    const own = Array.isArray(s.streams)
      ? s.streams.find((x) => typeof x === "object" && x.name === stream)
      : undefined;
    const days = (typeof own === "object" ? own.retentionDays : undefined) ?? s.retentionDays;
    return Math.round(days * 86_400);
  }

  planFailed(): void {
    this.#planRuns.inc({ result: "failed" });
  }

  /** Healthy while the last successful planner run (or the start) is at most two schedules old. */
  health(): { ok: boolean; text: string } {
    const ageS = Math.round((this.#now() - this.#lastPlanMs) / 1000);
    const limitS = Math.round((2 * this.#o.scheduleMs) / 1000);
    const what = this.#planned
      ? `last planner run ${ageS} s ago`
      : `no planner run yet, started ${ageS} s ago`;
    const ok = ageS <= limitS;
    return { ok, text: `${ok ? "ok" : "unhealthy"}: ${what} (limit ${limitS} s, two schedules)\n` };
  }
}

/** The HTTP server of `/metrics` and `/healthz`. */
export async function serveMetrics(
  metrics: BackupMetrics,
  port: number,
  host: string,
): Promise<{ url: string; close(): Promise<void> }> {
  // Bound to loopback (the default), only a browser on this machine can reach it: a page of another
  // origin whose name resolves to 127.0.0.1 (DNS rebinding) is refused by its Host. Bound to another
  // address, the operator exposed it to scrapers that may use any name for this machine.
  const answersTo = isLoopbackHost(host) ? hostNameCheck(host) : () => true;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (!answersTo(req.headers.host)) {
      res
        .writeHead(421, { "content-type": "text/plain; charset=utf-8" })
        .end(
          `Host ${JSON.stringify(req.headers.host ?? "")} is not a name this metrics server answers to: it listens on ${host} only; scrape it as localhost or ${host}, or listen on another address with --metrics-host\n`,
        );
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/metrics") {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(text),
        (error: unknown) =>
          res.writeHead(500, { "content-type": "text/plain" }).end(`metrics failed: ${String(error)}\n`),
      );
      return;
    }
    if (path === "/healthz") {
      const h = metrics.health();
      res.writeHead(h.ok ? 200 : 503, { "content-type": "text/plain; charset=utf-8" }).end(h.text);
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics or /healthz\n");
  });
  server.listen(port, host);
  await once(server, "listening");
  const address = server.address() as AddressInfo;
  const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
