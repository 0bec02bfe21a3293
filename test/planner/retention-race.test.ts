/**
 * A source whose retention overtakes a lagging backup. The source keeps 2 hours of cam1 and 3 hours
 * of cam2 (its DVR `expiration`, reported through its API); both started recording an hour before
 * the test's start, cam1 with a 5-minute gap. The backup's copiers are down (nothing is copied) and
 * its cap (10 kbit/s for 16 kbit/s streams) could not keep up anyway. The test clock runs the
 * source's retention on faster than real time. The planner must: queue the windows the source
 * deletes first ahead of everything else, say the margin is short before any second is lost,
 * predict which seconds will be lost, and once the source has deleted seconds the backup lacked,
 * count them as lost at the source before backup, the gap apart (not recorded).
 */
import { afterEach, describe, expect, it } from "vitest";
import { statusText } from "../../cli/commands/status.ts";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { planBackup, type SourcePlan } from "../../functions/planner/plan-backup.ts";
import { CopyQueue } from "../../functions/queue/copy-queue.ts";
import { lineLog } from "../../local/line-log.ts";
import { readBackupStatus } from "../../ops/status.ts";
import { statusPage } from "../../ops/status-page.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const START = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
const GAP = { from: START - 50 * 60, to: START - 45 * 60 };

function stream(plan: SourcePlan, name: string) {
  return plan.streams.find((s) => s.stream === name)!;
}

describe("the source's retention overtakes a lagging backup", () => {
  it("copies the oldest at risk first, warns before a loss, and counts what was lost as such", async () => {
    h = await startHarness({
      sim: {
        streams: [
          {
            name: "cam1",
            bitrateBps: 16_000,
            depthSeconds: 2 * HOUR,
            ranges: [
              { from: START - HOUR, to: GAP.from },
              { from: GAP.to, to: Number.POSITIVE_INFINITY },
            ],
          },
          {
            name: "cam2",
            bitrateBps: 16_000,
            depthSeconds: 3 * HOUR,
            ranges: [{ from: START - HOUR, to: Number.POSITIVE_INFINITY }],
          },
        ],
      },
      source: { maxConcurrentCopies: 1, maxBandwidthMbps: 0.01 },
      config: { marginWarningSeconds: 40 * 60 },
    });
    const rt = await h.runtime();
    const warned = () => h!.logs.filter((l) => l.includes("margin below the warning threshold"));

    // 20 minutes in (a dry run: the backup is down, nothing is queued): cam1's oldest second goes
    // in 40 minutes, at the threshold, not below it: no warning.
    h.clock.advance(20 * 60);
    const calm = (
      await planBackup({
        config: h.config,
        store: rt.store,
        queue: new CopyQueue(rt.sqs, () => "unused"),
        flussonic: () => rt.clients.get("src1")!,
        now: h.clock.now,
        copyTimeoutSeconds: rt.copyTimeoutSeconds,
        logger: lineLog("info", (l) => h!.logs.push(l)),
        dryRun: true,
      })
    ).sources[0]!;
    expect(stream(calm, "cam1").marginSeconds).toBe(START - HOUR + 2 * HOUR - h.clock.now());
    expect(stream(calm, "cam1").depthBasis).toBe("expiration");
    expect(stream(calm, "cam1").sourceDepthSeconds).toBe(2 * HOUR);
    expect(warned()).toEqual([]);

    // 10 minutes later the backup plans again (its copiers still down): cam1's oldest second goes
    // in 30 minutes.
    h.clock.advance(10 * 60);
    const race = (await rt.plan()).sources[0]!;
    const cam1 = stream(race, "cam1");
    expect(cam1.marginSeconds).toBe(30 * 60);
    // Said in the run's output, before any second is lost.
    expect(warned().some((l) => l.includes("stream=cam1"))).toBe(true);
    expect(warned().some((l) => l.includes("stream=cam2"))).toBe(false);
    expect(cam1.lostAtSourceSeconds).toBe(0);
    // Earliest deadline first across the streams: cam1's oldest windows lead the queue, ahead of
    // cam2 (deleted an hour later) and of the live edge (in no danger).
    const first = race.planned.slice(0, 3);
    expect(first.every((m) => m.stream === "cam1")).toBe(true);
    expect(first[0]!.from).toBeLessThanOrEqual(START - HOUR + 20 * 60 + 60);
    for (let i = 1; i < race.planned.length; i++) {
      const deadline = (m: (typeof race.planned)[number]) => m.from + (m.stream === "cam1" ? 2 : 3) * HOUR;
      expect(deadline(race.planned[i]!)).toBeGreaterThanOrEqual(deadline(race.planned[i - 1]!));
    }
    // The cap cannot save everything: the planner says which seconds will be lost, and when.
    const atRisk = cam1.atRisk ?? [];
    expect(atRisk.length).toBeGreaterThan(0);
    for (const r of atRisk) expect(r.lostAt).toBe(r.from + 2 * HOUR);

    // Nothing is copied; the source deletes on. 50 minutes later it holds cam1 from START - 40 min
    // on: of what the backup lacked, [START - 1 h, START - 40 min) is gone, the 5-minute gap apart.
    h.clock.advance(50 * 60);
    const after = (await rt.plan()).sources[0]!;
    const lost = stream(after, "cam1");
    const expected = 20 * 60 - (GAP.to - GAP.from);
    expect(lost.lostThisRun).toBe(expected);
    expect(lost.lostAtSourceSeconds).toBe(expected);
    expect(
      h.logs.some((l) => l.includes("lost at the source before backup") && l.includes("stream=cam1")),
    ).toBe(true);
    // For good: the next run counts them again, not twice.
    h.clock.advance(60);
    const later = stream((await rt.plan()).sources[0]!, "cam1");
    expect(later.lostAtSourceSeconds).toBeGreaterThanOrEqual(expected);
    expect(later.lostAtSourceSeconds! - expected).toBe(later.lostThisRun);
    expect((await rt.store.readManifest("src1", "cam1")).manifest.lostAtSource?.seconds).toBe(
      later.lostAtSourceSeconds,
    );
    // `status` (text, --json, the HTML page) says the margin and the loss, apart from "not recorded".
    const status = await readBackupStatus({
      config: h.config,
      store: rt.store,
      sqs: rt.sqs,
      flussonic: () => rt.clients.get("src1")!,
      now: h.clock.now(),
      copyTimeoutSeconds: rt.copyTimeoutSeconds,
    });
    const cam1Status = status.sources[0]!.streams.find((st) => st.stream === "cam1")!;
    expect(cam1Status.lostAtSourceSeconds).toBe(later.lostAtSourceSeconds);
    expect(cam1Status.marginSeconds).toBe(later.marginSeconds);
    expect(cam1Status.depthBasis).toBe("expiration");
    const text = statusText(status);
    expect(text).toMatch(
      /^\s+src1 cam1: margin .*, below 40m00s: the source deletes the oldest second not backed up at /m,
    );
    expect(text).toMatch(/^\s+src1 cam1: lost at the source before backup: 16m00s \(/m);
    expect(JSON.parse(JSON.stringify(status)).sources[0].streams[0].lostAtSourceSeconds).toBe(
      later.lostAtSourceSeconds,
    );
    const page = statusPage(status);
    expect(page).toContain("<th>margin</th><th>lost at the source before backup</th>");
  }, 60_000);

  it("trusts the moving archive start over the API's expiration when a disk limit deletes sooner", async () => {
    h = await startHarness({
      sim: {
        streams: [
          {
            name: "cam1",
            bitrateBps: 16_000,
            depthSeconds: 24 * HOUR,
            diskDepthSeconds: 2 * HOUR,
            ranges: [{ from: START - 5 * HOUR, to: Number.POSITIVE_INFINITY }],
          },
        ],
      },
    });
    const rt = await h.runtime();
    // First look: the oldest second is two hours back, which a young archive could show too.
    const first = stream((await rt.plan()).sources[0]!, "cam1");
    expect(first.depthBasis).toBe("expiration");
    expect(first.sourceDepthSeconds).toBe(24 * HOUR);
    // It moved: the source deletes by disk space, two hours back, whatever its expiration says.
    h.clock.advance(600);
    const second = stream((await rt.plan()).sources[0]!, "cam1");
    expect(second.depthBasis).toBe("moving start");
    expect(second.sourceDepthSeconds).toBe(2 * HOUR);
  }, 60_000);
});

describe("a first backup", () => {
  it("says once that the oldest seconds go first, without the warning, when none will be lost", async () => {
    // The source keeps 1 hour, all of it recorded: the backup starts with its oldest second a few
    // minutes from deletion, a margin far below the threshold (half the depth), yet the cap saves it.
    h = await startHarness({
      sim: {
        streams: [
          {
            name: "cam1",
            bitrateBps: 16_000,
            depthSeconds: HOUR,
            ranges: [{ from: START - 2 * HOUR, to: Number.POSITIVE_INFINITY }],
          },
        ],
      },
    });
    const rt = await h.runtime();
    const plan = (await rt.plan()).sources[0]!;
    expect(stream(plan, "cam1").marginSeconds).toBeLessThan(HOUR / 2);
    expect(stream(plan, "cam1").atRisk ?? []).toEqual([]);
    expect(
      h.logs.filter((l) => l.includes("first backup: the oldest seconds are copied first")),
    ).toHaveLength(1);
    expect(h.logs.filter((l) => l.includes("margin below the warning threshold"))).toEqual([]);
  });
});
