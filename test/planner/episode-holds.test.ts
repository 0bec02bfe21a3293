/**
 * Holds from Flussonic's episodes, against the simulator (its episodes URL, and Central's episode
 * list) and the embedded emulator: each planner run holds every episode's range with its pre- and
 * post-roll once, grows an open episode's hold as it moves, keeps the hold of an episode gone at
 * the source, does not hold a released episode again, audits each change, and goes on backing up
 * when the episodes answer 5xx or garbage.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { heldFolder } from "../../functions/domain/keys.ts";
import { readHoldBook } from "../../functions/store/holds.ts";
import { runOnce } from "../../local/once.ts";
import { listAudit } from "../../ops/audit.ts";
import { releaseHold } from "../../ops/hold.ts";
import { CentralSimulator } from "../../simulator/central.ts";
import { EPISODES_PATH, type SimEpisode } from "../../simulator/simulator.ts";

const MIN = 60;
let h: Harness | undefined;
let central: CentralSimulator | undefined;
afterEach(async () => {
  await h?.close();
  await central?.close();
  h = undefined;
  central = undefined;
});

/** 12:17 on the harness clock. */
const NOW0 = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
const ms = (t: number) => t * 1000;
/** Closed: 11:27 – 11:33 (windows 11:20 and 11:30 with the roll). */
const closed: SimEpisode = {
  episode_id: 7001,
  media: "cam1",
  opened_at: ms(NOW0 - 50 * MIN),
  updated_at: ms(NOW0 - 45 * MIN),
  closed_at: ms(NOW0 - 44 * MIN),
};
/** Open since 11:57, last seen 12:02. */
const open: SimEpisode = {
  episode_id: 7002,
  media: "cam1",
  opened_at: ms(NOW0 - 20 * MIN),
  updated_at: ms(NOW0 - 15 * MIN),
};
const roll = { preRollSeconds: 30, postRollSeconds: 60 };

async function withEpisodes(episodes: SimEpisode[]) {
  const hh = await startHarness({
    sim: {
      streams: [
        { name: "cam1", bitrateBps: 16_000, ranges: [{ from: NOW0 - 3 * HOUR, to: NOW0 + 2 * HOUR }] },
      ],
    },
    source: { retentionDays: 1.5 / 24 },
  });
  h = hh;
  hh.sim.setEpisodes(episodes);
  hh.config.sources[0]!.episodes = { url: `${hh.sim.url}${EPISODES_PATH}`, ...roll };
  const rt = await hh.runtime();
  return { hh, rt };
}

const episodeAudit = async (hh: Harness) =>
  (await listAudit(hh.store(), undefined)).filter((r) => r.action === "episode-hold");

describe("holds from episodes", () => {
  it("holds each episode once with its pre- and post-roll, grows an open one, keeps one gone at the source", async () => {
    const { hh, rt } = await withEpisodes([closed, open]);
    expect((await runOnce(rt, hh.tally)).ok).toBe(true);
    const book1 = (await readHoldBook(hh.store(), "src1")).book;
    expect(
      book1.holds.map((x) => ({ id: x.id, from: x.from, to: x.to, by: x.by, origin: x.origin })),
    ).toEqual([
      {
        id: `episode-cam1@${closed.opened_at}`,
        from: NOW0 - 50 * MIN - 30,
        to: NOW0 - 44 * MIN + 60,
        by: "episode",
        origin: { episode: `cam1@${closed.opened_at}` },
      },
      {
        id: `episode-cam1@${open.opened_at}`,
        from: NOW0 - 20 * MIN - 30,
        to: NOW0 - 15 * MIN + 60,
        by: "episode",
        origin: { episode: `cam1@${open.opened_at}` },
      },
    ]);
    // The windows under the holds are held (stored by this run's copiers, held as they arrived).
    const folder = heldFolder(hh.config.prefix, "src1", "cam1", "2026-11-20");
    expect(await hh.keys(folder)).toEqual([
      `${folder}112000Z-600s.mp4`,
      `${folder}113000Z-600s.mp4`,
      `${folder}115000Z-600s.mp4`,
      `${folder}120000Z-600s.mp4`,
    ]);
    expect((await episodeAudit(hh)).map((r) => r.detail?.change)).toEqual(["new", "new"]);

    // The same episodes again: nothing changes, nothing more in the audit.
    hh.clock.advance(5 * MIN);
    expect((await runOnce(rt, hh.tally)).ok).toBe(true);
    expect((await readHoldBook(hh.store(), "src1")).book).toEqual(book1);
    expect(await episodeAudit(hh)).toHaveLength(2);

    // The open episode moves on and closes; the closed one is deleted at the source.
    hh.sim.setEpisodes([{ ...open, updated_at: ms(NOW0 + 5 * MIN), closed_at: ms(NOW0 + 6 * MIN) }]);
    hh.clock.advance(15 * MIN);
    expect((await runOnce(rt, hh.tally)).ok).toBe(true);
    const book3 = (await readHoldBook(hh.store(), "src1")).book;
    expect(book3.holds.map((x) => [x.id, x.from, x.to])).toEqual([
      [book1.holds[0]!.id, NOW0 - 50 * MIN - 30, NOW0 - 44 * MIN + 60],
      [book1.holds[1]!.id, NOW0 - 20 * MIN - 30, NOW0 + 6 * MIN + 60],
    ]);
    const audit = await episodeAudit(hh);
    expect(audit.map((r) => r.detail?.change)).toEqual(["new", "new", "grown"]);
    expect(audit[2]!.detail?.added).toEqual([{ from: NOW0 - 15 * MIN + 60, to: NOW0 + 6 * MIN + 60 }]);
    expect(await hh.keys(folder)).toContain(`${folder}121000Z-600s.mp4`);
  });

  it("a released episode is not held again while the source still lists it", async () => {
    const { hh, rt } = await withEpisodes([closed]);
    expect((await runOnce(rt, hh.tally)).ok).toBe(true);
    const id = (await readHoldBook(hh.store(), "src1")).book.holds[0]!.id;
    const released = await releaseHold({ store: hh.store(), source: "src1", id, by: "tester", now: NOW0 });
    expect(released.released).toHaveLength(1);
    hh.clock.advance(5 * MIN);
    expect((await runOnce(rt, hh.tally)).ok).toBe(true);
    expect((await readHoldBook(hh.store(), "src1")).book.holds).toEqual([]);
    expect(await episodeAudit(hh)).toHaveLength(1);
    const release = (await listAudit(hh.store(), undefined)).find((r) => r.action === "release");
    expect(release?.detail?.episode).toBe(`cam1@${closed.opened_at}`);
  });

  for (const fault of ["error", "bad-json", "wrong-shape"] as const) {
    it(`episodes answering ${fault === "error" ? "503" : fault}: a warning, the backup goes on, no hold`, async () => {
      const { hh, rt } = await withEpisodes([closed]);
      hh.sim.setFaults({ episodesFault: fault });
      const run = await runOnce(rt, hh.tally);
      expect(run.ok).toBe(true);
      expect(run.finalPlan.sources[0]!.errors).toEqual([]);
      expect(await hh.keys(`${hh.config.prefix}src1/cam1/2026-11-20/`)).not.toEqual([]);
      expect((await readHoldBook(hh.store(), "src1")).book.holds).toEqual([]);
      const warning = hh.logs.find((l) => l.includes("episodes not read"));
      expect(warning).toContain(fault === "error" ? "HTTP 503" : "episodes of stream");
      // Fixed: the next run holds the episode.
      hh.sim.setFaults({});
      hh.clock.advance(5 * MIN);
      expect((await runOnce(rt, hh.tally)).ok).toBe(true);
      expect((await readHoldBook(hh.store(), "src1")).book.holds).toHaveLength(1);
    });
  }

  it("a central source holds Central's episodes on every server's stream of that name", async () => {
    central = await CentralSimulator.start({ pageSize: 1 });
    const hh = await startHarness({
      sim: {
        streams: [{ name: "cam1", bitrateBps: 8000, ranges: [{ from: NOW0 - HOUR, to: NOW0 + HOUR }] }],
      },
      source: { kind: "central", url: central.url, retentionDays: 0.02, episodes: roll },
    });
    h = hh;
    central.addServer({ hostname: "a.example", sim: hh.sim });
    hh.sim.setEpisodes([
      { ...closed, media: "cam1" },
      { ...open, media: "cam9" },
    ]);
    const rt = await hh.runtime();
    expect((await runOnce(rt, hh.tally)).ok).toBe(true);
    const holds = (await readHoldBook(hh.store(), "src1")).book.holds;
    expect(holds.map((x) => [x.id, x.stream, x.origin?.episode])).toEqual([
      ["episode-7001", "a.example/cam1", "7001"],
    ]);
    expect(central.requests.some((r) => r.path.startsWith("/streamer/api/v3/episodes?"))).toBe(true);
  });
});
