/**
 * Episodes as Flussonic's OpenAPI gives them (functions/domain/flussonic-contract.ts: episodesList,
 * externalEpisodesList): every answer the contract allows is read by the client, and the
 * simulator's answers (its episodes URL, Central's episode list) are what the contract allows.
 */
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { episodesList, externalEpisodesList } from "../../functions/domain/flussonic-contract.ts";
import { episodeListShape } from "../../functions/source/episodes.ts";
import { CentralSimulator } from "../../simulator/central.ts";
import { EPISODES_PATH, FlussonicSimulator } from "../../simulator/simulator.ts";

const NOW = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
let sim: FlussonicSimulator | undefined;
let central: CentralSimulator | undefined;
afterEach(async () => {
  await central?.close();
  await sim?.close();
  sim = undefined;
  central = undefined;
});

const ms = fc.integer({ min: 1_600_000_000_000, max: 1_900_000_000_000 });
const episodeArb = fc.record(
  {
    episode_id: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    media: fc.string({ minLength: 1, maxLength: 20 }),
    opened_at: ms,
    updated_at: ms,
    closed_at: ms,
    started_at: ms,
    close_reason: fc.constantFrom("timeout", "manual"),
    episode_type: fc.constantFrom("generic", "face", "vehicle"),
    preview: fc.base64String({ maxLength: 16 }),
  },
  { requiredKeys: ["episode_id", "media", "opened_at", "updated_at"] },
);

describe("episodes: the contract and the client", () => {
  it("every episode list the contract allows is read, Central's and an episodes URL's", () => {
    fc.assert(
      fc.property(
        fc.array(episodeArb, { maxLength: 10 }),
        fc.option(fc.string(), { nil: null }),
        (episodes, next) => {
          const central = { episodes, next, prev: null, estimated_count: episodes.length };
          expect(episodesList.safeParse(central).success).toBe(true);
          expect(episodeListShape.safeParse(central).success).toBe(true);
          const external = {
            episodes: episodes.map(({ opened_at, updated_at, closed_at }) => ({
              opened_at,
              updated_at,
              closed_at,
            })),
          };
          expect(externalEpisodesList.safeParse(external).success).toBe(true);
          expect(episodeListShape.safeParse(external).success).toBe(true);
        },
      ),
    );
  });

  it("the simulator answers as the contract says, and its faults do not", async () => {
    sim = await FlussonicSimulator.start({ now: () => NOW, streams: 1 });
    central = await CentralSimulator.start({ pageSize: 1 });
    central.addServer({ hostname: "a.example", sim });
    sim.setEpisodes([
      { episode_id: 1, media: "cam1", opened_at: NOW * 1000, updated_at: NOW * 1000 + 5000 },
      {
        episode_id: 2,
        media: "cam1",
        opened_at: NOW * 1000,
        updated_at: NOW * 1000,
        closed_at: NOW * 1000 + 1,
      },
    ]);
    const external = await (await fetch(`${sim.url}${EPISODES_PATH}?name=cam1`)).json();
    expect(externalEpisodesList.parse(external).episodes).toHaveLength(2);
    const page = await (await fetch(`${central.url}/streamer/api/v3/episodes?limit=1`)).json();
    const parsed = episodesList.parse(page);
    expect(parsed.episodes.map((e) => e.episode_id)).toEqual([1]);
    expect(parsed.next).toBeTruthy();
    for (const fault of ["bad-json", "wrong-shape"] as const) {
      sim.setFaults({ episodesFault: fault });
      const text = await (await fetch(`${sim.url}${EPISODES_PATH}?name=cam1`)).text();
      const valid = (() => {
        try {
          return externalEpisodesList.safeParse(JSON.parse(text)).success;
        } catch {
          return false;
        }
      })();
      expect(valid).toBe(false);
    }
    sim.setFaults({ episodesFault: "error" });
    expect((await fetch(`${central.url}/streamer/api/v3/episodes`)).status).toBe(503);
  });
});
