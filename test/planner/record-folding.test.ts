/**
 * The planner reads each stream's completion records with the stream (not every record of the
 * source up front) and folds them into its catalogs and fragment index at once: what a run folds
 * is the same, and a damaged record is named and left where it is (its window is planned again)
 * while the stream's other records are folded.
 */
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { afterEach, expect, it } from "vitest";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { utcDate } from "../../functions/domain/keys.ts";
import { FragmentIndexStore } from "../../functions/store/fragment-index-store.ts";

const NOW = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
const range = [{ from: NOW - 2 * HOUR, to: NOW + 1 }];

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

it("folds every good record into catalogs and indexes, names a damaged one and leaves it", async () => {
  h = await startHarness({
    sim: {
      streams: [
        { name: "cam1", bitrateBps: 64_000, ranges: range },
        { name: "cam2", bitrateBps: 64_000, ranges: range },
      ],
    },
    source: { retentionDays: 1 / 24 },
  });
  const rt = await h.runtime();
  expect((await rt.plan()).sources[0]!.planned.length).toBeGreaterThan(0);
  await rt.startCopiers();
  await rt.drain();
  await rt.stopCopiers();
  const prefix = `${h.config.prefix}.backup/records/src1/`;
  const records = await h.keys(prefix);
  const cam1 = records.filter((k) => k.startsWith(`${prefix}cam1/`));
  expect(cam1.length).toBeGreaterThan(1);
  const damagedKey = cam1[0]!;
  await rt.store.s3.send(
    new PutObjectCommand({ Bucket: h.config.bucket, Key: damagedKey, Body: "{ not json" }),
  );

  const folded = (await rt.plan()).sources[0]!;
  expect(folded.recordsCompacted).toBe(records.length - 1);
  expect(folded.errors.map((e) => e.message).join("\n")).toContain(damagedKey);
  expect(await h.keys(prefix)).toEqual([damagedKey]);
  for (const stream of ["cam1", "cam2"]) {
    const { manifest } = await rt.store.readManifest("src1", stream);
    const own = records.filter((k) => k.startsWith(`${prefix}${stream}/`));
    expect(manifest.windows).toBe(stream === "cam1" ? own.length - 1 : own.length);
    const day = utcDate(NOW - HOUR);
    const catalog = await rt.store.readCatalog("src1", stream, day);
    expect(catalog.windows.length).toBe(manifest.windows);
    const index = await new FragmentIndexStore(rt.store).readDay("src1", stream, day);
    expect(index?.windows.length).toBe(manifest.windows);
  }
}, 60_000);
