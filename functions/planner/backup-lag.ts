/**
 * Backup lag, the number the lag alarm watches: how far the stream furthest behind is from live.
 * A stream that has a copy is as far behind as its newest stored second. A stream with video due
 * but nothing stored yet (never copied: new, or every copy failing) is as far behind as the start
 * of its retention window, the oldest second it should hold: without this it would not count at
 * all, and a stream that never copies would look like no lag.
 */
import { listedStreams, type SourceConfig } from "../config/config.ts";
import type { SourcePlan } from "./plan-backup.ts";

/** Seconds behind live of the stream furthest behind, or undefined when no stream has video due. */
export function sourceLagSeconds(source: SourceConfig, plan: SourcePlan, now: number): number | undefined {
  const retention = new Map((listedStreams(source) ?? []).map((s) => [s.name, s.retentionDays]));
  let lag: number | undefined;
  for (const st of plan.streams) {
    let behind: number | undefined;
    if (st.head > 0) behind = now - st.head;
    else if (st.copyableSeconds > 0)
      behind = Math.ceil((retention.get(st.stream) ?? source.retentionDays) * 86400);
    if (behind !== undefined) lag = Math.max(lag ?? 0, behind);
  }
  return lag;
}

/**
 * The source's race with its own retention, for metrics: the shortest margin of its streams
 * (undefined when none lacks anything), the seconds foreseen lost (`atRisk`) and those the source
 * deleted before they were copied in this run.
 */
export function sourceRace(plan: SourcePlan): {
  marginSeconds: number | undefined;
  secondsAtRisk: number;
  secondsLost: number;
} {
  let marginSeconds: number | undefined;
  let secondsAtRisk = 0;
  let secondsLost = 0;
  for (const st of plan.streams) {
    if (st.marginSeconds !== undefined)
      marginSeconds = Math.min(marginSeconds ?? st.marginSeconds, st.marginSeconds);
    for (const r of st.atRisk ?? []) secondsAtRisk += r.to - r.from;
    secondsLost += st.lostThisRun ?? 0;
  }
  return { marginSeconds, secondsAtRisk, secondsLost };
}
