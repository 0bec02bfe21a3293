/**
 * issue 22 item 3: per stream, the margin (time left until the source deletes the oldest second the
 * backup lacks), the seconds the planner foresees lost, and the seconds lost at the source before
 * backup (for good) as Prometheus series; the margin series goes when the stream lacks nothing.
 */
import { expect, test } from "vitest";
import { parseConfig } from "../../functions/config/config.ts";
import type { PlanReport, StreamPlan } from "../../functions/planner/plan-backup.ts";
import { BackupMetrics } from "../../local/metrics.ts";

const config = parseConfig(
  JSON.stringify({ bucket: "metrics-test", sources: [{ name: "src1", url: "http://127.0.0.1:1" }] }),
  "metrics-test.json",
);

function report(at: number, race: Partial<StreamPlan>): PlanReport {
  const stream: StreamPlan = {
    stream: "cam1",
    recordedSeconds: 600,
    copyableSeconds: 600,
    backedUpSeconds: 300,
    head: at - 60,
    windowSeconds: 600,
    planned: 0,
    plannedBytes: 0,
    deferred: 0,
    ...race,
  };
  const source = {
    source: "src1",
    paused: false,
    streams: [stream],
    planned: [],
    deferred: 0,
    recordsCompacted: 0,
    plannedBytes: 0,
    errors: [],
  };
  return { at, sources: [source] };
}

async function value(metrics: BackupMetrics, name: string): Promise<string | undefined> {
  const text = await metrics.registry.metrics();
  return text
    .split("\n")
    .find((l) => l.startsWith(`${name}{source="src1",stream="cam1"}`))
    ?.split(" ")
    .at(-1);
}

test("margin, seconds at risk and seconds lost at the source are series per stream", async () => {
  const metrics = new BackupMetrics({ config, scheduleMs: 300_000, nowMs: () => 1_000_000 });
  metrics.planned(
    report(1_000, {
      marginSeconds: 1800,
      atRisk: [{ from: 100, to: 400, lostAt: 7300 }],
      lostAtSourceSeconds: 900,
    }),
  );
  expect(await value(metrics, "flussonic_backup_stream_margin_seconds")).toBe("1800");
  expect(await value(metrics, "flussonic_backup_stream_at_risk_seconds")).toBe("300");
  expect(await value(metrics, "flussonic_backup_stream_lost_at_source_seconds")).toBe("900");
  // Caught up: nothing lacking, no margin series; the loss stays counted.
  metrics.planned(report(1_300, { atRisk: [], lostAtSourceSeconds: 900 }));
  expect(await value(metrics, "flussonic_backup_stream_margin_seconds")).toBeUndefined();
  expect(await value(metrics, "flussonic_backup_stream_at_risk_seconds")).toBe("0");
  expect(await value(metrics, "flussonic_backup_stream_lost_at_source_seconds")).toBe("900");
});
