/**
 * Issue 14 §3: the bookkeeping can be rebuilt. Manifests, catalogs, completion records and the
 * fragment index deleted or damaged (not JSON): the planner names each damaged key and never reads
 * it as empty, nor plans a stored window again; `flussonic-backup rebuild` (the real binary in a
 * child process) restores bookkeeping equal to what the planner's own compaction would have written
 * (coverage, entries, sizes, hashes, index), reading the stored objects from S3, never from the
 * source; a second run reads nothing.
 */
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it } from "vitest";
import { cli } from "../../dev/kit/cli-process.ts";
import { type Harness, startHarness } from "../../dev/kit/harness.ts";
import { operatorTarget } from "../../dev/kit/ops-target.ts";
import { S3FaultProxy } from "../../dev/kit/s3-fault-proxy.ts";
import { catalogKey, fragmentIndexKey, manifestKey, utcDate } from "../../functions/domain/keys.ts";
import type { Manifest } from "../../functions/domain/manifest.ts";
import type { PlanReport } from "../../functions/planner/plan-backup.ts";
import { runOnce } from "../../local/once.ts";
import { rebuildBackup } from "../../ops/rebuild.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const STREAMS = ["cam1", "cam2", "cam3"] as const;

/** The bookkeeping as compared: manifests' coverage and totals, catalog entries, index days. */
async function bookkeeping(h: Harness, day: string): Promise<Record<string, unknown>> {
  const p = h.config.prefix;
  const json = async (key: string) => JSON.parse((await h.getObject(key)).toString("utf8"));
  const out: Record<string, unknown> = {};
  for (const s of STREAMS) {
    const m = (await json(manifestKey(p, "src1", s))) as Manifest;
    out[`${s} manifest`] = { covered: m.covered, windows: m.windows, bytes: m.bytes, head: m.head };
    const c = await json(catalogKey(p, "src1", s, day));
    // Not compared: when a window was copied and what its copy cost in requests (the `cost`
    // report's counts) are not in the stored window, so a rebuilt entry cannot have them.
    out[`${s} catalog`] = c.windows.map(
      ({
        copiedAt: _,
        requests: _r,
        gbSeconds: _g,
        ...e
      }: {
        copiedAt: number;
        requests?: unknown;
        gbSeconds?: unknown;
      }) => e,
    );
    out[`${s} index`] = await json(fragmentIndexKey(p, "src1", s, day));
  }
  return out;
}

function planned(r: PlanReport): number {
  return r.sources.reduce((n, s) => n + s.planned.length, 0);
}

/** A backup of cam1's last 4 minutes in 60 s windows (harness in `h`), and the time it was made at. */
async function backedUpMinutes() {
  const now = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
  h = await startHarness({
    sim: {
      streams: [{ name: "cam1", bitrateBps: 80_000, ranges: [{ from: now - 4 * 60, to: now + 3600 }] }],
    },
    source: { retentionDays: 1 / 24, streams: ["cam1"] },
    config: { maxWindowSeconds: 60 },
  });
  const rt = await h.runtime();
  expect((await runOnce(rt, h.tally)).ok).toBe(true);
  return { now, rt, h };
}

describe("rebuild", () => {
  it("restores deleted and damaged manifests, catalogs, records and index from the stored windows; the planner names damaged keys and downloads nothing again", async () => {
    const now = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
    h = await startHarness({
      sim: {
        streams: STREAMS.map((name) => ({
          name,
          bitrateBps: 80_000,
          ranges: [{ from: now - 5 * 60, to: now + 30 * 60 }],
        })),
      },
      source: { retentionDays: 1 / 24, streams: ["cam1", { name: "cam2", format: "ts" }, "cam3"] },
      config: { maxWindowSeconds: 60 },
    });
    const p = h.config.prefix;
    const day = utcDate(now);
    const rt = await h.runtime();
    expect((await runOnce(rt, h.tally)).ok).toBe(true);
    // Three more minutes copied, their completion records not compacted yet.
    h.clock.advance(180);
    await rt.startCopiers();
    expect(planned(await rt.plan())).toBeGreaterThanOrEqual(6);
    await rt.drain();
    await rt.stopCopiers();
    const state = `${p}.backup/`;
    const before = new Map<string, Buffer>();
    for (const key of await h.keys(state)) before.set(key, await h.getObject(key));
    const records = [...before.keys()].filter((k) => k.includes("/records/"));
    expect(records.length).toBeGreaterThanOrEqual(6);

    // What the planner's own compaction makes of it: the reference.
    await rt.plan();
    expect(await h.keys(`${state}records/`)).toEqual([]);
    const original = await bookkeeping(h, day);
    // Back to the bookkeeping before that compaction.
    await rt.store.deleteKeys(await h.keys(state));
    const put = (key: string, body: string | Buffer) =>
      h!.s3().send(new PutObjectCommand({ Bucket: h!.config.bucket, Key: key, Body: body }));
    for (const [key, body] of before) await put(key, body);

    // The damage: cam1 loses its manifest, catalog and a record, another record is garbage; cam2's
    // manifest is garbage, its index and records are gone; cam3's catalog and index are garbage.
    const recordsOf = (s: string) => records.filter((k) => k.includes(`/records/src1/${s}/`));
    const damagedRecord = recordsOf("cam1")[0]!;
    await rt.store.deleteKeys([
      manifestKey(p, "src1", "cam1"),
      catalogKey(p, "src1", "cam1", day),
      recordsOf("cam1")[1]!,
      fragmentIndexKey(p, "src1", "cam2", day),
      ...recordsOf("cam2"),
    ]);
    await put(damagedRecord, '{"source":"src1",');
    await put(manifestKey(p, "src1", "cam2"), "<Error>truncated");
    await put(catalogKey(p, "src1", "cam3", day), '{"version":1,"windows":[{');
    await put(fragmentIndexKey(p, "src1", "cam3", day), "not json");
    const downloads = () => h!.sim.requests.filter((r) => r.kind === "archive").length;
    const downloaded = downloads();

    // The planner names each damaged key, plans no stored window again and replaces nothing.
    const report = await rt.plan();
    const errors = report.sources[0]!.errors.map((e) => e.message).join("\n");
    for (const key of [damagedRecord, manifestKey(p, "src1", "cam2"), catalogKey(p, "src1", "cam3", day)]) {
      expect(errors).toContain(`S3: ${key} is damaged (not a JSON object)`);
    }
    expect(errors).toContain("run `flussonic-backup rebuild --source src1 --stream cam2`");
    expect(planned(report)).toBe(0);
    expect((await h.getObject(catalogKey(p, "src1", "cam3", day))).toString()).toBe(
      '{"version":1,"windows":[{',
    );
    expect(await h.keys(`${state}records/src1/cam3/`)).toEqual(recordsOf("cam3"));
    // cam1's coverage is taken from its stored windows (status does not fall to 0%).
    const cam1 = report.sources[0]!.streams.find((s) => s.stream === "cam1")!;
    expect(cam1.backedUpSeconds).toBe(cam1.copyableSeconds);

    const file = operatorTarget(h);
    const env = Object.fromEntries(
      [
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_SQS",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
      ].map((k) => [k, process.env[k]!]),
    );
    const first = await cli(["rebuild", "-c", file, "--source", "src1"], {
      cwd: h.dir,
      env,
      timeoutMs: 120_000,
    });
    expect(first.code, first.stderr + first.stdout).toBe(0);
    for (const [stream, key] of [
      ["cam1", damagedRecord],
      ["cam2", manifestKey(p, "src1", "cam2")],
      ["cam3", catalogKey(p, "src1", "cam3", day)],
      ["cam3", fragmentIndexKey(p, "src1", "cam3", day)],
    ]) {
      expect(first.stdout).toContain(`  DAMAGED ${stream} ${key}: `);
    }
    // cam1: the planner compacted its one good record into a new catalog; the rest is read back.
    // cam2: the windows of its deleted records are read back. cam3: pending records
    // describe half of its windows.
    expect(first.stdout).toMatch(
      /^src1 cam1: 6 stored window\(s\): 1 catalogued already, 0 from pending records, 5 read back and hashed \(\S+ \S+\), 0 catalog entr\(ies\) of missing objects dropped; 1 catalog\(s\) written, manifest unchanged, 5 index entr\(ies\) written\.$/m,
    );
    expect(first.stdout).toMatch(
      /^src1 cam2: 6 stored window\(s\): 3 catalogued already, 0 from pending records, 3 read back and hashed \(\S+ \S+\), 0 catalog entr\(ies\) of missing objects dropped; 1 catalog\(s\) written, manifest rebuilt, 6 index entr\(ies\) written\.$/m,
    );
    expect(first.stdout).toMatch(
      /^src1 cam3: 6 stored window\(s\): 0 catalogued already, 3 from pending records, 3 read back and hashed \(\S+ \S+\), 0 catalog entr\(ies\) of missing objects dropped; 1 catalog\(s\) written, manifest rebuilt, 3 index entr\(ies\) written\.$/m,
    );

    // One planner run compacts what is still pending; then the bookkeeping is the original.
    const after = await rt.plan();
    expect(after.sources[0]!.errors).toEqual([]);
    expect(planned(after)).toBe(0);
    expect(await h.keys(`${state}records/`)).toEqual([]);
    expect(await bookkeeping(h, day)).toEqual(original);
    expect(downloads(), "no window downloaded again from the source").toBe(downloaded);

    // Again: nothing read, nothing written.
    const second = await cli(["rebuild", "-c", file, "--source", "src1", "--stream", "cam3"], {
      cwd: h.dir,
      env,
    });
    expect(second.code).toBe(0);
    expect(second.stdout).toBe(
      "src1 cam3: 6 stored window(s): 6 catalogued already, 0 from pending records, 0 read back and hashed (0 B), 0 catalog entr(ies) of missing objects dropped; 0 catalog(s) written, manifest unchanged, 0 index entr(ies) written.\n",
    );

    // The backup goes on: only the new windows are downloaded.
    h.clock.advance(120);
    const next = await runOnce(rt, h.tally);
    expect(next.ok).toBe(true);
    expect(next.alreadyStored).toBe(0);
    expect(downloads() - downloaded).toBe(next.copied);
  }, 180_000);

  it("a damaged completion record is named by the planner and, once its window is planned again, rewritten by the copier from the stored object, without a download", async () => {
    const now = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
    h = await startHarness({
      sim: {
        streams: [{ name: "cam1", bitrateBps: 80_000, ranges: [{ from: now - 3 * 60, to: now + 3600 }] }],
      },
      source: { retentionDays: 1 / 24, streams: ["cam1"] },
      config: { maxWindowSeconds: 60, leaseSeconds: 1200 },
    });
    const rt = await h.runtime();
    await rt.startCopiers();
    expect(planned(await rt.plan())).toBeGreaterThanOrEqual(1);
    await rt.drain();
    await rt.stopCopiers();
    const records = await h.keys(`${h.config.prefix}.backup/records/`);
    const good = JSON.parse((await h.getObject(records[0]!)).toString());
    await h.s3().send(new PutObjectCommand({ Bucket: h.config.bucket, Key: records[0]!, Body: "{" }));
    const downloaded = h.sim.requests.filter((r) => r.kind === "archive").length;

    const report = await rt.plan();
    expect(report.sources[0]!.errors.map((e) => e.message)).toContain(
      `S3: ${records[0]} is damaged (not a JSON object)`,
    );
    // Kept (never compacted as if it were absent), so its window stays uncovered.
    expect((await h.getObject(records[0]!)).toString()).toBe("{");

    // After the lease the window is planned again; the copier finds it stored and records it anew.
    h.clock.advance(1300);
    const next = await runOnce(rt, h.tally);
    expect(next.ok).toBe(true);
    expect(next.alreadyStored).toBe(1);
    expect(h.sim.requests.filter((r) => r.kind === "archive").length - downloaded).toBe(next.copied);
    const catalog = JSON.parse(
      (await h.getObject(catalogKey(h.config.prefix, "src1", "cam1", utcDate(good.from)))).toString(),
    );
    const entry = catalog.windows.find((w: { from: number }) => w.from === good.from);
    expect({ size: entry.size, sha256: entry.sha256, etag: entry.etag }).toEqual({
      size: good.size,
      sha256: good.sha256,
      etag: good.etag,
    });
  }, 60_000);

  it("keeps a catalog entry a planner writes while rebuild writes the same catalog (a conditional write, done again)", async () => {
    const { now, rt, h: hh } = await backedUpMinutes();
    const day = utcDate(now);
    const key = catalogKey(hh.config.prefix, "src1", "cam1", day);
    const catalog = JSON.parse((await hh.getObject(key)).toString());
    // A window gone: rebuild has a catalog to write.
    await rt.store.deleteKeys([catalog.windows[0].key]);
    const proxy = await S3FaultProxy.start(hh.emulator.endpoints.s3Endpoint!);
    try {
      const behind = await hh.runtime({ endpoints: { ...hh.emulator.endpoints, s3Endpoint: proxy.url } });
      let release = () => {};
      const stall = proxy.inject({
        op: "PutObject",
        kind: "catalog",
        fault: "stall-request",
        until: new Promise<void>((r) => {
          release = r;
        }),
      });
      const rebuilding = rebuildBackup({ config: hh.config, store: behind.store, source: "src1" });
      await expect.poll(() => stall.hits, { timeout: 20_000 }).toBe(1);
      // Meanwhile a planner folds in a new window's record.
      const newer = {
        ...catalog.windows.at(-1),
        from: now + 600,
        key: `${catalog.windows.at(-1).key}.newer`,
      };
      const current = await rt.store.readCatalog("src1", "cam1", day);
      await rt.store.writeCatalog({ ...current, windows: [...current.windows, newer] });
      release();
      const report = await rebuilding;
      expect(report.problems).toEqual([]);
      expect(proxy.preconditionFailed).toBeGreaterThan(0);
      const after = JSON.parse((await hh.getObject(key)).toString());
      expect(after.windows.map((w: { key: string }) => w.key)).toEqual([
        ...catalog.windows.slice(1).map((w: { key: string }) => w.key),
        newer.key,
      ]);
    } finally {
      await proxy.close();
    }
  }, 60_000);

  it("drops the catalog entry and the coverage of a window whose object is gone (copied again by the next run); a stream with nothing stored gets no manifest", async () => {
    const { now, rt, h: hh } = await backedUpMinutes();
    const p = hh.config.prefix;
    const day = utcDate(now);
    const catalog = JSON.parse((await hh.getObject(catalogKey(p, "src1", "cam1", day))).toString());
    const lost = catalog.windows[1];
    await rt.store.deleteKeys([lost.key]);

    const report = await rebuildBackup({ config: hh.config, store: rt.store, source: "src1" });
    expect(report.problems).toEqual([]);
    expect(report.streams[0]).toMatchObject({
      stream: "cam1",
      kept: catalog.windows.length - 1,
      hashed: 0,
      dropped: 1,
    });
    const after = JSON.parse((await hh.getObject(catalogKey(p, "src1", "cam1", day))).toString());
    expect(after.windows.map((w: { key: string }) => w.key)).toEqual(
      catalog.windows.filter((w: { key: string }) => w.key !== lost.key).map((w: { key: string }) => w.key),
    );
    const manifest = JSON.parse((await hh.getObject(manifestKey(p, "src1", "cam1"))).toString()) as Manifest;
    expect(manifest.covered.some((r) => r.from < lost.from + lost.duration && lost.from < r.to)).toBe(false);

    const nothing = await rebuildBackup({
      config: hh.config,
      store: rt.store,
      source: "src1",
      stream: "cam9",
    });
    expect(nothing.streams).toEqual([
      expect.objectContaining({ stream: "cam9", stored: 0, manifestWritten: false }),
    ]);
    expect(await hh.keys(manifestKey(p, "src1", "cam9"))).toEqual([]);

    const next = await runOnce(rt, hh.tally);
    expect(next.ok).toBe(true);
    expect(next.copied).toBe(1);
    expect((await hh.getObject(lost.key)).length).toBe(lost.size);
  }, 60_000);

  it("un-covers and reports a window whose object is gone when its day's catalog is damaged too; the next run copies it again", async () => {
    const { now, rt, h: hh } = await backedUpMinutes();
    const p = hh.config.prefix;
    const day = utcDate(now);
    const catalog = JSON.parse((await hh.getObject(catalogKey(p, "src1", "cam1", day))).toString());
    const lost = catalog.windows[1];
    await rt.store.deleteKeys([lost.key]);
    await hh.s3().send(
      new PutObjectCommand({
        Bucket: hh.config.bucket,
        Key: catalogKey(p, "src1", "cam1", day),
        Body: "{trunc",
      }),
    );

    const report = await rebuildBackup({ config: hh.config, store: rt.store, source: "src1" });
    expect(report.streams[0]).toMatchObject({ stream: "cam1", noLongerStoredSeconds: lost.duration });
    const after = JSON.parse((await hh.getObject(catalogKey(p, "src1", "cam1", day))).toString());
    expect(after.windows.map((w: { key: string }) => w.key)).not.toContain(lost.key);
    const manifest = JSON.parse((await hh.getObject(manifestKey(p, "src1", "cam1"))).toString()) as Manifest;
    expect(manifest.covered.some((r) => r.from < lost.from + lost.duration && lost.from < r.to)).toBe(false);
    // Playback does not list it either: its fragment index entry is gone.
    const index = JSON.parse((await hh.getObject(fragmentIndexKey(p, "src1", "cam1", day))).toString());
    expect(index.windows.map((w: { key: string }) => w.key)).not.toContain(lost.key);

    const next = await runOnce(rt, hh.tally);
    expect(next.ok).toBe(true);
    expect(next.copied).toBe(1);
    expect((await hh.getObject(lost.key)).length).toBe(lost.size);
  }, 60_000);

  it("un-covers a stream whose objects are all gone (its days are visited from their catalogs) and says how many seconds", async () => {
    const { now, rt, h: hh } = await backedUpMinutes();
    const p = hh.config.prefix;
    const day = utcDate(now);
    const catalog = JSON.parse((await hh.getObject(catalogKey(p, "src1", "cam1", day))).toString());
    const seconds = catalog.windows.reduce((n: number, w: { duration: number }) => n + w.duration, 0);
    await rt.store.deleteKeys(catalog.windows.map((w: { key: string }) => w.key));

    const report = await rebuildBackup({ config: hh.config, store: rt.store, source: "src1" });
    expect(report.streams).toEqual([
      expect.objectContaining({
        stream: "cam1",
        stored: 0,
        dropped: catalog.windows.length,
        noLongerStoredSeconds: seconds,
      }),
    ]);
    const after = JSON.parse((await hh.getObject(catalogKey(p, "src1", "cam1", day))).toString());
    expect(after.windows).toEqual([]);
    const manifest = JSON.parse((await hh.getObject(manifestKey(p, "src1", "cam1"))).toString()) as Manifest;
    expect(manifest.covered).toEqual([]);
  }, 60_000);
});
