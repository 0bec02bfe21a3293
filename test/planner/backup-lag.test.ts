/**
 * issue 15 item 4: the lag metric took the oldest head among streams with a copy; a stream never
 * copied (head 0) did not count, so a stream whose every copy fails looked like no lag at all.
 */
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../functions/config/config.ts";
import { sourceLagSeconds } from "../../functions/planner/backup-lag.ts";
import type { SourcePlan, StreamPlan } from "../../functions/planner/plan-backup.ts";

const NOW = 1_800_000_000;
const config = parseConfig(
  JSON.stringify({
    bucket: "dvr-backup-test",
    sources: [
      {
        name: "s1",
        url: "http://s1.example",
        retentionDays: 7,
        streams: ["cam1", { name: "cam2", retentionDays: 30 }, "cam3"],
      },
    ],
  }),
  "test.json",
);
const source = config.sources[0]!;

function stream(name: string, head: number, copyableSeconds: number): StreamPlan {
  return {
    stream: name,
    recordedSeconds: copyableSeconds,
    copyableSeconds,
    backedUpSeconds: 0,
    head,
    windowSeconds: 600,
    planned: 0,
    deferred: 0,
  } as StreamPlan;
}

function plan(streams: StreamPlan[]): SourcePlan {
  return {
    source: "s1",
    paused: false,
    streams,
    planned: [],
    deferred: 0,
    recordsCompacted: 0,
    plannedBytes: 0,
    errors: [],
  };
}

describe("backup lag of a source", () => {
  it("is the newest stored second of the stream furthest behind", () => {
    expect(
      sourceLagSeconds(source, plan([stream("cam1", NOW - 300, 3600), stream("cam3", NOW - 900, 3600)]), NOW),
    ).toBe(900);
  });

  it("counts a stream never copied, with video due, as behind by its whole retention", () => {
    expect(
      sourceLagSeconds(source, plan([stream("cam1", NOW - 300, 3600), stream("cam2", 0, 3600)]), NOW),
    ).toBe(30 * 86400);
    expect(sourceLagSeconds(source, plan([stream("cam3", 0, 60)]), NOW)).toBe(7 * 86400);
  });

  it("leaves out a stream with nothing due yet, and says undefined when no stream has video due", () => {
    expect(sourceLagSeconds(source, plan([stream("cam1", NOW - 300, 3600), stream("cam3", 0, 0)]), NOW)).toBe(
      300,
    );
    expect(sourceLagSeconds(source, plan([stream("cam3", 0, 0)]), NOW)).toBeUndefined();
  });
});
