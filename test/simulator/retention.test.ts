/**
 * The simulator's retention: the archive start moves on as (simulated) time passes, faster than real
 * time with a fast clock; the API reports the depth as Flussonic does (`dvr.expiration`, and
 * `stats.dvr_info.from` the oldest second); a disk limit deletes sooner than the expiration says.
 */
import { afterEach, describe, expect, it } from "vitest";
import { fastClock } from "../../simulator/clock.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";

let sim: FlussonicSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const START = 1_800_000_000;

async function streamEntry(name: string) {
  const res = await fetch(`${sim!.url}/streamer/api/v3/streams/${name}`);
  return (await res.json()) as { dvr?: { expiration?: number }; stats?: { dvr_info?: { from?: number } } };
}

describe("simulated retention", () => {
  it("a fast clock runs simulated time x times real time", () => {
    let real = 5_000;
    const clock = fastClock(600, START, () => real);
    expect(clock.now()).toBe(START);
    real += 1500;
    expect(clock.now()).toBe(START + 900);
    expect(() => fastClock(0)).toThrow(/positive/);
  });

  it("moves the archive start as time passes and reports expiration and the oldest second", async () => {
    let real = 0;
    const clock = fastClock(3600, START, () => real);
    sim = await FlussonicSimulator.start({
      now: clock.now,
      liveOnlyStreams: 0,
      streams: [
        { name: "cam1", depthSeconds: 7200, ranges: [{ from: START - 3600, to: Number.POSITIVE_INFINITY }] },
        {
          name: "cam2",
          depthSeconds: 7200,
          diskDepthSeconds: 3600,
          ranges: [{ from: START - 3600, to: Number.POSITIVE_INFINITY }],
        },
      ],
    });
    expect((await streamEntry("cam1")).dvr?.expiration).toBe(7200);
    expect((await streamEntry("cam1")).stats?.dvr_info?.from).toBe(START - 3600);
    // Two real seconds: two simulated hours. cam1 keeps its 2 hours, cam2 its disk's 1 hour,
    // though both report an expiration of 2 hours.
    real += 2000;
    expect(sim.rangesOf("cam1")[0]!.from).toBe(START);
    expect((await streamEntry("cam1")).stats?.dvr_info?.from).toBe(START);
    expect(sim.rangesOf("cam2")[0]!.from).toBe(START + 3600);
    expect((await streamEntry("cam2")).dvr?.expiration).toBe(7200);
    const gone = await fetch(`${sim.url}/cam1/archive-${START - 3600}-600.mp4`);
    expect(gone.status).toBe(404);
    await gone.body?.cancel();
  });
});
