/**
 * The planner's S3 listings stay O(sources) for a new backup: a stream without a manifest (not in
 * the listing of the source's manifests, so not asked for) is checked against one delimiter listing of its source's folder, and only a stream that has stored
 * windows gets its folder listed (its windows adopted, none planned again). The simulator and the
 * embedded emulator, as in the other planner tests.
 */
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it } from "vitest";
import { storedWindows } from "../../dev/kit/backup-checks.ts";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { manifestKey } from "../../functions/domain/keys.ts";
import { totalSeconds } from "../../functions/domain/ranges.ts";
import { MANIFEST_LISTING_MIN_STREAMS } from "../../functions/planner/read-streams.ts";
import { runOnce } from "../../local/once.ts";

const NOW0 = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const streams = ["cam1", "cam2", "cam3"].map((name) => ({
  name,
  bitrateBps: 64_000,
  ranges: [{ from: NOW0 - 2 * HOUR, to: NOW0 + 1 }],
}));

describe("planner listings", () => {
  it("a new backup: one listing of the source's folder, no listing per stream, every stream planned", async () => {
    h = await startHarness({ sim: { streams }, source: { retentionDays: 1 / 24 } });
    const rt = await h.runtime({ manifestListingMinStreams: 1 });
    const report = await rt.plan();
    expect(report.sources[0]!.errors).toEqual([]);
    expect(report.sources[0]!.streams.map((s) => s.planned > 0)).toEqual([true, true, true]);
    // The source's manifests (none: none read), the pending records' folder and the source's
    // folder: 3, not 3 + one per stream.
    expect(rt.store.requests.get("ListObjectsV2")).toBe(3);
    // One GET: the pause switch; no manifest is asked for.
    expect(rt.store.requests.get("GetObject")).toBe(1);
  });

  it("a deleted manifest: its stream's folder alone is listed and its stored windows adopted, none planned again", async () => {
    h = await startHarness({ sim: { streams }, source: { retentionDays: 1 / 24 } });
    const hh = h;
    const rt = await hh.runtime({ manifestListingMinStreams: 1 });
    expect((await runOnce(rt, hh.tally)).ok).toBe(true);
    const stored = await storedWindows(hh, "cam2");
    expect(stored.length).toBeGreaterThan(0);
    const before = (await rt.store.readManifest("src1", "cam2")).manifest;
    await rt.store.s3.send(
      new DeleteObjectCommand({ Bucket: rt.store.bucket, Key: manifestKey(rt.store.prefix, "src1", "cam2") }),
    );

    const lists = rt.store.requests.get("ListObjectsV2") ?? 0;
    const report = await rt.plan();
    expect(report.sources[0]!.errors).toEqual([]);
    // The manifests, records, the source's folder, cam2's folder.
    expect((rt.store.requests.get("ListObjectsV2") ?? 0) - lists).toBe(4);
    expect(report.sources[0]!.planned.filter((m) => m.stream === "cam2")).toEqual([]);
    const adopted = (await rt.store.readManifest("src1", "cam2")).manifest;
    expect(adopted.covered).toEqual(before.covered);
    expect(totalSeconds(adopted.covered)).toBe(stored.reduce((n, w) => n + w.duration, 0));
  });

  it("a source of fewer streams than a listing pays for: its manifests are read one by one, never listed", async () => {
    h = await startHarness({ sim: { streams }, source: { retentionDays: 1 / 24 } });
    const hh = h;
    expect(MANIFEST_LISTING_MIN_STREAMS).toBe(13);
    const rt = await hh.runtime();
    expect((await runOnce(rt, hh.tally)).ok).toBe(true);
    // The steady state: a run that finds nothing new reads each manifest with the ETag it holds
    // (304, one GET each) and lists only the pending records: no listing of the manifests.
    const lists = rt.store.requests.get("ListObjectsV2") ?? 0;
    const gets = rt.store.requests.get("GetObject") ?? 0;
    const unchanged = rt.store.requests.get("GetObject 304") ?? 0;
    const report = await rt.plan();
    expect(report.sources[0]!.errors).toEqual([]);
    expect(report.sources[0]!.planned).toEqual([]);
    expect((rt.store.requests.get("ListObjectsV2") ?? 0) - lists).toBe(1);
    // The pause switch; the three manifests, each unchanged (a GET answered 304).
    expect((rt.store.requests.get("GetObject") ?? 0) - gets).toBe(1);
    expect((rt.store.requests.get("GetObject 304") ?? 0) - unchanged).toBe(3);
  });
});
