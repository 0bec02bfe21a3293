/**
 * Planner promises checked directly (README "How it works"): a leased window is not queued again
 * until its lease ends; the newest hour of every stream is queued whatever the budget, every window
 * of it; a planner event naming sources plans only those.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { normalizeRanges, subtractRanges } from "../../functions/domain/ranges.ts";
import { planBackup } from "../../functions/planner/plan-backup.ts";
import { CopyQueue } from "../../functions/queue/copy-queue.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const key = (m: { stream: string; from: number; duration: number }) => `${m.stream} ${m.from}+${m.duration}`;

describe("the planner", () => {
  it("does not queue a leased window again until its lease ends, then queues it again", async () => {
    h = await startHarness({ sim: { streams: 2 }, config: { leaseSeconds: 1200 } });
    const rt = await h.runtime();
    const first = (await rt.plan()).sources[0]!;
    expect(first.planned.length).toBeGreaterThan(0);
    const leased = first.planned.map(key).sort();
    for (const stream of ["cam1", "cam2"]) {
      const { manifest } = await rt.store.readManifest("src1", stream);
      expect(manifest.leases.map((l) => key({ stream, ...l })).sort()).toEqual(
        leased.filter((k) => k.startsWith(`${stream} `)),
      );
      for (const l of manifest.leases) expect(l.until).toBe(h.clock.now() + 1200);
    }

    // Nothing copied yet, all still queued: a second run queues none of it again.
    h.clock.advance(1199);
    const second = (await rt.plan()).sources[0]!;
    expect(second.planned.map(key).filter((k) => leased.includes(k))).toEqual([]);
    expect(await rt.pendingMessages()).toBe(first.planned.length + second.planned.length);

    // The lease has ended and no copy was recorded: every second of it still in the retention
    // (6 h, which moved on by the 20 minutes) is queued again (near the live edge, maybe cut into
    // other windows).
    h.clock.advance(2);
    const third = (await rt.plan()).sources[0]!;
    const retentionStart = h.clock.now() - 0.25 * 86_400;
    for (const stream of ["cam1", "cam2"]) {
      const seconds = (plan: typeof first) =>
        normalizeRanges(
          plan.planned
            .filter((m) => m.stream === stream)
            .map((m) => ({ from: m.from, to: m.from + m.duration })),
        );
      const due = subtractRanges(seconds(first), [{ from: 0, to: retentionStart }]);
      expect(due.reduce((n, r) => n + r.to - r.from, 0)).toBeGreaterThan(3 * HOUR);
      expect(subtractRanges(due, seconds(third)), `${stream}: leased seconds not queued again`).toEqual([]);
    }
  });

  it("queues every window of the newest hour of every stream, even when the budget covers less than one", async () => {
    const streams = Array.from({ length: 4 }, (_, i) => ({
      name: `cam${i + 1}`,
      bitrateBps: 512_000,
      ranges: [{ from: 0, to: 4e9 }],
    }));
    // 3 hours kept, 0.1 Mbit/s for the source: a 10-minute window takes ~100 min of the budget's
    // (2 copies x (3600 - 60) s) / 2 = 59 min.
    h = await startHarness({ sim: { streams }, source: { retentionDays: 3 / 24, maxBandwidthMbps: 0.1 } });
    const rt = await h.runtime();
    const report = (await rt.plan()).sources[0]!;
    const horizon = h.clock.now() - h.config.settleSeconds;
    for (const p of report.streams) {
      const planned = normalizeRanges(
        report.planned
          .filter((m) => m.stream === p.stream)
          .map((m) => ({ from: m.from, to: m.from + m.duration })),
      );
      const newestHour = {
        from: horizon - HOUR,
        to: Math.floor(horizon / p.windowSeconds) * p.windowSeconds,
      };
      expect(subtractRanges([newestHour], planned), `${p.stream}: newest hour not queued`).toEqual([]);
      // The rest of the archive waits for the budget.
      expect(p.deferred, p.stream).toBeGreaterThan(0);
      expect(planned[0]!.from, p.stream).toBeGreaterThan(horizon - 2 * HOUR);
    }
  });

  it("plans only the sources a planner event names ({sources: [...]})", async () => {
    h = await startHarness({ sim: { streams: 1 }, more: [{ name: "src2", sim: { streams: 1 } }] });
    const rt = await h.runtime();
    const report = await planBackup({
      config: h.config,
      store: rt.store,
      queue: new CopyQueue(rt.sqs, (s) => rt.queues.get(s)!.url),
      flussonic: (s) => rt.clients.get(s)!,
      now: h.clock.now,
      copyTimeoutSeconds: rt.copyTimeoutSeconds,
      logger: { debug() {}, info() {}, warn() {}, error() {} },
      onlySources: ["src2"],
    });
    expect(report.sources.map((s) => s.source)).toEqual(["src2"]);
    expect(report.sources[0]!.planned.length).toBeGreaterThan(0);
    expect(report.sources[0]!.planned.every((m) => m.source === "src2")).toBe(true);
    // src1 untouched: no message, no manifest, nothing asked of its Flussonic.
    expect(await rt.pendingMessages()).toBe(report.sources[0]!.planned.length);
    expect(await h.keys(`${h.config.prefix}src1/`)).toEqual([]);
    expect(h.sim.requests).toEqual([]);
  });
});
