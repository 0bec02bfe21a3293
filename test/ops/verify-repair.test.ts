/**
 * `verify --repair` (issue 15: status and verify never report coverage that is not stored): a
 * window an older copier recorded although its export was short, and a window whose object was
 * deleted later, are reported by verify, but the manifest still counts their seconds, so status
 * shows 100% and the planner never copies them again. The repair stops claiming them; the next run
 * copies them again from the source. Against the simulator and the embedded emulator; the repair
 * itself runs the installed binary in a child process.
 */
import { createHash } from "node:crypto";
import { DeleteObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it } from "vitest";
import { statusCommand } from "../../cli/commands/status.ts";
import { verifyCommand } from "../../cli/commands/verify.ts";
import { cli } from "../../dev/kit/cli-process.ts";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { operatorTarget, TextSink } from "../../dev/kit/ops-target.ts";
import { S3FaultProxy } from "../../dev/kit/s3-fault-proxy.ts";
import { streamPrefix, utcDate } from "../../functions/domain/keys.ts";
import type { CopyRecord, Manifest } from "../../functions/domain/manifest.ts";
import { BackupStore } from "../../functions/store/backup-store.ts";
import { FragmentIndexStore } from "../../functions/store/fragment-index-store.ts";
import { runOnce } from "../../local/once.ts";
import type { BackupStatus } from "../../ops/status.ts";
import { type VerifyReport, verifyBackup } from "../../ops/verify.ts";

const NOW = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
/** Retention 1 h from 11:17: whole 10-minute windows from 11:20 to 12:10. */
const SHORT_FROM = Math.floor(Date.UTC(2026, 10, 20, 11, 20, 0) / 1000);
const GONE_FROM = Math.floor(Date.UTC(2026, 10, 20, 11, 40, 0) / 1000);

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

async function setup() {
  h = await startHarness({
    sim: { streams: [{ name: "cam1", bitrateBps: 64_000, ranges: [{ from: NOW - 2 * HOUR, to: NOW + 1 }] }] },
    source: { retentionDays: 1 / 24 },
  });
  const rt = await h.runtime();
  const file = operatorTarget(h);
  return { h, rt, file, store: rt.store };
}

async function status(hh: Harness, file: string) {
  const out = new TextSink();
  const code = await statusCommand({
    config: file,
    json: true,
    copyTimeoutSeconds: 60,
    now: hh.clock.now(),
    out,
  });
  const cam1 = (JSON.parse(out.text) as BackupStatus).sources[0]!.streams.find((s) => s.stream === "cam1")!;
  return { code, coverage: cam1.coverage };
}

async function verify(file: string, extra: Record<string, unknown> = {}) {
  const out = new TextSink();
  const code = await verifyCommand({ config: file, json: true, out, progress: new TextSink(), ...extra });
  return { code, report: JSON.parse(out.text) as VerifyReport };
}

/** The AWS variables operatorTarget pointed at the harness's emulator, for a child process. */
function awsEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of [
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
  ]) {
    env[k] = process.env[k]!;
  }
  return env;
}

describe("verify --repair: a window claimed but not stored whole is copied again", () => {
  it("a short recorded window and a deleted object: status 100% before; repaired by the binary; status shows them missing; the next run copies them byte for byte; verify clean", async () => {
    const { h, rt, file, store } = await setup();
    // What a copier from before the media check could record: 7 of the window's 10 minutes, with a
    // record whose size and hash match the short object.
    const shortWindow = { source: "src1", stream: "cam1", from: SHORT_FROM, duration: 600 };
    const shortKey = store.windowKey(shortWindow, "mp4");
    const short = h.sim.body("cam1", SHORT_FROM, 420, "mp4");
    await store.s3.send(new PutObjectCommand({ Bucket: store.bucket, Key: shortKey, Body: short }));
    const record: CopyRecord = {
      ...shortWindow,
      format: "mp4",
      key: shortKey,
      size: short.length,
      sha256: sha256(short),
      copiedAt: h.clock.now() - 600,
    };
    await store.putRecord(record);

    // The run folds that record in (the window counts as covered) and copies every other window.
    expect((await runOnce(rt, h.tally)).ok).toBe(true);
    const goneKey = store.windowKey({ ...shortWindow, from: GONE_FROM }, "mp4");
    const keys = await h.keys(streamPrefix(h.config.prefix, "src1", "cam1"));
    expect(keys).toContain(goneKey);
    expect(h.tally.events.some((e) => e.message?.from === SHORT_FROM)).toBe(false);
    await store.s3.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: goneKey }));

    // Before: status claims everything; verify sees both problems.
    const before = await status(h, file);
    expect(before.coverage.percent).toBe(100);
    expect(before.coverage.missing).toEqual([]);
    const found = await verify(file);
    expect(found.code).toBe(1);
    expect(found.report.problems.map((p) => [p.kind, p.key]).sort()).toEqual([
      ["missing", goneKey],
      ["short", shortKey],
    ]);

    // The repair, as a user runs it.
    const r = await cli(["verify", "-c", file, "--repair"], { cwd: h.dir, env: awsEnv() });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`SHORT (repaired) src1 cam1 ${shortKey}: media ends at`);
    expect(r.stdout).toContain(`MISSING (repaired) src1 cam1 ${goneKey}: recorded`);
    expect(r.stdout).toContain(
      "Repaired src1 cam1: 2 window(s) no longer claimed, 1200 s no longer counted as backed up " +
        "(2026-11-20T11:20:00Z – 2026-11-20T11:30:00Z, 2026-11-20T11:40:00Z – 2026-11-20T11:50:00Z)",
    );
    expect(r.stdout).toContain(
      "2 catalog entries and 0 completion record(s) dropped; 1 short object(s) stay at their key until the new copy of the window replaces them.",
    );
    // The short object stays (the source is the only other copy) until a new copy replaces it.
    expect((await h.getObject(shortKey)).equals(short)).toBe(true);

    // Status shows the two windows missing, without a verify run.
    const after = await status(h, file);
    expect(after.code).toBe(1);
    expect(after.coverage.percent).toBeLessThan(100);
    expect(after.coverage.missing).toEqual([
      { from: SHORT_FROM, to: SHORT_FROM + 600 },
      { from: GONE_FROM, to: GONE_FROM + 600 },
    ]);
    // A second repair finds nothing to repair: the short object is no longer recorded (and says it
    // will be copied over); an unrecorded object is not repaired, so the exit status is 1.
    const again = await verify(file, { repair: true });
    expect(again.report.repairs).toEqual([]);
    expect(again.report.problems.map((p) => [p.kind, p.key, p.repaired])).toEqual([
      ["unrecorded", shortKey, undefined],
    ]);
    expect(again.report.problems[0]!.detail).toMatch(
      /does not count its seconds .* copies the window again over it$/,
    );
    expect(again.code).toBe(1);

    // The next run copies both again from the source, byte for byte.
    const copiedBefore = h.tally.events.length;
    const rerun = await runOnce(rt, h.tally);
    expect(rerun.ok).toBe(true);
    const recopied = h.tally.events
      .slice(copiedBefore)
      .flatMap((e) => (e.type === "copied" ? [e.message.from] : []))
      .sort();
    expect(recopied).toEqual([SHORT_FROM, GONE_FROM]);
    expect((await h.getObject(shortKey)).equals(h.sim.body("cam1", SHORT_FROM, 600, "mp4"))).toBe(true);
    expect((await h.getObject(goneKey)).equals(h.sim.body("cam1", GONE_FROM, 600, "mp4"))).toBe(true);
    const clean = await verify(file);
    expect(clean.report.problems).toEqual([]);
    expect(clean.code).toBe(0);
    const full = await status(h, file);
    expect(full.coverage.percent).toBe(100);
    expect(full.code).toBe(0);
  });

  it("a corrupt object is set aside (not adopted by the copier) and copied again; a short window whose seconds an intact window holds keeps the coverage and its object goes", async () => {
    const { h, rt, file, store } = await setup();
    expect((await runOnce(rt, h.tally)).ok).toBe(true);
    const folder = streamPrefix(h.config.prefix, "src1", "cam1");
    const whole = { source: "src1", stream: "cam1", from: SHORT_FROM, duration: 600 };
    const wholeKey = store.windowKey(whole, "mp4");
    const corruptFrom = SHORT_FROM + 1800;
    const corruptKey = store.windowKey({ ...whole, from: corruptFrom }, "mp4");
    expect(await h.keys(folder)).toEqual(expect.arrayContaining([wholeKey, corruptKey]));
    // Something else wrote over one window (same size, other bytes).
    const changed = Buffer.from(await h.getObject(corruptKey));
    changed[changed.length - 1]! ^= 0xff;
    await store.s3.send(new PutObjectCommand({ Bucket: store.bucket, Key: corruptKey, Body: changed }));
    // A short recorded copy of the first 5 minutes of a window stored whole as well (a window
    // length changed between runs): its seconds are stored all the same.
    const half = { ...whole, duration: 300 };
    const halfKey = store.windowKey(half, "mp4");
    const short = h.sim.body("cam1", SHORT_FROM, 200, "mp4");
    await store.s3.send(new PutObjectCommand({ Bucket: store.bucket, Key: halfKey, Body: short }));
    await store.putRecord({
      ...half,
      format: "mp4",
      key: halfKey,
      size: short.length,
      sha256: sha256(short),
      copiedAt: h.clock.now(),
    });
    const coveredBefore = (await store.readManifest("src1", "cam1")).manifest.covered;
    expect((await status(h, file)).coverage.percent).toBe(100);

    const { code, report } = await verify(file, { repair: true, now: () => h.clock.now() });
    expect(code).toBe(0);
    expect(report.problems.map((p) => [p.kind, p.key, p.repaired]).sort()).toEqual([
      ["corrupt", corruptKey, true],
      ["short", halfKey, true],
    ]);
    expect(report.repairs).toEqual([
      {
        source: "src1",
        stream: "cam1",
        uncovered: [{ from: corruptFrom, to: corruptFrom + 600 }],
        windows: 2,
        catalogEntriesDropped: 1,
        indexEntriesDropped: 1,
        recordsDeleted: 1,
        objectsDeleted: 1,
        setAside: [`${corruptKey}.corrupt-${h.clock.now()}`],
        kept: [],
        replacedMeanwhile: [],
      },
    ]);
    // The corrupt bytes are kept, out of the window's key.
    expect((await h.getObject(`${corruptKey}.corrupt-${h.clock.now()}`)).equals(changed)).toBe(true);
    const m = (await store.readManifest("src1", "cam1")).manifest;
    expect(m.covered).toEqual(
      coveredBefore.flatMap((r) =>
        r.from < corruptFrom && corruptFrom + 600 <= r.to
          ? [
              { from: r.from, to: corruptFrom },
              { from: corruptFrom + 600, to: r.to },
            ].filter((x) => x.from < x.to)
          : [r],
      ),
    );
    expect(await store.getRecord(half)).toBeUndefined();
    const keys = await h.keys(folder);
    expect(keys).not.toContain(halfKey);
    expect(keys).not.toContain(corruptKey);
    // Playback's fragment index no longer points at it either (the intact windows stay).
    const indexed = async () =>
      ((await new FragmentIndexStore(store).readDay("src1", "cam1", "2026-11-20"))?.windows ?? []).map(
        (w) => w.key,
      );
    expect(await indexed()).not.toContain(corruptKey);
    expect(await indexed()).toContain(wholeKey);
    expect((await status(h, file)).coverage.missing).toEqual([{ from: corruptFrom, to: corruptFrom + 600 }]);

    const start = h.tally.events.length;
    expect((await runOnce(rt, h.tally)).ok).toBe(true);
    expect(h.tally.events.slice(start).flatMap((e) => (e.type === "copied" ? [e.message.from] : []))).toEqual(
      [corruptFrom],
    );
    expect((await h.getObject(corruptKey)).equals(h.sim.body("cam1", corruptFrom, 600, "mp4"))).toBe(true);
    expect(await indexed()).toContain(corruptKey);
    const clean = await verify(file);
    expect(clean.report.problems).toEqual([]);
    expect(clean.report.setAside).toEqual([`${corruptKey}.corrupt-${h.clock.now()}`]);
    expect(clean.code).toBe(0);
  });

  it("the deletes are conditional: a window stored again and a record written again between verify's read and the repair's delete are kept", async () => {
    const { h, rt, store } = await setup();
    expect((await runOnce(rt, h.tally)).ok).toBe(true);
    const whole = { source: "src1", stream: "cam1", from: SHORT_FROM, duration: 600 };
    const corruptFrom = SHORT_FROM + 1800;
    const corruptKey = store.windowKey({ ...whole, from: corruptFrom }, "mp4");
    const changed = Buffer.from(await h.getObject(corruptKey));
    changed[changed.length - 1]! ^= 0xff;
    await store.s3.send(new PutObjectCommand({ Bucket: store.bucket, Key: corruptKey, Body: changed }));
    const half = { ...whole, duration: 300 };
    const halfKey = store.windowKey(half, "mp4");
    const short = h.sim.body("cam1", SHORT_FROM, 200, "mp4");
    await store.s3.send(new PutObjectCommand({ Bucket: store.bucket, Key: halfKey, Body: short }));
    const record = {
      ...half,
      format: "mp4" as const,
      key: halfKey,
      size: short.length,
      sha256: sha256(short),
      copiedAt: h.clock.now(),
    };
    await store.putRecord(record);

    const proxy = await S3FaultProxy.start(h.emulator.endpoints.s3Endpoint!);
    try {
      const behind = await h.runtime({ endpoints: { ...h.emulator.endpoints, s3Endpoint: proxy.url } });
      const stall = (kind: "window" | "record", key: string) => {
        let release = () => {};
        const rule = proxy.inject({
          op: "DeleteObject",
          kind,
          key: new RegExp(`^${key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`),
          fault: "stall-request",
          until: new Promise<void>((r) => {
            release = r;
          }),
        });
        return { rule, release: () => release() };
      };
      const aside = stall("window", corruptKey);
      const recordDelete = stall("record", store.recordKeyOf(half));
      const repairing = verifyBackup({
        config: h.config,
        store: behind.store,
        repair: true,
        now: () => h.clock.now(),
      });
      // The corrupt bytes are copied aside; before they leave the window's key, a copier stores
      // the window again.
      await expect.poll(() => aside.rule.hits, { timeout: 20_000 }).toBe(1);
      const fresh = h.sim.body("cam1", corruptFrom, 600, "mp4");
      await store.s3.send(new PutObjectCommand({ Bucket: store.bucket, Key: corruptKey, Body: fresh }));
      aside.release();
      // The short copy's record was read as bad; before it is deleted, a new copy is recorded.
      await expect.poll(() => recordDelete.rule.hits, { timeout: 20_000 }).toBe(1);
      const newer = { ...record, sha256: sha256(fresh), copiedAt: h.clock.now() + 60 };
      await store.putRecord(newer);
      recordDelete.release();
      const report = await repairing;
      expect(report.repairs?.[0]?.error).toBeUndefined();
      expect(report.repairs?.[0]).toMatchObject({
        recordsDeleted: 0,
        objectsDeleted: 1,
        setAside: [`${corruptKey}.corrupt-${h.clock.now()}`],
        replacedMeanwhile: [corruptKey],
      });
      expect(proxy.preconditionFailed).toBe(2);
      // The new copy stays at the window's key, the corrupt bytes aside; the newer record stays.
      expect((await h.getObject(corruptKey)).equals(fresh)).toBe(true);
      expect((await h.getObject(`${corruptKey}.corrupt-${h.clock.now()}`)).equals(changed)).toBe(true);
      expect(await store.getRecord(half)).toEqual(newer);
    } finally {
      await proxy.close();
    }
  }, 60_000);

  it("the manifest is written conditionally: a planner's change meanwhile is re-read and kept; a manifest that keeps changing is left unrepaired", async () => {
    const { h, rt, store } = await setup();
    expect((await runOnce(rt, h.tally)).ok).toBe(true);
    const goneKey = store.windowKey(
      { source: "src1", stream: "cam1", from: GONE_FROM, duration: 600 },
      "mp4",
    );
    await store.s3.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: goneKey }));
    const lease = { from: NOW - 300, duration: 180, until: NOW + 3600 };
    /**
     * The store as it behaves when a planner writes the manifest between the repair's read and its
     * write: S3 refuses the repair's If-Match write with 412, which writeManifest reports as false
     * (the embedded emulator does not check If-Match itself, so the planner's write is made here).
     */
    class RacingStore extends BackupStore {
      conflicts: number;
      constructor(conflicts: number) {
        super(store.s3, store.bucket, store.prefix);
        this.conflicts = conflicts;
      }
      override async writeManifest(m: Manifest, etag: string | undefined): Promise<boolean> {
        if (this.conflicts <= 0) return super.writeManifest(m, etag);
        this.conflicts--;
        const now = await this.readManifest(m.source, m.stream);
        await super.writeManifest(
          {
            ...now.manifest,
            leases: [...now.manifest.leases, { ...lease, from: lease.from + this.conflicts }],
          },
          now.etag,
        );
        return false;
      }
    }

    const stubborn = await verifyBackup({ config: h.config, store: new RacingStore(5), repair: true });
    expect(stubborn.problems.map((p) => [p.kind, p.key, p.repaired])).toEqual([
      ["missing", goneKey, undefined],
    ]);
    expect(stubborn.repairs?.[0]?.error).toBe(
      "the manifest of src1/cam1 changed at each of 5 attempts (a planner running); run verify --repair again",
    );
    const untouched = (await store.readManifest("src1", "cam1")).manifest;
    expect(untouched.covered.some((r) => r.from <= GONE_FROM && GONE_FROM + 600 <= r.to)).toBe(true);
    // Nothing else was changed either: the catalog still lists the window.
    expect((await verifyBackup({ config: h.config, store })).problems.map((p) => p.kind)).toEqual([
      "missing",
    ]);

    const report = await verifyBackup({ config: h.config, store: new RacingStore(1), repair: true });
    expect(report.problems.map((p) => [p.kind, p.repaired])).toEqual([["missing", true]]);
    const m = (await store.readManifest("src1", "cam1")).manifest;
    expect(m.covered.some((r) => r.from < GONE_FROM + 600 && GONE_FROM < r.to)).toBe(false);
    // The planner's leases (written meanwhile) are kept.
    expect(m.leases.filter((l) => l.until === lease.until).map((l) => l.from)).toEqual([
      lease.from + 4,
      lease.from + 3,
      lease.from + 2,
      lease.from + 1,
      lease.from,
      lease.from,
    ]);
  });

  it("the fragment index is written conditionally: a planner's compaction between the repair's read and write is kept", async () => {
    const { h, rt, store } = await setup();
    expect((await runOnce(rt, h.tally)).ok).toBe(true);
    const goneKey = store.windowKey(
      { source: "src1", stream: "cam1", from: GONE_FROM, duration: 600 },
      "mp4",
    );
    await store.s3.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: goneKey }));
    const day = utcDate(GONE_FROM);
    const index = new FragmentIndexStore(store);
    const before = (await index.readDay("src1", "cam1", day))!;
    expect(before.windows.map((w) => w.key)).toContain(goneKey);

    const proxy = await S3FaultProxy.start(h.emulator.endpoints.s3Endpoint!);
    try {
      const behind = await h.runtime({ endpoints: { ...h.emulator.endpoints, s3Endpoint: proxy.url } });
      let release = () => {};
      const stall = proxy.inject({
        op: "PutObject",
        kind: "index",
        fault: "stall-request",
        until: new Promise<void>((r) => {
          release = r;
        }),
      });
      const repairing = verifyBackup({ config: h.config, store: behind.store, repair: true });
      await expect.poll(() => stall.hits, { timeout: 20_000 }).toBe(1);
      // Meanwhile the planner compacts a completion record into the same day.
      const last = before.windows.at(-1)!;
      const compacted = { ...last, from: last.from + 1, key: `${last.key}.compacted` };
      await index.updateDay("src1", "cam1", day, (windows) => [...windows, compacted]);
      release();
      const report = await repairing;
      expect(report.repairs?.[0]?.error).toBeUndefined();
      const after = (await index.readDay("src1", "cam1", day))!;
      expect(after.windows.map((w) => w.key)).toContain(compacted.key);
      expect(after.windows.map((w) => w.key)).not.toContain(goneKey);
      expect(after.windows).toHaveLength(before.windows.length);
    } finally {
      await proxy.close();
    }
  }, 60_000);
});
