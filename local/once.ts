/**
 * `run --once`: plan, drain the queues, plan again while runs still find work (a big backlog is fed
 * in budgeted rounds), then report. Exit status 0 only when everything planned was copied.
 */
import type { CopierEvent } from "../functions/copier/copy-messages.ts";
import type { PlanReport } from "../functions/planner/plan-backup.ts";
import { formatBytes, formatDuration } from "../ops/progress.ts";
import type { LocalRuntime } from "./runtime.ts";

export interface OnceSummary {
  rounds: number;
  planned: number;
  copied: number;
  alreadyStored: number;
  gone: number;
  stale: number;
  retries: number;
  bytes: number;
  seconds: number;
  deferred: number;
  /** Sources that did not copy in this run, with the reason (paused, outside allowed hours). */
  idle: [string, string][];
  deadLettered: DeadLettered[];
  planErrors: { source: string; stream: string | undefined; message: string }[];
  /** The last planner run, after everything was copied: coverage per stream. */
  finalPlan: PlanReport;
  ok: boolean;
}

export interface OnceOptions {
  maxRounds?: number;
  onPlan?: (report: PlanReport) => void;
  signal?: AbortSignal;
}

type EventType = CopierEvent["type"];
type DeadLettered = Extract<CopierEvent, { type: "dead-lettered" }>;

/**
 * Collects copier events into a summary; feed it from the runtime's onEvent. It counts them, and
 * keeps only the dead-lettered ones (the summary lists them): a run's memory does not grow with the
 * windows it copies. `keepEvents` keeps every event too, for tests that look at them.
 */
export class OnceTally {
  /** Every event, only with `keepEvents`. */
  readonly events: CopierEvent[] = [];
  readonly counts: Record<EventType, number> = {
    copied: 0,
    "already-stored": 0,
    stale: 0,
    gone: 0,
    deferred: 0,
    retry: 0,
    "dead-lettered": 0,
  };
  /** Bytes of the windows copied. */
  bytes = 0;
  readonly deadLettered: DeadLettered[] = [];
  readonly #keepEvents: boolean;

  constructor(o: { keepEvents?: boolean } = {}) {
    this.#keepEvents = o.keepEvents ?? false;
  }

  add(e: CopierEvent): void {
    this.counts[e.type]++;
    if (e.type === "copied") this.bytes += e.bytes;
    if (e.type === "dead-lettered") this.deadLettered.push(e);
    if (this.#keepEvents) this.events.push(e);
  }

  /** Windows copied or found already stored so far. */
  get stored(): number {
    return this.counts.copied + this.counts["already-stored"];
  }
}

export async function runOnce(rt: LocalRuntime, tally: OnceTally, o: OnceOptions = {}): Promise<OnceSummary> {
  const started = performance.now();
  const startCounts = { ...tally.counts };
  const startBytes = tally.bytes;
  const startDead = tally.deadLettered.length;
  let planned = 0;
  let rounds = 0;
  const planErrors: OnceSummary["planErrors"] = [];
  await rt.startCopiers();
  let report: PlanReport;
  try {
    for (;;) {
      report = await rt.plan();
      rounds++;
      o.onPlan?.(report);
      for (const s of report.sources) {
        for (const e of s.errors) planErrors.push({ source: s.source, stream: e.stream, message: e.message });
      }
      const n = report.sources.reduce((sum, s) => sum + s.planned.length, 0);
      planned += n;
      // Messages left by an earlier run (interrupted, or planned elsewhere) are copied too.
      if (n === 0 && (await rt.pendingMessages()) === 0) break;
      const before = tally.stored;
      await rt.drain(o.signal);
      if (rounds >= (o.maxRounds ?? 50)) break;
      // Only leftovers were copied: one more round folds their records into the manifests and
      // catalogs (and the coverage printed), unless none was.
      if (n === 0 && tally.stored === before) break;
    }
  } finally {
    await rt.stopCopiers();
  }
  const count = (t: EventType) => tally.counts[t] - startCounts[t];
  const deadLettered = tally.deadLettered.slice(startDead);
  // Planning errors of a stream that later planned fine are not failures of the run.
  const lastErrors = new Set(report.sources.flatMap((s) => s.errors.map((e) => `${s.source}/${e.stream}`)));
  const standingErrors = planErrors.filter((e) => lastErrors.has(`${e.source}/${e.stream}`));
  return {
    rounds,
    planned,
    copied: count("copied"),
    alreadyStored: count("already-stored"),
    gone: count("gone"),
    stale: count("stale"),
    retries: count("retry"),
    deferred: count("deferred"),
    idle: [...rt.idleSources],
    bytes: tally.bytes - startBytes,
    seconds: (performance.now() - started) / 1000,
    deadLettered,
    planErrors: dedupe(standingErrors),
    finalPlan: report,
    // A stale window was planned and not copied (its lease ended before a copy could finish).
    // A source left idle because S3 failed to say whether it is paused is a failure of the run.
    ok:
      deadLettered.length === 0 &&
      standingErrors.length === 0 &&
      count("stale") === 0 &&
      rt.unreadableSwitches.size === 0,
  };
}

function dedupe<T>(items: T[]): T[] {
  const seen = new Set<string>();
  return items.filter((i) => {
    const k = JSON.stringify(i);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** The human summary printed at the end of `run --once` and of the demo. */
export function formatSummary(s: OnceSummary, now: number): string {
  const lines: string[] = [];
  lines.push(
    `Copied ${s.copied} window(s), ${formatBytes(s.bytes)} in ${formatDuration(s.seconds)}` +
      ` (${s.planned} planned in ${s.rounds} round(s); ${s.alreadyStored} already stored,` +
      ` ${s.gone} gone at the source, ${s.retries} retried, ${s.deadLettered.length} dead-lettered).`,
  );
  for (const [source, reason] of s.idle) lines.push(`Source ${source} did not copy: ${reason}.`);
  if (s.stale > 0) {
    lines.push(
      `${s.stale} window(s) were not copied: their lease ended before a copy could finish (leaseSeconds is shorter than the copy timeout plus the time they waited in the queue); raise leaseSeconds or lower --copy-timeout.`,
    );
  }
  // No table without a stream to show (a source that could not be asked: its error follows).
  if (s.finalPlan.sources.some((src) => src.paused || src.streams.length > 0)) {
    lines.push("");
    lines.push(coverageTable(s.finalPlan, now));
  }
  if (s.deadLettered.length > 0) {
    lines.push("");
    lines.push("Failed windows (in the dead-letter queue; fix the cause, then `flussonic-backup redrive`):");
    for (const d of s.deadLettered) {
      const m = d.message;
      lines.push(
        `  ${m ? `${m.source} ${m.stream} ${new Date(m.from * 1000).toISOString()} +${m.duration}s` : d.body}: ${d.reason}`,
      );
    }
  }
  if (s.planErrors.length > 0) {
    lines.push("");
    lines.push("Planning errors:");
    for (const e of s.planErrors) lines.push(`  ${e.source}${e.stream ? ` ${e.stream}` : ""}: ${e.message}`);
  }
  return lines.join("\n");
}

/** Per-stream coverage of the retention window. */
export function coverageTable(report: PlanReport, now: number): string {
  // The words of `status`: archive (recorded by the source in the retention window), due (older than
  // the settle margin and the open window).
  const rows = [["source", "stream", "archive", "due", "backed up", "coverage", "lag"]];
  for (const s of report.sources) {
    if (s.paused) rows.push([s.source, "(paused)", "", "", "", "", ""]);
    for (const st of s.streams) {
      const pct = st.copyableSeconds > 0 ? (100 * st.backedUpSeconds) / st.copyableSeconds : 100;
      rows.push([
        s.source,
        st.stream,
        formatDuration(st.recordedSeconds),
        formatDuration(st.copyableSeconds),
        formatDuration(st.backedUpSeconds),
        `${pct.toFixed(pct === 100 ? 0 : 1)}%`,
        st.head > 0 ? formatDuration(now - st.head) : "-",
      ]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
