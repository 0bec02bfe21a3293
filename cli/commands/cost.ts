/**
 * `flussonic-backup cost [--since <time>] [--json]`: per source and stream, bytes stored by storage
 * class, the S3 requests and Lambda GB-seconds the copies counted, per source the S3 and SQS
 * requests the planner counted, and the month projected at list prices (ops/cost.ts).
 */

import { type CostReport, readCost } from "../../ops/cost.ts";
import { formatBytes } from "../../ops/progress.ts";
import { openBackupTarget, sourceNamed, type TargetOptions } from "./backup-target.ts";
import { isoTime, parseTimeArg } from "./time-arg.ts";

export interface CostOptions extends TargetOptions {
  since?: string | undefined;
  source?: string | undefined;
  stream?: string | undefined;
  json?: boolean | undefined;
  /** Unix seconds (tests). */
  now?: number;
  out?: { write(s: string): unknown };
}

export async function costCommand(o: CostOptions): Promise<number> {
  const out = o.out ?? process.stdout;
  const now = o.now ?? Math.floor(Date.now() / 1000);
  const since = o.since === undefined ? undefined : parseTimeArg("--since", o.since);
  const target = await openBackupTarget(o, { flussonic: false });
  try {
    if (o.source) sourceNamed(target.config, o.source);
    const report = await readCost({
      config: target.config,
      store: target.store,
      now,
      ...(since !== undefined ? { since } : {}),
      only: { source: o.source, stream: o.stream },
    });
    out.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : costText(report));
    return 0;
  } finally {
    await target.close();
  }
}

const usd = (n: number) => `$${n < 10 ? n.toFixed(2) : n.toFixed(0)}`;

export function costText(r: CostReport): string {
  const header = ["source", "stream", "windows", "stored (by class)", "S3 PUT/GET", "SQS", "GB-s", "month"];
  const rows = r.streams.map((s) => [
    s.source,
    s.stream,
    String(s.windows),
    Object.entries(s.bytesByClass)
      .map(([c, b]) => `${formatBytes(b)} ${c}`)
      .join(", ") || "-",
    `${s.requests.put}/${s.requests.get}${s.counted < s.windows ? ` (${s.counted} of ${s.windows} counted${s.estimated ? `; the other ${s.estimated.windows} estimated ${s.estimated.put}/${s.estimated.get}` : ""})` : ""}`,
    String(s.requests.sqs),
    s.gbSeconds === undefined ? "-" : s.gbSeconds.toFixed(1),
    `${usd(s.month.totalUsd)} (storage ${usd(s.month.storageUsd)}, requests ${usd(s.month.requestsUsd)}, Lambda ${usd(s.month.lambdaUsd)})`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `${cells.map((c, i) => c.padEnd(widths[i]!)).join("  ")}`.trimEnd();
  const lines = [
    `Cost of the windows copied since ${isoTime(r.since)} (projected month at ${r.prices.region} list prices)`,
    "",
    line(header),
    ...rows.map(line),
    "",
    ...r.planner.map(
      (p) =>
        `Planner of ${p.source}: ${p.runs} run(s), ${p.requests.put} PUT-class, ${p.requests.get} GET-class and ${p.requests.sqs} SQS requests; about ${usd(p.monthUsd)} a month`,
    ),
    ...(r.planner.length > 0 ? [""] : []),
    `Total: ${formatBytes(r.total.bytes)} stored, ${r.total.requests.put} PUT-class, ${r.total.requests.get} GET-class and ${r.total.requests.sqs} SQS requests, ${r.total.gbSeconds === undefined ? "no Lambda GB-seconds" : `${r.total.gbSeconds.toFixed(1)} Lambda GB-seconds`}; about ${usd(r.total.monthUsd)} a month`,
    ...r.notes.map((n) => `- ${n}`),
  ];
  if (r.streams.length === 0) lines.splice(2, 2, "No window copied in that time.");
  return `${lines.join("\n")}\n`;
}
