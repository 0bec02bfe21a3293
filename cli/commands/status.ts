/**
 * `flussonic-backup status`: per source and stream, the archive against the backup (coverage,
 * missing intervals, what is not yet due, lag, bytes stored) and the copy queues. A text table, or
 * `--json`, or a self-contained HTML page with a timeline per stream (`--html <file>`).
 */

import { writeFileSync } from "node:fs";
import { type BackupConfig, checkLeaseCoversCopy } from "../../functions/config/config.ts";
import { COVERAGE_WORDS as W } from "../../functions/domain/coverage-words.ts";
import { marginWarningAt } from "../../functions/domain/deadlines.ts";
import type { Hold } from "../../functions/domain/evidence.ts";
import { readHoldBook } from "../../functions/store/holds.ts";
import { readCost } from "../../ops/cost.ts";
import { formatBytes, formatDuration } from "../../ops/progress.ts";
import { type BackupStatus, readBackupStatus, type StreamStatus } from "../../ops/status.ts";
import { formatPercent, statusPage } from "../../ops/status-page.ts";
import { openBackupTarget, sourceNamed, type TargetOptions } from "./backup-target.ts";
import { errorContext, explainSourceError } from "./error-messages.ts";
import { holdLine } from "./hold.ts";
import { isoTime } from "./time-arg.ts";

export interface StatusOptions extends TargetOptions {
  source?: string | undefined;
  stream?: string | undefined;
  json?: boolean | undefined;
  html?: string | undefined;
  copyTimeoutSeconds: number;
  /** Unix seconds (tests). */
  now?: number;
  out?: { write(s: string): unknown };
}

/** Exit status: 0, or 1 when something is missing or dead-lettered or could not be checked. */
export async function statusCommand(o: StatusOptions): Promise<number> {
  const out = o.out ?? process.stdout;
  const target = await openBackupTarget(o, { flussonic: true, queues: true });
  try {
    checkLeaseCoversCopy(target.config, o.config ?? "the demo's configuration", o.copyTimeoutSeconds);
    if (o.source) sourceNamed(target.config, o.source);
    const status = await readBackupStatus({
      config: target.config,
      store: target.store,
      sqs: target.sqs,
      flussonic: (s) => target.flussonic(s),
      now: o.now ?? Math.floor(Date.now() / 1000),
      copyTimeoutSeconds: o.copyTimeoutSeconds,
      only: { source: o.source, stream: o.stream },
    });
    explainSourceErrors(status, target.config);
    if (o.html) {
      // The page shows what the backup costs too (the `cost` report, from the catalogs of 30 days).
      const cost = await readCost({
        config: target.config,
        store: target.store,
        now: o.now ?? Math.floor(Date.now() / 1000),
        only: { source: o.source, stream: o.stream },
      });
      writeFileSync(o.html, statusPage(status, cost));
      if (!o.json) out.write(`Status page written to ${o.html}\n`);
    }
    // Holds (`hold`): listed when there are any, so a backup without them prints as before.
    const holds: (Hold & { source: string })[] = [];
    for (const s of target.config.sources) {
      if (o.source && s.name !== o.source) continue;
      for (const h of (await readHoldBook(target.store, s.name)).book.holds) {
        if (!o.stream || h.stream === o.stream) holds.push({ ...h, source: s.name });
      }
    }
    if (o.json) out.write(`${JSON.stringify(holds.length > 0 ? { ...status, holds } : status, null, 2)}\n`);
    else if (!o.html) {
      out.write(statusText(status));
      if (holds.length > 0)
        out.write(
          `Holds (kept past retention until released):\n${holds.map((h) => `  ${holdLine(h)}\n`).join("")}`,
        );
    }
    return healthy(status) ? 0 : 1;
  } finally {
    await target.close();
  }
}

/**
 * A source's errors (the source unreachable, a 401/403, a stream it does not know) in the words of
 * run's summary: the source URL, the configuration field and what to do.
 */
function explainSourceErrors(status: BackupStatus, config: BackupConfig): void {
  const ctx = { ...errorContext, config };
  for (const s of status.sources) {
    const source = config.sources.find((x) => x.name === s.source);
    if (!source) continue;
    const explain = (m: string) => {
      const [, unknown = "", detail = m] = /^(archive unknown: )?([\s\S]*)$/.exec(m) ?? [];
      return `${unknown}${explainSourceError(detail, source, ctx)}`;
    };
    s.errors = s.errors.map((e) => (e.startsWith("archive unknown: ") ? explain(e) : e));
    for (const st of s.streams) if (st.error) st.error = explain(st.error);
  }
}

/**
 * True when every due second is backed up, nothing is dead-lettered and nothing was unknown. A
 * retired stream (gone at the source, or out of the config) has nothing left to copy: it is
 * reported, not counted against the backup.
 */
export function healthy(status: BackupStatus): boolean {
  return status.sources.every(
    (s) =>
      s.errors.length === 0 &&
      (s.queue?.deadLettered ?? 0) === 0 &&
      s.streams.every(
        (st) =>
          st.retired !== undefined ||
          (st.error === undefined && st.coverage.missing !== undefined && st.coverage.missing.length === 0),
      ),
  );
}

/** The text table and, under it, the missing intervals and the queues. */
export function statusText(status: BackupStatus): string {
  const rows = [
    [
      "source",
      "stream",
      "archive",
      "due",
      "backed up",
      "coverage",
      W.notYetCopied,
      W.notYetDue,
      "lag",
      "margin",
      "stored",
      "",
    ],
  ];
  const details: string[] = [];
  for (const s of status.sources) {
    for (const st of s.streams) {
      const c = st.coverage;
      const dur = (n: number | undefined) => (n === undefined ? "?" : formatDuration(n));
      rows.push([
        s.source,
        st.stream,
        dur(c.archiveSeconds),
        dur(c.dueSeconds),
        dur(c.coveredSeconds),
        c.percent === undefined ? "?" : formatPercent(c.percent),
        c.missing === undefined ? "?" : `${c.missing.length} (${formatDuration(total(c.missing))})`,
        c.notYetDue === undefined ? "?" : formatDuration(total(c.notYetDue)),
        c.lagSeconds === undefined ? "-" : formatDuration(c.lagSeconds),
        st.marginSeconds === undefined
          ? "-"
          : `${formatDuration(st.marginSeconds)}${st.marginSeconds < marginWarningAt(status.marginWarningSeconds, st.sourceDepthSeconds) ? " LOW" : ""}`,
        `${formatBytes(st.bytes)} / ${st.windows} w`,
        st.retired ? st.retired.reason : st.error ? "FAILED" : "",
      ]);
      if (st.error) details.push(`  ${s.source} ${st.stream}: ${st.error}`);
      if (
        st.marginSeconds !== undefined &&
        st.marginSeconds < marginWarningAt(status.marginWarningSeconds, st.sourceDepthSeconds)
      )
        details.push(
          `  ${s.source} ${st.stream}: margin ${formatDuration(st.marginSeconds)}, below ${formatDuration(marginWarningAt(status.marginWarningSeconds, st.sourceDepthSeconds))}: the source deletes the oldest second not backed up at ${isoTime(status.at + st.marginSeconds)} (it keeps ${formatDuration(st.sourceDepthSeconds ?? 0)}, from its ${st.depthBasis})`,
        );
      if ((st.lostAtSourceSeconds ?? 0) > 0)
        details.push(
          `  ${s.source} ${st.stream}: lost at the source before backup: ${formatDuration(st.lostAtSourceSeconds)} (deleted by the source before they were copied; apart from gaps ${W.notRecorded})`,
        );
      if (st.retired) details.push(`  ${s.source} ${st.stream}: ${retiredText(st)}`);
      for (const r of (c.missing ?? []).slice(0, 10)) {
        details.push(
          `  ${s.source} ${st.stream}: ${W.notYetCopied} ${isoTime(r.from)} – ${isoTime(r.to)} (${formatDuration(r.to - r.from)})`,
        );
      }
      if ((c.missing?.length ?? 0) > 10)
        details.push(`  ${s.source} ${st.stream}: … ${c.missing!.length - 10} more`);
      for (const r of c.notYetDue ?? []) {
        details.push(
          `  ${s.source} ${st.stream}: ${W.notYetDue} ${isoTime(r.from)} – ${isoTime(r.to)} (${formatDuration(r.to - r.from)}, settle margin and open window)`,
        );
      }
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) =>
    r
      .map((c, i) => (i >= 2 && i < r.length - 1 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd(),
  );
  lines.push("");
  for (const s of status.sources) {
    const q = s.queue;
    lines.push(
      `${s.source}${s.paused ? ` (paused${s.pausedReason ? `: ${s.pausedReason}` : ""})` : ""}: ${q ? `${q.queued} window(s) queued, ${q.inFlight} in flight, ${q.deadLettered} dead-lettered` : "queues unknown"}` +
        (q?.deadLettered ? " (see the reasons with `redrive --dry-run`; fix the cause, then `redrive`)" : ""),
    );
    for (const e of s.errors) lines.push(`  ${e}`);
  }
  if (details.length) lines.push("", ...details);
  lines.push(
    "",
    `At ${isoTime(status.at)} (UTC); archive = recorded by the source in the retention window; due = older than the settle margin (${formatDuration(status.settleSeconds)}) and the open window.`,
  );
  return `${lines.join("\n")}\n`;
}

/** What happened to a stream nobody plans any more, and what that means for its backup. */
function retiredText(st: StreamStatus): string {
  const r = st.retired!;
  const last = r.lastStoredSecond > 0 ? `newest copy ends ${isoTime(r.lastStoredSecond)}` : "nothing stored";
  const pending = `${st.pendingRecords} completion record(s) pending`;
  const kept = `${formatDuration(st.coverage.backedUpSeconds)} stored, kept until retention expires it`;
  return r.reason === "gone at the source"
    ? `gone at the source (no longer listed there: deleted or renamed; ${last}); ${kept}; what it recorded after its newest copy (the settle margin and the open window) was not copied; ${pending}`
    : `not in the config any more (${last}); ${kept}; ${pending}`;
}

function total(ranges: { from: number; to: number }[]): number {
  return ranges.reduce((n, r) => n + r.to - r.from, 0);
}
