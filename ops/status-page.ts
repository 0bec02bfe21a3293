/**
 * The `status --html` page: one self-contained file (inline CSS and SVG, no scripts, no external
 * assets) with a summary table and, per stream, a timeline of the retention window: what the
 * source recorded, what the backup holds, what is not yet copied, and what is not due yet (the words
 * and colours of functions/domain/coverage-words.ts).
 */

import { COVERAGE_COLORS, COVERAGE_WORDS as W } from "../functions/domain/coverage-words.ts";
import { marginWarningAt } from "../functions/domain/deadlines.ts";
import type { TimeRange } from "../functions/domain/ranges.ts";
import type { CostReport } from "./cost.ts";
import { formatBytes, formatDuration } from "./progress.ts";
import type { BackupStatus, StreamStatus } from "./status.ts";

const WIDTH = 1100;
const LEFT = 110;
const LANE = 18;
const COLORS = {
  archive: COVERAGE_COLORS.recorded,
  backup: COVERAGE_COLORS.stored,
  missing: COVERAGE_COLORS.notYetCopied,
  due: COVERAGE_COLORS.notYetDue,
};

export function statusPage(status: BackupStatus, cost?: CostReport): string {
  const rows: string[] = [];
  const sections: string[] = [];
  for (const s of status.sources) {
    const q = s.queue;
    const queue = q
      ? `${q.queued} queued · ${q.inFlight} in flight · <span class="${q.deadLettered ? "bad" : ""}">${q.deadLettered} dead-lettered</span>`
      : "queues unknown";
    sections.push(
      `<h2>Source ${esc(s.source)}${s.paused ? " <small>(paused)</small>" : ""}</h2><p class="queue">Copy queue: ${queue}</p>` +
        s.errors.map((e) => `<p class="bad">${esc(e)}</p>`).join("") +
        s.streams
          .map((st) =>
            st.error
              ? `<p class="bad">${esc(st.stream)}: ${esc(st.error)}</p>`
              : st.retired
                ? `<p>${esc(st.stream)}: ${esc(st.retired.reason)}; ${st.pendingRecords} completion record(s) pending</p>`
                : "",
          )
          .join(""),
    );
    for (const st of s.streams) {
      const c = st.coverage;
      const missing = c.missing;
      const pctClass = c.percent === undefined ? "" : c.percent >= 100 ? "good" : "bad";
      rows.push(
        `<tr><td>${esc(s.source)}</td><td><a href="#${anchor(s.source, st.stream)}">${esc(st.stream)}</a></td>` +
          `<td class="num ${pctClass}">${c.percent === undefined ? "?" : formatPercent(c.percent)}</td>` +
          `<td class="num">${missing === undefined ? "?" : `${missing.length} (${formatDuration(sum(missing))})`}</td>` +
          `<td class="num">${c.notYetDue === undefined ? "?" : formatDuration(sum(c.notYetDue))}</td>` +
          `<td class="num">${c.lagSeconds === undefined ? "-" : formatDuration(c.lagSeconds)}</td>` +
          `<td class="num ${st.marginSeconds !== undefined && st.marginSeconds < marginWarningAt(status.marginWarningSeconds, st.sourceDepthSeconds) ? "bad" : ""}">${st.marginSeconds === undefined ? "-" : formatDuration(st.marginSeconds)}</td>` +
          `<td class="num ${(st.lostAtSourceSeconds ?? 0) > 0 ? "bad" : ""}">${formatDuration(st.lostAtSourceSeconds ?? 0)}</td>` +
          `<td class="num">${formatBytes(st.bytes)}</td><td class="num">${st.windows}</td><td class="num">${st.leased}</td></tr>`,
      );
      sections.push(streamSection(status, s.source, st));
    }
  }
  const at = iso(status.at);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Backup status ${esc(at)}</title>
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1f2933;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 4px}h3{font-size:15px;margin:18px 0 2px}
.meta,.queue,.detail{color:#52606d;margin:2px 0}
table{border-collapse:collapse;margin:12px 0}th,td{padding:4px 10px;border-bottom:1px solid #e4e7eb;text-align:left}
th{background:#f5f7fa;font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums}
.good{color:#2b8a3e;font-weight:600}.bad{color:#c92a2a;font-weight:600}
.legend span{display:inline-block;margin-right:16px}.legend i{display:inline-block;width:14px;height:10px;margin-right:5px;vertical-align:middle}
svg{display:block;margin:4px 0 2px}svg text{font:11px system-ui,sans-serif;fill:#52606d}
ul.not-copied{margin:2px 0 0;padding-left:20px;color:#52606d;font-variant-numeric:tabular-nums}
</style></head><body>
<h1>Backup status</h1>
<p class="meta">Bucket <b>${esc(status.bucket)}</b>, prefix <code>${esc(status.prefix)}</code> · at ${esc(at)} · settle margin ${formatDuration(status.settleSeconds)} (times in UTC)</p>
<p class="legend"><span><i style="background:${COLORS.archive}"></i>${W.recorded} (a gap: ${W.notRecorded}, nothing to copy)</span><span><i style="background:${COLORS.backup}"></i>${W.stored}</span><span><i style="background:${COLORS.missing}"></i>${W.notYetCopied} (recorded, not in the backup)</span><span><i style="background:${COLORS.due}"></i>${W.notYetDue} (settle margin, open window)</span></p>
<table><thead><tr><th>source</th><th>stream</th><th>coverage</th><th>${W.notYetCopied}</th><th>not yet due</th><th>lag</th><th>margin</th><th>lost at the source before backup</th><th>stored</th><th>windows</th><th>leased</th></tr></thead>
<tbody>${rows.join("\n")}</tbody></table>
${cost ? costSection(cost) : ""}
${sections.join("\n")}
</body></html>
`;
}

/** The `cost` report (ops/cost.ts) as a table: per stream, bytes by class, requests, the month. */
function costSection(r: CostReport): string {
  const usd = (n: number) => `$${n.toFixed(2)}`;
  const rows = r.streams.map(
    (s) =>
      `<tr><td>${esc(s.source)}</td><td>${esc(s.stream)}</td><td class="num">${s.windows}</td>` +
      `<td>${esc(
        Object.entries(s.bytesByClass)
          .map(([c, b]) => `${formatBytes(b)} ${c}`)
          .join(", ") || "-",
      )}</td>` +
      `<td class="num">${s.requests.put} / ${s.requests.get}</td><td class="num">${s.requests.sqs}</td><td class="num">${s.gbSeconds === undefined ? "-" : s.gbSeconds.toFixed(1)}</td>` +
      `<td class="num">${usd(s.month.storageUsd)}</td><td class="num">${usd(s.month.requestsUsd)}</td><td class="num">${usd(s.month.lambdaUsd)}</td><td class="num"><b>${usd(s.month.totalUsd)}</b></td></tr>`,
  );
  return `<h2>Cost</h2><p class="meta">Windows copied since ${esc(iso(r.since))}; the month projected at ${esc(r.prices.region)} list prices (<code>flussonic-backup cost</code>).</p>
<table><thead><tr><th>source</th><th>stream</th><th>windows</th><th>stored (by class)</th><th>S3 PUT / GET</th><th>SQS</th><th>Lambda GB-s</th><th>storage</th><th>requests</th><th>Lambda</th><th>month</th></tr></thead>
<tbody>${rows.join("\n")}</tbody></table>
${
  r.planner.length > 0
    ? `<table><thead><tr><th>source</th><th>planner runs</th><th>S3 PUT / GET</th><th>SQS</th><th>month</th></tr></thead>
<tbody>${r.planner
        .map(
          (p) =>
            `<tr><td>${esc(p.source)}</td><td class="num">${p.runs}</td><td class="num">${p.requests.put} / ${p.requests.get}</td><td class="num">${p.requests.sqs}</td><td class="num"><b>${usd(p.monthUsd)}</b></td></tr>`,
        )
        .join("\n")}</tbody></table>`
    : ""
}
${r.notes.map((n) => `<p class="detail">${esc(n)}</p>`).join("")}`;
}

function streamSection(status: BackupStatus, source: string, st: StreamStatus): string {
  const from = st.retentionStart;
  const to = status.at;
  const span = Math.max(1, to - from);
  const x = (t: number) => LEFT + ((Math.min(Math.max(t, from), to) - from) / span) * (WIDTH - LEFT - 10);
  const bars = (ranges: TimeRange[] | undefined, y: number, color: string, min: number, what: string) =>
    (ranges ?? [])
      .map((r) => {
        const w = Math.max(min, x(r.to) - x(r.from));
        return `<rect x="${x(r.from).toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${LANE}" fill="${color}"><title>${what} ${iso(r.from)} – ${iso(r.to)} (${formatDuration(r.to - r.from)})</title></rect>`;
      })
      .join("");
  const lanes = [
    { label: "recorded", y: 8 },
    { label: "backup", y: 8 + LANE + 6 },
    { label: "not copied", y: 8 + 2 * (LANE + 6) },
  ];
  const height = 8 + 3 * (LANE + 6) + 20;
  const ticks = axisTicks(from, to)
    .map(
      (t) =>
        `<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="4" y2="${height - 18}" stroke="#e4e7eb"/>` +
        `<text x="${x(t).toFixed(1)}" y="${height - 4}" text-anchor="middle">${tickLabel(t, to - from)}</text>`,
    )
    .join("");
  const c = st.coverage;
  const svg =
    `<svg width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="timeline of ${esc(st.stream)}">` +
    ticks +
    lanes
      .map(
        (l) =>
          `<text x="4" y="${l.y + 13}">${l.label}</text><rect x="${LEFT}" y="${l.y}" width="${WIDTH - LEFT - 10}" height="${LANE}" fill="#f5f7fa"/>`,
      )
      .join("") +
    bars(st.archive, lanes[0]!.y, COLORS.archive, 0.5, "recorded") +
    bars(
      st.backedUp.filter((r) => r.to > from),
      lanes[1]!.y,
      COLORS.backup,
      0.5,
      "backed up",
    ) +
    bars(c.notYetDue, lanes[2]!.y, COLORS.due, 2, W.notYetDue) +
    bars(c.missing, lanes[2]!.y, COLORS.missing, 3, W.notYetCopied) +
    `</svg>`;
  const holes = c.missing ?? [];
  const list = holes.length
    ? `<ul class="not-copied">${holes
        .slice(0, 20)
        .map(
          (r) =>
            `<li>${W.notYetCopied} ${iso(r.from)} – ${iso(r.to)} (${formatDuration(r.to - r.from)})</li>`,
        )
        .join("")}${holes.length > 20 ? `<li>… and ${holes.length - 20} more</li>` : ""}</ul>`
    : "";
  const summary =
    c.percent === undefined
      ? "archive unknown"
      : `${formatPercent(c.percent)} of the due archive backed up, ${holes.length} range(s) ${W.notYetCopied} (${formatDuration(sum(holes))}), ${formatDuration(sum(c.notYetDue ?? []))} ${W.notYetDue}`;
  return (
    `<h3 id="${anchor(source, st.stream)}">${esc(st.stream)} <small>(${esc(st.format)}, ${formatDuration(st.windowSeconds)} windows)</small></h3>` +
    `<p class="detail">${summary}; lag ${c.lagSeconds === undefined ? "-" : formatDuration(c.lagSeconds)}; ${formatBytes(st.bytes)} in ${st.windows} window(s)</p>` +
    svg +
    list
  );
}

function axisTicks(from: number, to: number): number[] {
  const steps = [60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];
  const step = steps.find((s) => (to - from) / s <= 12) ?? 604800;
  const out: number[] = [];
  for (let t = Math.ceil(from / step) * step; t <= to; t += step) out.push(t);
  return out;
}

function tickLabel(t: number, span: number): string {
  const s = iso(t);
  return span > 2 * 86400 ? `${s.slice(5, 10)} ${s.slice(11, 16)}` : s.slice(11, 16);
}

function sum(ranges: TimeRange[]): number {
  return ranges.reduce((n, r) => n + r.to - r.from, 0);
}

/** `99.9%`: rounded down, so only a complete backup shows 100%. */
export function formatPercent(p: number): string {
  return `${p >= 100 ? "100" : (Math.floor(p * 10) / 10).toFixed(1)}%`;
}

function iso(t: number): string {
  return new Date(t * 1000).toISOString().replace(".000Z", "Z");
}

function anchor(source: string, stream: string): string {
  return `s-${encodeURIComponent(`${source}/${stream}`).replace(/%/g, "_")}`;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
