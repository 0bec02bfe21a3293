/**
 * What the bookkeeping of a backup must say after any fault or race: every catalog entry is an
 * object that is there with the listed size and ETag, every stored window is listed exactly once,
 * the manifest covers every stored window (from `coveredSince` on: older ones are past the
 * retention, which the manifest no longer claims) and claims nothing that is not stored, and no
 * completion record is left behind.
 */
import { expect } from "vitest";
import { catalogKey } from "../../functions/domain/keys.ts";
import { normalizeRanges, subtractRanges } from "../../functions/domain/ranges.ts";
import type { BackupStore } from "../../functions/store/backup-store.ts";
import { storedWindows } from "./backup-checks.ts";
import type { Harness } from "./harness.ts";

export async function expectHonestBookkeeping(
  h: Harness,
  store: BackupStore,
  streams: readonly string[],
  coveredSince = 0,
): Promise<void> {
  const prefix = h.config.prefix;
  for (const stream of streams) {
    const stored = await storedWindows(h, stream);
    const folder = catalogKey(prefix, "src1", stream, "x").slice(0, -"x.json".length);
    const listed = new Map<string, number>();
    for (const key of await h.keys(folder)) {
      const catalog = await store.readCatalog("src1", stream, key.slice(folder.length, -".json".length));
      for (const e of catalog.windows) {
        listed.set(e.key, (listed.get(e.key) ?? 0) + 1);
        const head = await store.headWindow(e.key);
        expect(head, `catalog lists ${e.key}, which is not there`).toBeDefined();
        expect(head!.size, `catalog size of ${e.key}`).toBe(e.size);
        if (e.etag) expect(head!.etag, `catalog ETag of ${e.key}`).toBe(e.etag);
      }
    }
    for (const w of stored) expect(listed.get(w.key), `catalog entries of ${w.key}`).toBe(1);
    expect(listed.size, `catalog entries of ${stream}`).toBe(stored.length);
    const { manifest } = await store.readManifest("src1", stream);
    for (const w of stored.filter((x) => x.from >= coveredSince)) {
      expect(
        manifest.covered.some((r) => r.from <= w.from && r.to >= w.from + w.duration),
        `manifest covers ${w.key}`,
      ).toBe(true);
    }
  }
  await expectManifestClaimsOnlyStored(h, store, streams);
  expect(await h.keys(`${prefix}.backup/records/`), "completion records left").toEqual([]);
}

/**
 * The other direction: every second a stream's manifest counts as covered lies in a window object
 * that is stored (the backup never claims what it does not hold).
 */
export async function expectManifestClaimsOnlyStored(
  h: Harness,
  store: BackupStore,
  streams: readonly string[],
): Promise<void> {
  for (const stream of streams) {
    const held = normalizeRanges(
      (await storedWindows(h, stream)).map((w) => ({ from: w.from, to: w.from + w.duration })),
    );
    const { manifest } = await store.readManifest("src1", stream);
    expect(
      subtractRanges(manifest.covered, held),
      `seconds ${stream}'s manifest claims but no window holds`,
    ).toEqual([]);
  }
}
