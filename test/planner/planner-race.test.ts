/**
 * Two planners at once: a scheduled event delivered twice, `run --once` beside the service, two
 * services pointed at one bucket. Two runtimes, each a planner and a pool of copiers, share one
 * bucket and one queue; S3 is reached through dev/kit/s3-fault-proxy.ts, which enforces
 * conditional writes as S3 does (the embedded emulator ignores If-Match / If-None-Match). Round
 * after round the live edge moves and both plan at the same moment, each folding in the completion
 * records the other's copiers wrote, while both pools copy. At the end: every catalog lists each
 * stored window exactly once and only objects that are there; every manifest covers what is stored;
 * no completion record is left; every due second is stored byte-exact; and no window was copied
 * twice: the planners lease first (one conditional manifest write) and queue only what their own
 * write leased. Before lease-first (queue, then lease) 18 of 36 windows were copied twice here.
 */
import { afterEach, describe, expect, it } from "vitest";
import { expectExactCopies, storedWindows } from "../../dev/kit/backup-checks.ts";
import { expectHonestBookkeeping } from "../../dev/kit/bookkeeping-checks.ts";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { errorsOf, signedAs } from "../../dev/kit/planner-reports.ts";
import { S3FaultProxy } from "../../dev/kit/s3-fault-proxy.ts";
import { clipRanges } from "../../functions/domain/ranges.ts";
import { planBackup } from "../../functions/planner/plan-backup.ts";
import { CopyQueue } from "../../functions/queue/copy-queue.ts";
import type { LocalRuntime } from "../../local/runtime.ts";

const NOW = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
const STREAMS = ["cam1", "cam2", "cam3"].map((name, i) => ({
  name,
  bitrateBps: 16_000 + 8_000 * i,
  ranges: [{ from: NOW - 2 * HOUR, to: Number.POSITIVE_INFINITY }],
}));
const ROUNDS = Number(process.env.RACE_ROUNDS ?? 6);

let h: Harness | undefined;
let proxy: S3FaultProxy | undefined;
afterEach(async () => {
  await h?.close();
  await proxy?.close();
  h = undefined;
  proxy = undefined;
});

describe("two planners and two copier pools on one bucket", () => {
  it("a planner whose catalog write is held while another folds in newer records loses no catalog entry", async () => {
    h = await startHarness({
      sim: { streams: STREAMS.slice(0, 1) },
      source: { retentionDays: 1 / 24, maxConcurrentCopies: 3 },
    });
    proxy = await S3FaultProxy.start(h.emulator.endpoints.s3Endpoint!);
    const as = (accessKeyId: string) => signedAs(h!.emulator.endpoints, proxy!, accessKeyId);
    const a = await h.runtime({ endpoints: as("planner-a") });
    const b = await h.runtime({ endpoints: as("planner-b") });
    // The backlog is copied; its completion records wait for the next plan.
    await a.startCopiers();
    await a.plan();
    await a.drain();
    h.clock.advance(1200);
    // Planner A folds those records in, but its catalog write (made before the manifest write that
    // leases) is held in the network. Meanwhile planner B folds in the same records, leases and
    // queues the new windows, they are copied, and B folds in their records too (the old and the
    // new), writes catalog and manifest, and deletes the records. (Before lease-first, A queued the
    // new windows before its held write and B planned nothing new: the premise changed.)
    let release = (): void => undefined;
    const held = new Promise<void>((r) => {
      release = r;
    });
    const stall = proxy.inject({
      op: "PutObject",
      kind: "catalog",
      client: "planner-a",
      fault: "stall-request",
      until: held,
      times: Number.POSITIVE_INFINITY,
    });
    const planA = a.plan();
    await expect.poll(() => stall.hits, { timeout: 10_000, interval: 20 }).toBeGreaterThan(0);
    const planB = await b.plan();
    expect(errorsOf(planB)).toEqual([]);
    expect(planB.sources[0]!.recordsCompacted).toBeGreaterThan(0);
    expect(planB.sources[0]!.planned.length, "B leased and queued the new windows").toBeGreaterThan(0);
    await a.drain();
    const foldB = await b.plan();
    expect(errorsOf(foldB)).toEqual([]);
    expect(foldB.sources[0]!.recordsCompacted, "B folded in the new windows' records").toBeGreaterThan(0);
    release();
    const reportA = await planA;
    expect(errorsOf(reportA)).toEqual([]);
    expect(reportA.sources[0]!.planned, "A gave up the windows B leased and stored").toEqual([]);
    expect(proxy.preconditionFailed, "A's held write found B's catalog").toBeGreaterThan(0);
    await a.stopCopiers();
    proxy.clear();
    const last = await b.plan();
    expect(errorsOf(last)).toEqual([]);
    expect(last.sources[0]!.planned).toEqual([]);
    const now = h.clock.now();
    await expectHonestBookkeeping(h, a.store, ["cam1"], now - HOUR);
    const boundary = Math.floor((now - h.config.settleSeconds) / 600) * 600;
    await expectExactCopies(h, "cam1", clipRanges(h.sim.rangesOf("cam1"), now - HOUR, boundary));
  }, 60_000);

  it(`${ROUNDS} rounds: catalogs list each window once, nothing lost, no window copied twice`, async () => {
    h = await startHarness({
      sim: { streams: STREAMS },
      source: { retentionDays: 1 / 24, maxConcurrentCopies: 3 },
    });
    proxy = await S3FaultProxy.start(h.emulator.endpoints.s3Endpoint!);
    const endpoints = { ...h.emulator.endpoints, s3Endpoint: proxy.url };
    const a = await h.runtime({ endpoints, partSize: 5 * 1024 * 1024 });
    const b = await h.runtime({ endpoints, partSize: 5 * 1024 * 1024 });
    const both: LocalRuntime[] = [a, b];
    await Promise.all(both.map((rt) => rt.startCopiers()));
    const errors: string[] = [];
    const planBoth = async () => {
      const reports = await Promise.all(both.map((rt) => rt.plan()));
      for (const r of reports) errors.push(...errorsOf(r));
      return reports.reduce((n, r) => n + r.sources.reduce((m, s) => m + s.planned.length, 0), 0);
    };
    const drainBoth = async () => {
      for (const rt of both) await rt.drain();
    };

    for (let round = 0; round < ROUNDS; round++) {
      await planBoth();
      // Half the rounds plan while the copies of the last plan still run and record.
      if (round % 2 === 1) await drainBoth();
      h.clock.advance(600);
    }
    await drainBoth();
    // Both fold in the last records (and plan what the last rounds left) until nothing is left.
    for (let i = 0; i < 4 && (await planBoth()) > 0; i++) await drainBoth();
    await drainBoth();
    await Promise.all(both.map((rt) => rt.stopCopiers()));
    expect(await planBoth(), "nothing left to plan").toBe(0);

    expect(errors, "planning errors").toEqual([]);
    expect(proxy.preconditionFailed, "the planners raced (conditional writes refused)").toBeGreaterThan(0);
    const now = h.clock.now();
    await expectHonestBookkeeping(
      h,
      a.store,
      STREAMS.map((s) => s.name),
      now - HOUR,
    );
    const boundary = Math.floor((now - h.config.settleSeconds) / 600) * 600;
    for (const s of STREAMS) {
      await expectExactCopies(h, s.name, clipRanges(h.sim.rangesOf(s.name), now - HOUR, boundary));
    }
    // Lease first: a window is queued only by the planner whose conditional write leased it.
    const copies = new Map<string, number>();
    for (const e of h.tally.events) {
      if (e.type !== "copied") continue;
      const k = `${e.message.stream}/${e.message.from}-${e.message.duration}`;
      copies.set(k, (copies.get(k) ?? 0) + 1);
    }
    let windows = 0;
    for (const s of STREAMS) windows += (await storedWindows(h, s.name)).length;
    const twice = [...copies.values()].filter((n) => n === 2).length;
    expect(twice, "windows copied twice").toBe(0);
    expect(Math.max(...copies.values()), "copies of one window").toBe(1);
    expect(h.tally.events.filter((e) => e.type === "dead-lettered")).toEqual([]);
    process.stdout.write(
      `\nplanner race: ${ROUNDS} rounds, ${windows} windows stored, ${copies.size} copied, ${twice} copied twice, ${proxy.preconditionFailed} conditional writes refused\n`,
    );
  }, 120_000);

  it("a planner that leases and then cannot queue delays those windows by the lease, no longer", async () => {
    h = await startHarness({
      sim: { streams: STREAMS.slice(0, 1) },
      source: { maxConcurrentCopies: 3 },
    });
    const rt = await h.runtime();
    const queueUrl = rt.queues.get("src1")!.url;
    // The planner dies between its manifest write and its send, as far as the queue can tell: the
    // send goes to a queue that does not exist, so the leases are written and nothing is queued.
    const crashed = await planBackup({
      config: h.config,
      store: rt.store,
      queue: new CopyQueue(rt.sqs, () => `${queueUrl}-gone`),
      flussonic: () => rt.clients.get("src1")!,
      now: h.clock.now,
      copyTimeoutSeconds: rt.copyTimeoutSeconds,
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    expect(crashed.sources[0]!.planned).toEqual([]);
    expect(errorsOf(crashed).join("\n")).toMatch(/could not queue window/);
    const leaseUntil = h.clock.now() + h.config.leaseSeconds;
    const leased = (await rt.store.readManifest("src1", "cam1")).manifest.leases;
    expect(leased.length, "windows leased before the send").toBeGreaterThan(0);
    expect(leased.every((l) => l.until === leaseUntil)).toBe(true);
    const key = (w: { from: number; duration: number }) => `${w.from}-${w.duration}`;
    const orphaned = new Set(leased.map(key));

    // While the lease runs, no planner queues them (nor anything else of theirs).
    const during = await rt.plan();
    expect(errorsOf(during)).toEqual([]);
    expect(during.sources[0]!.planned.filter((m) => orphaned.has(key(m)))).toEqual([]);
    h.clock.advance(h.config.leaseSeconds - 1);
    const lastSecond = await rt.plan();
    expect(lastSecond.sources[0]!.planned.filter((m) => orphaned.has(key(m)))).toEqual([]);

    // The lease over, the next run plans them again, and they are copied.
    h.clock.advance(1);
    const after = await rt.plan();
    expect(errorsOf(after)).toEqual([]);
    // Planned again: every leased second is in a window of this run (the window length may differ
    // now that the stream's bitrate is known).
    const planned = after.sources[0]!.planned;
    const inPlanned = (l: { from: number; duration: number }) =>
      planned.some((m) => m.from <= l.from && l.from + l.duration <= m.from + m.duration);
    expect(
      leased.filter((l) => !inPlanned(l)).map(key),
      "leased windows not planned after the lease",
    ).toEqual([]);
    await rt.startCopiers();
    await rt.drain();
    await rt.stopCopiers();
    const copied = h.tally.events.flatMap((e) => (e.type === "copied" ? [e.message] : []));
    expect(
      leased
        .filter((l) => !copied.some((m) => m.from <= l.from && l.from + l.duration <= m.from + m.duration))
        .map(key),
      "orphaned windows copied once the lease ended",
    ).toEqual([]);
  }, 60_000);
});
