/**
 * The fragment index end to end: copiers record each window's index in its completion record, the
 * playback reader finds it there at once, and the planner's compaction moves it into one object
 * per stream and day beside the catalog (simulator + embedded emulator).
 */
import { afterEach, describe, expect, it } from "vitest";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import {
  encodeWindowIndex,
  type FragmentIndexDay,
  type WindowIndex,
  windowEndMs,
} from "../../functions/domain/fragment-index.ts";
import { fragmentIndexKey, fragmentIndexSummaryKey, utcDate } from "../../functions/domain/keys.ts";
import { FragmentIndexStore } from "../../functions/store/fragment-index-store.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** Each window's index against the source: fragments tile the object, one per recorded second. */
async function expectIndexMatchesSource(hh: Harness, stream: string, windows: WindowIndex[]): Promise<void> {
  for (const w of windows) {
    const body = await hh.getObject(w.key);
    expect(w.size).toBe(body.length);
    expect(w.init?.offset).toBe(0);
    expect(body.toString("latin1", w.init!.length + 4, w.init!.length + 8)).toBe("moof");
    const f = w.fragments;
    expect(f[0]!.offset).toBe(w.init!.length);
    for (let i = 1; i < f.length; i++) expect(f[i]!.offset).toBe(f[i - 1]!.offset + f[i - 1]!.length);
    expect(f[f.length - 1]!.offset + f[f.length - 1]!.length).toBe(body.length);
    const recorded = hh.sim
      .rangesOf(stream)
      .flatMap((r) =>
        Array.from({ length: Math.max(0, r.to - r.from) }, (_, i) => (r.from + i) * 1000).filter(
          (ms) => ms >= w.from * 1000 && ms < (w.from + w.duration) * 1000,
        ),
      );
    expect(f.map((x) => x.startMs)).toEqual(recorded);
    expect(f.every((x) => x.keyframe && x.durationMs === 1000)).toBe(true);
  }
}

describe("fragment index, end to end", () => {
  it("is readable from pending records as soon as windows are copied, then from one object per stream-day", async () => {
    const now = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
    const gap = { from: now - 40 * 60 + 7, to: now - 35 * 60 };
    h = await startHarness({
      sim: {
        streams: [
          {
            name: "cam1",
            bitrateBps: 40_000,
            ranges: [
              { from: now - 2 * HOUR, to: gap.from },
              { from: gap.to, to: now + 1 },
            ],
          },
        ],
      },
      source: { retentionDays: 1 / 24 },
    });
    const rt = await h.runtime();
    const reader = new FragmentIndexStore(rt.store);
    const day = utcDate(now);
    const prefix = h.config.prefix;

    // Plan and copy, without the planner run that compacts the records.
    await rt.plan();
    await rt.startCopiers();
    await rt.drain();
    await rt.stopCopiers();
    expect(await h.keys(`${prefix}.backup/index/`)).toEqual([]);
    const pending = await reader.readFragmentIndex("src1", "cam1", now - HOUR, now);
    expect(pending.length).toBeGreaterThanOrEqual(4);
    await expectIndexMatchesSource(h, "cam1", pending);
    // The gap: no fragment in it, the media stops at its start and resumes at its end.
    const all = pending.flatMap((w) => w.fragments);
    expect(all.filter((f) => f.startMs >= gap.from * 1000 && f.startMs < gap.to * 1000)).toEqual([]);
    expect(all.some((f) => f.startMs + f.durationMs === gap.from * 1000)).toBe(true);
    expect(all.some((f) => f.startMs === gap.to * 1000)).toBe(true);
    expect(windowEndMs(pending[pending.length - 1]!)).toBeLessThanOrEqual(now * 1000);

    // The next planner run compacts: one index object for the stream's day, records gone.
    await rt.plan();
    expect(await h.keys(`${prefix}.backup/records/`)).toEqual([]);
    // ... and the stream's summary of its days (what recording_status.json reads).
    expect(await h.keys(`${prefix}.backup/index/`)).toEqual([
      fragmentIndexSummaryKey(prefix, "src1", "cam1"),
      fragmentIndexKey(prefix, "src1", "cam1", day),
    ]);
    const catalog = await rt.store.readCatalog("src1", "cam1", day);
    const before = new Map(rt.store.requests);
    const compacted = await reader.readFragmentIndex("src1", "cam1", now - HOUR, now);
    const gets = (rt.store.requests.get("GetObject") ?? 0) - (before.get("GetObject") ?? 0);
    expect(gets, "one GET for the one day, none for records").toBe(1);
    expect(compacted).toEqual(pending);
    expect(compacted.map((w) => [w.key, w.size, w.etag])).toEqual(
      catalog.windows
        .filter((c) => c.from < now && c.from + c.duration > now - HOUR)
        .map((c) => [c.key, c.size, c.etag]),
    );

    // A completion record from a copier before the index (none in it) is read and compacted as
    // before, and leaves the window's index entry alone.
    const { index: _none, ...old } = { ...catalog.windows[0]!, source: "src1", stream: "cam1" };
    await rt.store.putRecord(old);
    expect(await reader.readFragmentIndex("src1", "cam1", now - HOUR, now)).toEqual(pending);
    await rt.plan();
    expect(await h.keys(`${prefix}.backup/records/`)).toEqual([]);
    expect(await reader.readFragmentIndex("src1", "cam1", now - HOUR, now)).toEqual(pending);

    // A range of a day with no index object is empty.
    expect(await reader.readFragmentIndex("src1", "cam1", now - 3 * 86_400, now - 2 * 86_400)).toEqual([]);
  });
});

describe("fragment index objects, concurrent writers", () => {
  it("a write that meets another writer's change re-reads the day and keeps both entries", async () => {
    h = await startHarness({ sim: { streams: [{ name: "cam1", bitrateBps: 40_000, ranges: [] }] } });
    const rt = await h.runtime();
    const from = Math.floor(Date.UTC(2026, 10, 20) / 1000);
    const entry = (k: number) =>
      encodeWindowIndex({
        from: from + k * 60,
        duration: 60,
        format: "mp4",
        key: `k${k}`,
        size: 100,
        origin: "absolute",
        fragments: [],
      });
    const other = new FragmentIndexStore(rt.store);
    /**
     * The store as S3 behaves when another writer (the planner's compaction) writes the day object
     * between this writer's read and its conditional write: the write is refused (412), which
     * writeDay reports as false. The embedded emulator does not check If-Match itself.
     */
    class RacingIndexStore extends FragmentIndexStore {
      conflicts = 2;
      conditions: (string | null | undefined)[] = [];
      override async writeDay(d: FragmentIndexDay, ifMatch?: string | null): Promise<boolean> {
        this.conditions.push(ifMatch);
        if (this.conflicts-- > 0) {
          await other.addWindows("src1", "cam1", [entry(10 + this.conflicts)]);
          return false;
        }
        return super.writeDay(d, ifMatch);
      }
    }
    const racing = new RacingIndexStore(rt.store);
    await racing.addWindows("src1", "cam1", [entry(0)]);
    const day = await racing.readDay("src1", "cam1", utcDate(from));
    expect(day?.windows.map((w) => w.key)).toEqual(["k0", "k10", "k11"]);
    // The first write asked for no object, the retries for the ETag each re-read returned.
    expect(racing.conditions[0]).toBeNull();
    expect(racing.conditions.slice(1).every((c) => typeof c === "string")).toBe(true);
  });
});
