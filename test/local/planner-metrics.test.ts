/**
 * The planner's metrics from real planner runs (README "Metrics"): the seconds each stream misses,
 * and when the planner last ran well (a failed run leaves it alone).
 */
import { afterEach, expect, test } from "vitest";
import { type Harness, startHarness } from "../../dev/kit/harness.ts";
import { sample } from "../../dev/kit/service-process.ts";
import { BackupMetrics } from "../../local/metrics.ts";
import { runOnce } from "../../local/once.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

test("stream_missing_seconds is what each stream's plan lacks, 0 once copied; planner_last_success_timestamp_seconds moves only on a good run", async () => {
  h = await startHarness({ sim: { streams: 2 }, source: { retentionDays: 1 / 24 } });
  let nowMs = 1_790_000_000_000;
  const metrics = new BackupMetrics({ config: h.config, scheduleMs: 300_000, nowMs: () => nowMs });
  const rt = await h.runtime();
  const text = () => metrics.registry.metrics();
  expect(sample(await text(), "flussonic_backup_planner_last_success_timestamp_seconds")).toBe(0);

  const before = await rt.plan();
  metrics.planned(before);
  let t = await text();
  for (const st of before.sources[0]!.streams) {
    expect(st.copyableSeconds).toBeGreaterThan(3000); // an hour's retention, nothing stored yet
    expect(sample(t, "flussonic_backup_stream_missing_seconds", { source: "src1", stream: st.stream })).toBe(
      st.copyableSeconds,
    );
  }
  expect(sample(t, "flussonic_backup_planner_last_success_timestamp_seconds")).toBe(1_790_000_000);

  nowMs += 300_000;
  metrics.planFailed();
  expect(sample(await text(), "flussonic_backup_planner_last_success_timestamp_seconds")).toBe(1_790_000_000);

  const run = await runOnce(rt, h.tally);
  expect(run.ok).toBe(true);
  metrics.planned(run.finalPlan);
  t = await text();
  for (const stream of ["cam1", "cam2"])
    expect(sample(t, "flussonic_backup_stream_missing_seconds", { source: "src1", stream })).toBe(0);
  expect(sample(t, "flussonic_backup_planner_last_success_timestamp_seconds")).toBe(1_790_000_300);
});
