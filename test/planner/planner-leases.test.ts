/**
 * The planner's lease decisions, each checked by what the next run queues: windows still leased
 * count against the budget, and a planner that loses the manifest race to another queues only what
 * its own write leased, never what the other leased (lease first; dev/kit/s3-fault-proxy.ts enforces
 * the conditional write as S3 does).
 */
import { afterEach, describe, expect, it } from "vitest";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { S3FaultProxy } from "../../dev/kit/s3-fault-proxy.ts";
import type { CopyMessage } from "../../functions/domain/archive.ts";
import { planBackup } from "../../functions/planner/plan-backup.ts";
import { CopyQueue } from "../../functions/queue/copy-queue.ts";

let h: Harness | undefined;
let proxy: S3FaultProxy | undefined;
afterEach(async () => {
  await h?.close();
  await proxy?.close();
  h = undefined;
  proxy = undefined;
});

const key = (m: { stream: string; from: number; duration: number }) => `${m.stream} ${m.from}+${m.duration}`;

describe("the planner's leases", () => {
  it("windows still leased use up the budget: nothing more is back-filled until their leases end", async () => {
    // 6 hours of a 128 kbit/s stream, 1 Mbit/s for 2 copiers: the budget ((2 x (3600 - 60)) / 2 s
    // of copying) covers the newest hour and part of the back-fill, not all of it.
    h = await startHarness({
      sim: { streams: [{ name: "cam1", bitrateBps: 128_000, ranges: [{ from: 0, to: 4e9 }] }] },
      source: { maxBandwidthMbps: 1 },
      config: { minWindowSeconds: 600 },
    });
    const rt = await h.runtime();
    const first = (await rt.plan()).sources[0]!;
    const horizon1 = h.clock.now() - h.config.settleSeconds;
    const backfilled = first.planned.filter((m) => m.from + m.duration <= horizon1 - HOUR);
    expect(backfilled.length, "the first run back-fills within its budget").toBeGreaterThan(0);
    expect(first.deferred, "and leaves some for later").toBeGreaterThan(0);

    // Ten minutes on, nothing copied: only the new live edge is queued.
    h.clock.advance(600);
    const second = (await rt.plan()).sources[0]!;
    const older = (m: CopyMessage) => m.from + m.duration <= horizon1;
    expect(second.planned.filter(older).map(key)).toEqual([]);
    expect(second.planned.length).toBeGreaterThan(0);

    // Once the leases have ended (an hour), the back-fill goes on, from the oldest seconds again.
    h.clock.advance(HOUR);
    const third = (await rt.plan()).sources[0]!;
    expect(third.planned.filter(older).length).toBeGreaterThan(0);
  }, 60_000);

  it("deferred counts the windows left, with the window across the live edge's start cut in two", async () => {
    // Two hours recorded, uncapped: every due window is planned at once. The live edge starts an
    // hour before the horizon, off the 600 s grid, so the window across it is cut in two pieces;
    // both are planned, and nothing is left for later (it read -1 when counted on the whole range).
    h = await startHarness({
      sim: { streams: [{ name: "cam1", bitrateBps: 64_000, ranges: [{ from: 0, to: 4e9 }] }] },
      source: { retentionDays: 2 / 24 },
      config: { minWindowSeconds: 600 },
    });
    const rt = await h.runtime();
    const horizon = h.clock.now() - h.config.settleSeconds;
    expect((horizon - HOUR) % 600, "the edge's start is off the window grid").not.toBe(0);
    const first = (await rt.plan()).sources[0]!;
    const cam1 = first.streams.find((s) => s.stream === "cam1")!;
    const edgeStart = horizon - HOUR;
    expect(first.planned.some((m) => m.from + m.duration === edgeStart)).toBe(true);
    expect(first.planned.some((m) => m.from === edgeStart)).toBe(true);
    expect(cam1.planned).toBe(first.planned.length);
    expect(cam1.deferred).toBe(0);
  }, 60_000);

  it("a planner that loses the manifest race queues only what its own write leased", async () => {
    h = await startHarness({
      sim: { streams: 1 },
      source: { retentionDays: 1 / 24 },
      config: { leaseSeconds: 1200 },
    });
    proxy = await S3FaultProxy.start(h.emulator.endpoints.s3Endpoint!);
    const as = (accessKeyId: string) => ({
      ...h!.emulator.endpoints,
      s3Endpoint: proxy!.url,
      credentials: { accessKeyId, secretAccessKey: "embedded" },
    });
    const a = await h.runtime({ endpoints: as("planner-a") });
    const b = await h.runtime({ endpoints: as("planner-b") });
    const t0 = h.clock.now();
    // Planner A queues the stream's windows, but its manifest write is held in the network.
    let release = (): void => undefined;
    const held = new Promise<void>((r) => {
      release = r;
    });
    const stall = proxy.inject({
      op: "PutObject",
      kind: "manifest",
      client: "planner-a",
      fault: "stall-request",
      until: held,
      times: 1,
    });
    const planA = a.plan();
    await expect.poll(() => stall.hits, { timeout: 10_000, interval: 20 }).toBeGreaterThan(0);
    // Meanwhile planner B, whose clock is 5 minutes behind, plans the same stream and writes first:
    // its leases end 5 minutes before A's.
    h.clock.seconds = t0 - 300;
    const planB = (await b.plan()).sources[0]!;
    expect(planB.planned.length).toBeGreaterThan(0);
    release();
    const reportA = (await planA).sources[0]!;
    expect(reportA.errors).toEqual([]);
    expect(proxy.preconditionFailed, "A's write found B's manifest").toBeGreaterThan(0);
    const queuedByA = reportA.planned.map(key);
    const queuedByB = planB.planned.map(key);
    expect(
      queuedByA.filter((k) => queuedByB.includes(k)),
      "no window queued by both",
    ).toEqual([]);

    const { manifest } = await a.store.readManifest("src1", "cam1");
    const leases = manifest.leases.map((l) => `${key({ stream: "cam1", ...l })} until ${l.until}`);
    for (const k of queuedByA) expect(leases, k).toContain(`${k} until ${t0 + 1200}`);
    for (const m of planB.planned) expect(leases).toContain(`${key(m)} until ${t0 - 300 + 1200}`);
    expect(new Set(leases).size, "each lease once").toBe(leases.length);

    // B's leases have ended, A's have not: none of A's windows is queued again.
    h.clock.seconds = t0 + 1000;
    const next = (await b.plan()).sources[0]!;
    expect(next.planned.map(key).filter((k) => queuedByA.includes(k))).toEqual([]);
  }, 60_000);
});

describe("the planner's leases, what they cost and when they are written", () => {
  it("a longer copier timeout leaves less of the lease to start copies in: less is back-filled per run", async () => {
    const backfilledSeconds = async (copyTimeoutSeconds: number) => {
      const harness = await startHarness({
        sim: { streams: [{ name: "cam1", bitrateBps: 128_000, ranges: [{ from: 0, to: 4e9 }] }] },
        source: { maxBandwidthMbps: 1 },
        config: { minWindowSeconds: 600 },
      });
      try {
        const rt = await harness.runtime({ copyTimeoutSeconds });
        const report = (await rt.plan()).sources[0]!;
        // The per-stream figures add up to what was queued.
        expect(report.streams.map((p) => p.planned)).toEqual([report.planned.length]);
        // And the bytes they estimate: 128 kbit/s is 16,000 bytes a second.
        const bytes = report.planned.reduce((n, m) => n + m.duration * 16_000, 0);
        expect(report.plannedBytes).toBe(bytes);
        expect(report.streams.map((p) => p.plannedBytes)).toEqual([bytes]);
        const edge = harness.clock.now() - harness.config.settleSeconds - HOUR;
        return report.planned.filter((m) => m.from + m.duration <= edge).reduce((n, m) => n + m.duration, 0);
      } finally {
        await harness.close();
      }
    };
    // Lease 3600 s: copies start within 3540 s of a 60 s timeout, 2400 s of a 1200 s one.
    const short = await backfilledSeconds(60);
    const long = await backfilledSeconds(1200);
    expect(long).toBeGreaterThan(0);
    expect(long).toBeLessThan(short);
  }, 60_000);

  it("a dry run queues nothing and leases nothing, and reports what it would queue", async () => {
    h = await startHarness({ sim: { streams: 1 } });
    const rt = await h.runtime();
    const report = await planBackup({
      config: h.config,
      store: rt.store,
      queue: new CopyQueue(rt.sqs, (s) => rt.queues.get(s)!.url),
      flussonic: (s) => rt.clients.get(s)!,
      now: h.clock.now,
      copyTimeoutSeconds: rt.copyTimeoutSeconds,
      logger: { debug() {}, info() {}, warn() {}, error() {} },
      dryRun: true,
    });
    const src = report.sources[0]!;
    expect(src.errors).toEqual([]);
    expect(src.planned.length).toBeGreaterThan(0);
    expect(src.planned.every((m) => m.source === "src1" && m.stream === "cam1")).toBe(true);
    expect(await rt.pendingMessages()).toBe(0);
    expect(await h.keys()).toEqual([]);
    // The real run then queues the same windows.
    expect((await rt.plan()).sources[0]!.planned.map(key)).toEqual(src.planned.map(key));
  });

  it("writes a manifest and catalogs only when something changed, and deletes the records it folded in", async () => {
    h = await startHarness({ sim: { streams: 1 }, source: { retentionDays: 1 / 24 } });
    proxy = await S3FaultProxy.start(h.emulator.endpoints.s3Endpoint!);
    const rt = await h.runtime({ endpoints: { ...h.emulator.endpoints, s3Endpoint: proxy.url } });
    const writes = () => ({
      manifest: proxy!.count("PutObject", "manifest"),
      catalog: proxy!.count("PutObject", "catalog"),
      index: proxy!.count("PutObject", "index"),
    });
    expect((await rt.plan()).sources[0]!.planned.length).toBeGreaterThan(0);
    expect(writes()).toEqual({ manifest: 1, catalog: 0, index: 0 });
    // Everything leased, nothing copied: the next run has nothing to write.
    expect((await rt.plan()).sources[0]!.planned).toEqual([]);
    expect(writes()).toEqual({ manifest: 1, catalog: 0, index: 0 });
    // Copied: the next run folds the records in, ends their leases and deletes the records.
    await rt.startCopiers();
    await rt.drain();
    await rt.stopCopiers();
    const records = await h.keys(`${h.config.prefix}.backup/records/`);
    expect(records.length).toBeGreaterThan(0);
    const folded = (await rt.plan()).sources[0]!;
    expect(folded.errors).toEqual([]);
    expect(folded.recordsCompacted).toBe(records.length);
    expect(await h.keys(`${h.config.prefix}.backup/records/`)).toEqual([]);
    const { manifest } = await rt.store.readManifest("src1", "cam1");
    expect(
      manifest.leases.filter((l) => records.some((r) => r.endsWith(`/${l.from}-${l.duration}.json`))),
    ).toEqual([]);
    expect(manifest.windows).toBe(records.length);
    // The records went into the day's catalog too: each copied window listed.
    const days = new Set<string>();
    const catalogs = await h.keys(`${h.config.prefix}.backup/catalog/`);
    expect(catalogs.length).toBeGreaterThan(0);
    for (const key of catalogs) days.add(/([^/]+)\.json$/.exec(key)![1]!);
    const listed = (await Promise.all([...days].map((d) => rt.store.readCatalog("src1", "cam1", d)))).flatMap(
      (c) => c.windows.map((w) => `${w.from}-${w.duration}`),
    );
    expect(listed.sort()).toEqual(records.map((r) => /([^/]+)\.json$/.exec(r)![1]!).sort());
    const afterFold = writes();
    expect(afterFold.manifest).toBe(2);
    // Nothing new since: a run with no record and no window to lease writes nothing at all.
    expect((await rt.plan()).sources[0]!.planned).toEqual([]);
    expect(writes()).toEqual(afterFold);
  }, 60_000);

  it("a planner whose write lost gives up only the leases another writer took meanwhile, and queues the rest", async () => {
    h = await startHarness({ sim: { streams: 1 }, source: { retentionDays: 1 / 24 } });
    proxy = await S3FaultProxy.start(h.emulator.endpoints.s3Endpoint!);
    const rt = await h.runtime({ endpoints: { ...h.emulator.endpoints, s3Endpoint: proxy.url } });
    const now = h.clock.now();
    // What the planner chooses (a dry run writes nothing and queues nothing).
    const chosen = (
      await planBackup({
        config: h.config,
        store: rt.store,
        queue: new CopyQueue(rt.sqs, (s) => rt.queues.get(s)!.url),
        flussonic: (s) => rt.clients.get(s)!,
        now: h.clock.now,
        copyTimeoutSeconds: rt.copyTimeoutSeconds,
        logger: { debug() {}, info() {}, warn() {}, error() {} },
        dryRun: true,
      })
    ).sources[0]!.planned;
    expect(chosen.length, "several windows to lease").toBeGreaterThan(2);
    // Its lease-first write is held in the network; meanwhile another writer leases a minute inside
    // one of those windows (the second chosen): only that window is taken from the planner.
    let release = (): void => undefined;
    const held = new Promise<void>((r) => {
      release = r;
    });
    const stall = proxy.inject({ op: "PutObject", kind: "manifest", fault: "stall-request", until: held });
    const planning = rt.plan();
    await expect.poll(() => stall.hits, { timeout: 10_000, interval: 20 }).toBe(1);
    const taken = chosen[1]!;
    const theirs = { from: taken.from + 60, duration: 60, until: now + 900 };
    const { manifest: before } = await rt.store.readManifest("src1", "cam1");
    const written = await rt.store.writeManifest({ ...before, leases: [theirs], updatedAt: now }, undefined);
    expect(written).toBe(true);
    release();
    const report = (await planning).sources[0]!;
    expect(report.errors).toEqual([]);
    expect(proxy.preconditionFailed, "the held write found the other writer's manifest").toBe(1);
    const rest = chosen.filter((m) => m !== taken);
    expect(report.planned.map(key)).toEqual(rest.map(key));
    expect(await rt.pendingMessages()).toBe(rest.length);
    const { manifest } = await rt.store.readManifest("src1", "cam1");
    expect(manifest.leases).toEqual([
      theirs,
      ...rest.map((m) => ({ from: m.from, duration: m.duration, until: m.leaseUntil })),
    ]);
  }, 60_000);

  it("folds the records of a stream the run does not plan (no longer in the config) into its manifest and catalog", async () => {
    h = await startHarness({ sim: { streams: 2 }, source: { retentionDays: 1 / 24 } });
    const rt = await h.runtime();
    expect((await rt.plan()).sources[0]!.planned.some((m) => m.stream === "cam2")).toBe(true);
    await rt.startCopiers();
    await rt.drain();
    await rt.stopCopiers();
    const folder = `${h.config.prefix}.backup/records/src1/cam2/`;
    const records = await h.keys(folder);
    expect(records.length).toBeGreaterThan(0);
    // cam2 taken out of the config: this run plans cam1 only, and folds cam2's records in all the same.
    const config = { ...h.config, sources: [{ ...h.config.sources[0]!, streams: ["cam1"] }] };
    const narrowed = await h.runtime({ config });
    const report = (await narrowed.plan()).sources[0]!;
    expect(report.errors).toEqual([]);
    expect(report.streams.map((p) => p.stream)).toEqual(["cam1"]);
    expect(await h.keys(folder)).toEqual([]);
    const { manifest } = await rt.store.readManifest("src1", "cam2");
    expect(manifest.windows).toBe(records.length);
    expect(manifest.leases, "the copied windows' leases ended").toEqual([]);
    const windows = records
      .map((k) => /(\d+)-(\d+)\.json$/.exec(k)!)
      .map((m) => ({ from: +m[1]!, duration: +m[2]! }));
    const seconds = manifest.covered.reduce((n, r) => n + r.to - r.from, 0);
    expect(seconds).toBe(windows.reduce((n, w) => n + w.duration, 0));
    const days = new Set(
      (await h.keys(`${h.config.prefix}.backup/catalog/src1/cam2/`)).map((k) => k.slice(-15, -5)),
    );
    const listed = (await Promise.all([...days].map((d) => rt.store.readCatalog("src1", "cam2", d)))).flatMap(
      (c) => c.windows.map((w) => `${w.from}-${w.duration}`),
    );
    expect(listed.sort()).toEqual(windows.map((w) => `${w.from}-${w.duration}`).sort());
  }, 60_000);

  it("leases and queues again the windows of a stream nothing else changed about, once their leases end", async () => {
    // Recorded from 3 h to 2 h ago, well inside the retention (6 h) and before the live hour:
    // between two runs neither the source nor the manifest changes (nothing copied, nothing past
    // the retention); only the leases end.
    const start = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
    h = await startHarness({
      sim: { streams: [{ name: "cam1", ranges: [{ from: start - 3 * HOUR, to: start - 2 * HOUR }] }] },
      config: { leaseSeconds: 1200 },
    });
    expect(h.clock.now()).toBe(start);
    const rt = await h.runtime();
    const first = (await rt.plan()).sources[0]!;
    expect(first.planned.length).toBeGreaterThan(0);
    h.clock.advance(1201);
    const second = (await rt.plan()).sources[0]!;
    expect(second.errors).toEqual([]);
    expect(second.planned.map(key)).toEqual(first.planned.map(key));
    expect(await rt.pendingMessages()).toBe(2 * first.planned.length);
    const { manifest } = await rt.store.readManifest("src1", "cam1");
    expect(manifest.leases.map((l) => `${key({ stream: "cam1", ...l })} until ${l.until}`)).toEqual(
      first.planned.map((m) => `${key(m)} until ${h!.clock.now() + 1200}`),
    );
  }, 60_000);

  it("when two planners choose the same windows in the same second, the loser queues none of them and each lease is held once", async () => {
    h = await startHarness({ sim: { streams: 1 }, source: { retentionDays: 1 / 24 } });
    proxy = await S3FaultProxy.start(h.emulator.endpoints.s3Endpoint!);
    const as = (accessKeyId: string) => ({
      ...h!.emulator.endpoints,
      s3Endpoint: proxy!.url,
      credentials: { accessKeyId, secretAccessKey: "embedded" },
    });
    const a = await h.runtime({ endpoints: as("planner-a") });
    const b = await h.runtime({ endpoints: as("planner-b") });
    let release = (): void => undefined;
    const held = new Promise<void>((r) => {
      release = r;
    });
    const stall = proxy.inject({
      op: "PutObject",
      kind: "manifest",
      client: "planner-a",
      fault: "stall-request",
      until: held,
      times: 1,
    });
    const planA = a.plan();
    await expect.poll(() => stall.hits, { timeout: 10_000, interval: 20 }).toBeGreaterThan(0);
    const planB = (await b.plan()).sources[0]!;
    release();
    const reportA = (await planA).sources[0]!;
    expect(reportA.errors).toEqual([]);
    expect(proxy.preconditionFailed).toBeGreaterThan(0);
    // Lease first: A, whose write lost, gives up what B leased; every lease is held once.
    expect(planB.planned.length).toBeGreaterThan(0);
    expect(reportA.planned.map(key).filter((k) => planB.planned.map(key).includes(k))).toEqual([]);
    const { manifest } = await a.store.readManifest("src1", "cam1");
    expect(manifest.leases.map((l) => key({ stream: "cam1", ...l })).sort()).toEqual(
      planB.planned.map(key).sort(),
    );
  }, 60_000);
});
