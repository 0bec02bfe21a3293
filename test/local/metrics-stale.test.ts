/**
 * Per-stream series of streams that vanished from the source are removed (issue 20 §6): 100
 * planner runs of 10 changing stream names left 1,000 `stream_lag` series. A source that was not
 * planned (paused, or the source itself failed) keeps its series: its streams did not vanish.
 */
import { expect, test } from "vitest";
import { parseConfig } from "../../functions/config/config.ts";
import type { PlanReport, SourcePlan, StreamPlan } from "../../functions/planner/plan-backup.ts";
import { BackupMetrics } from "../../local/metrics.ts";

const config = parseConfig(
  JSON.stringify({
    bucket: "metrics-test",
    schedule: "rate(5 minutes)",
    sources: [{ name: "src1", url: "http://127.0.0.1:1" }],
  }),
  "metrics-test.json",
);

function stream(name: string, at: number): StreamPlan {
  return {
    stream: name,
    recordedSeconds: 600,
    copyableSeconds: 600,
    backedUpSeconds: 300,
    head: at - 60,
    windowSeconds: 600,
    planned: 0,
    plannedBytes: 0,
    deferred: 0,
  };
}

function report(at: number, names: string[], extra: Partial<SourcePlan> = {}): PlanReport {
  const source: SourcePlan = {
    source: "src1",
    paused: false,
    streams: names.map((n) => stream(n, at)),
    planned: [],
    deferred: 0,
    recordsCompacted: 0,
    plannedBytes: 0,
    errors: [],
    ...extra,
  };
  return { at, sources: [source] };
}

async function series(metrics: BackupMetrics, name: string): Promise<string[]> {
  const text = await metrics.registry.metrics();
  return text.split("\n").filter((l) => l.startsWith(`${name}{`));
}

test("stream_lag and missing series of streams gone from the source are removed; a source not planned keeps its series", async () => {
  const metrics = new BackupMetrics({ config, scheduleMs: 300_000, nowMs: () => 1_000_000 });
  for (let run = 0; run < 100; run++) {
    metrics.planned(
      report(
        1_000 + run,
        Array.from({ length: 10 }, (_, i) => `cam-${run}-${i}`),
      ),
    );
  }
  const lag = await series(metrics, "flussonic_backup_stream_lag_seconds");
  expect(lag).toHaveLength(10);
  expect(lag.every((l) => l.includes('stream="cam-99-'))).toBe(true);
  expect(await series(metrics, "flussonic_backup_stream_missing_seconds")).toHaveLength(10);

  // Paused, or the source unreachable: nothing planned, nothing vanished.
  metrics.planned(report(2_000, [], { paused: true }));
  metrics.planned(
    report(2_001, [], { errors: [{ stream: undefined, message: "HTTP 503", kind: "source" }] }),
  );
  expect(await series(metrics, "flussonic_backup_stream_lag_seconds")).toHaveLength(10);
  // A stream whose own planning failed keeps its series too.
  metrics.planned(
    report(2_002, ["cam-99-0"], { errors: [{ stream: "cam-99-1", message: "x", kind: "source" }] }),
  );
  expect(await series(metrics, "flussonic_backup_stream_lag_seconds")).toHaveLength(2);
});
