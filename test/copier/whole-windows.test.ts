/**
 * Issue 15 items 3 and 9: a window is recorded only when its object holds the whole window, and
 * the record describes the object S3 holds, against the simulator and the embedded emulator.
 * - Item 3: an export that stops cleanly after whole fragments (no Content-Length) has intact
 *   framing; only its media time shows the missing minutes.
 * - Item 9: a source whose exports differ per request (a re-mux), copied twice at once (a
 *   duplicate delivery): the record must name the bytes of the object that stays.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it, vi } from "vitest";
import { statusCommand } from "../../cli/commands/status.ts";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { operatorTarget, TextSink } from "../../dev/kit/ops-target.ts";
import { type CopyMessage, type CopyWindowDeps, copyWindow } from "../../functions/copier/copy-window.ts";
import { RetryableError } from "../../functions/domain/errors.ts";
import type { CopyRecord } from "../../functions/domain/manifest.ts";
import { FlussonicClient } from "../../functions/source/flussonic.ts";
import { unlimited } from "../../functions/source/throttle.ts";
import { BackupStore } from "../../functions/store/backup-store.ts";
import { runOnce } from "../../local/once.ts";
import { RestoreError, restoreRange } from "../../ops/restore.ts";
import type { BackupStatus } from "../../ops/status.ts";
import { verifyBackup } from "../../ops/verify.ts";
import type { SimulatorOptions } from "../../simulator/simulator.ts";

const NOW = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
const STREAMS = [{ name: "cam1", bitrateBps: 64_000, ranges: [{ from: NOW - 2 * HOUR, to: NOW + 1 }] }];
/** A whole 10-minute window, well inside the recorded range. */
const FROM = Math.floor((NOW - HOUR) / 600) * 600;

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function setup(sim: Omit<SimulatorOptions, "now"> = {}) {
  h = await startHarness({ sim: { streams: STREAMS, ...sim }, source: { retentionDays: 1 / 24 } });
  const rt = await h.runtime();
  const flussonic = new FlussonicClient(h.config.sources[0]!, { type: "none" });
  const deps = (store: BackupStore = rt.store): CopyWindowDeps => ({
    store,
    flussonic,
    throttle: unlimited,
    now: h!.clock.now,
    partSize: 5 * 1024 * 1024,
    copyTimeoutSeconds: 60,
  });
  const message = (format: "mp4" | "ts" = "mp4", duration = 600): CopyMessage => ({
    v: 1,
    source: "src1",
    stream: "cam1",
    from: FROM,
    duration,
    format,
    leaseUntil: h!.clock.now() + 86_400,
  });
  return { h, rt, deps, message, store: rt.store };
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("a short export is not recorded as a full window (issue 15 item 3)", () => {
  it("the copier refuses (retryable) a chunked export that ends cleanly after whole fragments; the whole export is copied", async () => {
    const { h, deps, message, store } = await setup({
      faults: { truncateAfterFragments: 420, bodyFaultNext: 1 },
    });
    const m = message();
    const key = store.windowKey(m, "mp4");
    const error = await copyWindow(deps(), m).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as Error).message).toMatch(
      /incomplete body: media ends at 2026-11-20T11:17:00Z, 180\.0 s before the window's end 2026-11-20T11:20:00Z/,
    );
    expect(await store.windowExists(key)).toBe(false);
    expect(await store.getRecord(m)).toBeUndefined();
    expect(h.openMultipartUploads()).toEqual([]);

    // The next delivery gets the whole export: copied and recorded.
    const outcome = await copyWindow(deps(), m);
    expect(outcome.status).toBe("copied");
    const whole = h.sim.body("cam1", FROM, 600, "mp4");
    expect((await h.getObject(key)).equals(whole)).toBe(true);
    expect((await store.getRecord(m))?.sha256).toBe(sha256(whole));
  });

  it("pipeline: while every export stops early nothing is recorded and status is below 100%; whole exports bring it to 100%", async () => {
    // Two windows due (the source backs off after each failed copy: few windows keep it quick).
    const { h, rt } = await setup({
      streams: [{ name: "cam1", bitrateBps: 64_000, ranges: [{ from: NOW - 25 * 60, to: NOW + 1 }] }],
      faults: { truncateAfterFragments: 30 },
    });
    const file = operatorTarget(h);
    const status = async () => {
      const out = new TextSink();
      const code = await statusCommand({
        config: file,
        json: true,
        copyTimeoutSeconds: 60,
        now: h.clock.now(),
        out,
      });
      return { code, status: JSON.parse(out.text) as BackupStatus };
    };
    const report = await rt.plan();
    const planned = report.sources[0]!.planned.length;
    expect(planned).toBeGreaterThan(0);
    await rt.startCopiers();
    // Every planned window is refused at least once, for its media time.
    await vi.waitFor(
      () => {
        const refused = new Set(
          h.tally.events.flatMap((e) =>
            e.type === "retry" && /media ends at/.test(e.reason) ? [e.message.from] : [],
          ),
        );
        expect(refused.size).toBe(planned);
      },
      { timeout: 20_000, interval: 50 },
    );
    await rt.stopCopiers();
    expect(h.tally.events.filter((e) => e.type === "copied" || e.type === "already-stored")).toEqual([]);
    expect((await rt.store.pendingRecords("src1")).keys).toEqual([]);
    const short = await status();
    expect(short.code).toBe(1);
    const cam1 = short.status.sources[0]!.streams.find((s) => s.stream === "cam1")!;
    expect(cam1.coverage.percent).toBe(0);
    expect(cam1.coverage.missing!.length).toBeGreaterThan(0);

    // The source sends whole windows again: the queued windows are copied, status is 100%.
    h.sim.setFaults({});
    const after = await runOnce(rt, h.tally);
    expect(after.ok).toBe(true);
    const full = await status();
    expect(full.code).toBe(0);
    expect(full.status.sources[0]!.streams.find((s) => s.stream === "cam1")!.coverage.percent).toBe(100);
  });

  it("an object found without a record whose media stops early is copied again, not recorded", async () => {
    const { h, deps, message, store } = await setup();
    const m = message();
    const key = store.windowKey(m, "mp4");
    // What a copier before the media check could leave: 5 of the window's 10 minutes.
    const short = h.sim.body("cam1", FROM, 300, "mp4");
    await store.s3.send(new PutObjectCommand({ Bucket: store.bucket, Key: key, Body: short }));
    const outcome = await copyWindow(deps(), m);
    expect(outcome.status).toBe("copied");
    const whole = h.sim.body("cam1", FROM, 600, "mp4");
    expect((await h.getObject(key)).equals(whole)).toBe(true);
    expect(outcome.status === "copied" && outcome.record.size).toBe(whole.length);
    expect((await store.getRecord(m))?.sha256).toBe(sha256(whole));
  });

  it("verify reports a recorded window whose media stops early as short, and restore refuses it", async () => {
    const { h, store, message } = await setup();
    const m = message("ts");
    const key = store.windowKey(m, "ts");
    // A record written by a copier before the media check: hash and size match the short object.
    const short = h.sim.body("cam1", FROM, 420, "ts");
    await store.s3.send(new PutObjectCommand({ Bucket: store.bucket, Key: key, Body: short }));
    const record: CopyRecord = {
      source: "src1",
      stream: "cam1",
      from: FROM,
      duration: 600,
      format: "ts",
      key,
      size: short.length,
      sha256: sha256(short),
      copiedAt: h.clock.now(),
    };
    await store.putRecord(record);
    const report = await verifyBackup({ config: h.config, store, source: "src1" });
    expect(report.problems.map((p) => [p.kind, p.key])).toEqual([["short", key]]);
    // The last PTS is the start of the last packet's second fraction: just before 11:17:00.
    expect(report.problems[0]!.detail).toMatch(/media ends at 2026-11-20T11:16:59\.\d+Z, 180\.0 s before/);
    expect(report.intact).toBe(0);

    const out = join(h.dir, "restored.ts");
    const restore = (allowGaps: boolean) =>
      restoreRange({ store, source: "src1", stream: "cam1", from: FROM, to: FROM + 600, out, allowGaps });
    await expect(restore(false)).rejects.toThrow(RestoreError);
    await expect(restore(false)).rejects.toThrow(/stored window is incomplete: media ends at/);
    const joined = await restore(true);
    expect(joined.holes).toHaveLength(1);
    expect(joined.holes[0]!.from).toBeCloseTo(FROM + 420, 0);
    expect(joined.holes[0]!.to).toBe(FROM + 600);
  });
});

describe("two copies of one window with different bytes (issue 15 item 9)", () => {
  /**
   * The interleaving that leaves a record of one copy and the object of the other, forced with
   * ordering hooks on the real store: both copies find nothing stored, copy A uploads, copy B
   * uploads and records, then copy A records.
   */
  it("record and object agree after concurrent copies whose source bytes differ; verify and restore pass", async () => {
    const { h, deps, message, store } = await setup({ varyBytesPerRequest: true });
    const m = message("ts");
    const key = store.windowKey(m, "ts");
    let passedHead = 0;
    let bothPassedHead!: () => void;
    const bothChecked = new Promise<void>((resolve) => {
      bothPassedHead = resolve;
    });
    let aUploaded!: () => void;
    const aUpload = new Promise<void>((resolve) => {
      aUploaded = resolve;
    });
    let bDone!: () => void;
    const bFinished = new Promise<void>((resolve) => {
      bDone = resolve;
    });
    class Ordered extends BackupStore {
      readonly role: "A" | "B";
      constructor(role: "A" | "B") {
        super(store.s3, store.bucket, store.prefix);
        this.role = role;
      }
      override async abortStaleUploads(k: string, olderThanSeconds: number): Promise<number> {
        if (++passedHead === 2) bothPassedHead();
        await bothChecked;
        if (this.role === "B") await aUpload;
        return super.abortStaleUploads(k, olderThanSeconds);
      }
      #first = true;
      override async putRecord(record: CopyRecord): Promise<void> {
        if (this.role === "A" && this.#first) {
          this.#first = false;
          aUploaded();
          await bFinished;
        }
        return super.putRecord(record);
      }
    }
    const a = copyWindow(deps(new Ordered("A")), m);
    const b = copyWindow(deps(new Ordered("B")), m).finally(() => bDone());
    const [outA, outB] = await Promise.all([a, b]);
    expect(outA.status).toBe("copied");
    expect(outB.status).toBe("copied");
    // The two exports did differ, and the object is B's (the last upload).
    if (outA.status !== "copied" || outB.status !== "copied") throw new Error("not copied");
    const object = await h.getObject(key);
    expect(sha256(object)).toBe(outB.record.sha256);
    expect(h.sim.requests.filter((r) => r.kind === "archive").length).toBe(2);
    const recorded = (await store.getRecord(m))!;
    expect(recorded.sha256).toBe(sha256(object));
    expect(recorded.size).toBe(object.length);
    expect(recorded.etag).toBe((await store.headWindow(key))!.etag);

    const report = await verifyBackup({ config: h.config, store, source: "src1" });
    expect(report.problems).toEqual([]);
    expect(report.intact).toBe(1);
    const out = join(h.dir, "restored.ts");
    const restored = await restoreRange({
      store,
      source: "src1",
      stream: "cam1",
      from: FROM,
      to: FROM + 600,
      out,
      allowGaps: false,
    });
    expect(restored.holes).toEqual([]);
    expect(readFileSync(out).equals(object)).toBe(true);
  });

  it("two copies started at once: the record describes the stored object, before and after compaction", async () => {
    const { h, rt, deps, message, store } = await setup({ varyBytesPerRequest: true });
    const m = message("ts");
    const key = store.windowKey(m, "ts");
    await Promise.all([copyWindow(deps(), m), copyWindow(deps(), m)]);
    const object = await h.getObject(key);
    expect((await store.getRecord(m))?.sha256).toBe(sha256(object));
    // A third copy that uploaded and stopped before recording (its copier killed): the record
    // now names another ETag. Verify says so (not "corrupt"); the copy's redelivery takes the
    // already-stored path, sees the record names another ETag and re-reads the object.
    const third = h.sim.body("cam1", FROM, 600, "ts");
    const metadata = { source: "src1", stream: "cam1", from: String(FROM), duration: "600", format: "ts" };
    await store.s3.send(
      new PutObjectCommand({ Bucket: store.bucket, Key: key, Body: third, Metadata: metadata }),
    );
    const stale = await verifyBackup({ config: h.config, store, source: "src1", stream: "cam1" });
    expect(stale.problems.map((p) => [p.kind, p.key])).toEqual([["replaced", key]]);
    const again = await copyWindow(deps(), m);
    expect(again.status).toBe("already-stored");
    expect(again.status === "already-stored" && again.record.sha256).toBe(sha256(third));
    expect((await store.getRecord(m))?.sha256).toBe(sha256(third));
    // Compacted into the catalog, the ETag goes along; verify finds the window intact.
    await rt.plan();
    expect((await store.pendingRecords("src1")).keys).toEqual([]);
    const report = await verifyBackup({ config: h.config, store, source: "src1", stream: "cam1" });
    expect(report.problems).toEqual([]);
    expect(report.intact).toBe(1);
  });
});
