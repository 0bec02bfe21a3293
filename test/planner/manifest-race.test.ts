/**
 * The manifest write that leases the chosen windows, when another planner got there first
 * (compact-records.ts `writeManifestMerging`, lease-windows.ts): the leases the other planner's
 * leases or coverage overlap, even in part, are given up and the rest written beside its own; after
 * CONDITIONAL_ATTEMPTS refused writes in a row the run leases and queues nothing for the stream, says
 * so, and the next run plans it. Against the embedded emulator; the refusals are S3's 412, answered
 * by the fault proxy (dev/kit/s3-fault-proxy.ts "precondition-failed").
 */
import { afterEach, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "../../dev/kit/harness.ts";
import { S3FaultProxy } from "../../dev/kit/s3-fault-proxy.ts";
import { emptyManifest, type Lease } from "../../functions/domain/manifest.ts";
import { writeManifestMerging } from "../../functions/planner/compact-records.ts";
import { CONDITIONAL_ATTEMPTS } from "../../functions/store/backup-store.ts";

let h: Harness | undefined;
let proxy: S3FaultProxy | undefined;
afterEach(async () => {
  await h?.close();
  await proxy?.close();
  h = undefined;
  proxy = undefined;
});

describe("a manifest write that lost the race to another planner", () => {
  it("gives up the leases the winner's leases or coverage overlap, even in part, and keeps those that only touch them", async () => {
    h = await startHarness({ sim: { streams: 1 } });
    // The fault proxy checks If-Match and If-None-Match as S3 does (no fault injected here).
    proxy = await S3FaultProxy.start(h.emulator.endpoints.s3Endpoint!);
    const rt = await h.runtime({ endpoints: { ...h.emulator.endpoints, s3Endpoint: proxy.url } });
    const now = h.clock.now();
    const T = now - 7200;
    const until = now + 1200;
    const base = (await rt.store.readManifest("src1", "cam1")).manifest;
    // The other planner wrote first: a lease of [T+600, T+900) and coverage [T+1500, T+1510), [T+2390, T+2400).
    const theirs: Lease = { from: T + 600, duration: 300, until: now + 900 };
    expect(
      await rt.store.writeManifest(
        {
          ...emptyManifest("src1", "cam1"),
          covered: [
            { from: T + 1500, to: T + 1510 },
            { from: T + 2390, to: T + 2400 },
          ],
          leases: [theirs],
          updatedAt: now,
        },
        undefined,
      ),
    ).toBe(true);
    const mine: Lease[] = [
      { from: T, duration: 600, until }, // touches their lease: kept
      { from: T + 600, duration: 600, until }, // overlaps their lease in part: given up
      { from: T + 1200, duration: 600, until }, // overlaps their coverage: given up
      { from: T + 1800, duration: 600, until }, // overlaps their coverage's last second: given up
      { from: T + 2400, duration: 600, until }, // touches their coverage: kept
    ];
    // This planner read the stream before the other wrote (no manifest then: If-None-Match).
    const written = await writeManifestMerging(
      rt.store,
      { ...base, leases: mine, updatedAt: now },
      undefined,
      [],
      mine,
      now,
    );
    expect(proxy.preconditionFailed, "the first write found the other planner's manifest").toBe(1);
    expect(written).toEqual([mine[0], mine[4]]);
    const { manifest } = await rt.store.readManifest("src1", "cam1");
    expect(manifest.leases).toEqual([theirs, mine[0], mine[4]]);
    expect(manifest.covered).toEqual([
      { from: T + 1500, to: T + 1510 },
      { from: T + 2390, to: T + 2400 },
    ]);
  }, 60_000);

  it(`after ${CONDITIONAL_ATTEMPTS} refused writes in a row queues nothing for the stream, says so, and the next run plans it`, async () => {
    h = await startHarness({ sim: { streams: 1 }, source: { retentionDays: 1 / 24 } });
    proxy = await S3FaultProxy.start(h.emulator.endpoints.s3Endpoint!);
    const rt = await h.runtime({ endpoints: { ...h.emulator.endpoints, s3Endpoint: proxy.url } });
    const refused = proxy.inject({
      op: "PutObject",
      kind: "manifest",
      fault: "precondition-failed",
      times: Infinity,
    });
    const lost = (await rt.plan()).sources[0]!;
    expect(proxy.count("PutObject", "manifest")).toBe(CONDITIONAL_ATTEMPTS);
    expect(refused.hits).toBe(CONDITIONAL_ATTEMPTS);
    // No lease written, so no window queued: another planner may hold them.
    expect(lost.planned).toEqual([]);
    expect(await rt.pendingMessages()).toBe(0);
    expect(
      h.logs.some(
        (l) =>
          l.includes("manifest changed meanwhile; this stream is re-planned next run") &&
          l.includes("stream=cam1"),
      ),
    ).toBe(true);
    proxy.clear();
    const next = (await rt.plan()).sources[0]!;
    expect(next.errors).toEqual([]);
    expect(next.planned.length).toBeGreaterThan(0);
    const { manifest } = await rt.store.readManifest("src1", "cam1");
    expect(manifest.leases.map((l) => l.from).sort()).toEqual(next.planned.map((m) => m.from).sort());
  }, 60_000);

  it("a write refused fewer times than that is tried again and leases the windows", async () => {
    h = await startHarness({ sim: { streams: 1 }, source: { retentionDays: 1 / 24 } });
    proxy = await S3FaultProxy.start(h.emulator.endpoints.s3Endpoint!);
    const rt = await h.runtime({ endpoints: { ...h.emulator.endpoints, s3Endpoint: proxy.url } });
    proxy.inject({
      op: "PutObject",
      kind: "manifest",
      fault: "precondition-failed",
      times: CONDITIONAL_ATTEMPTS - 1,
    });
    const report = (await rt.plan()).sources[0]!;
    expect(proxy.count("PutObject", "manifest")).toBe(CONDITIONAL_ATTEMPTS);
    expect(report.errors).toEqual([]);
    expect(report.planned.length).toBeGreaterThan(0);
    expect(await rt.pendingMessages()).toBe(report.planned.length);
  }, 60_000);

  it("a write S3 fails past its retries is that stream's error; the other streams are leased and queued", async () => {
    h = await startHarness({ sim: { streams: 2 }, source: { retentionDays: 1 / 24 } });
    proxy = await S3FaultProxy.start(h.emulator.endpoints.s3Endpoint!);
    const rt = await h.runtime({ endpoints: { ...h.emulator.endpoints, s3Endpoint: proxy.url } });
    const broken = proxy.inject({
      op: "PutObject",
      kind: "manifest",
      key: /\/cam2\.json$/,
      fault: "500",
      times: Infinity,
    });
    const report = (await rt.plan()).sources[0]!;
    expect(broken.hits, "the write was tried again before giving up").toBeGreaterThan(1);
    expect(report.errors.map((e) => e.stream)).toEqual(["cam2"]);
    expect(report.errors[0]!.message).toMatch(/InternalError|500/);
    // Nothing leased for cam2, so nothing queued for it; cam1 as usual.
    expect(report.planned.length).toBeGreaterThan(0);
    expect(report.planned.filter((m) => m.stream !== "cam1")).toEqual([]);
    expect(await rt.pendingMessages()).toBe(report.planned.length);
  }, 60_000);
});
