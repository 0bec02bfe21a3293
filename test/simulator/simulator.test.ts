/**
 * The simulator itself: recorded ranges follow the clock and the depth, bodies are deterministic
 * and well framed, faults fire as configured, and the meter counts what the source serves.
 */
import { request } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { containerCheck } from "../../functions/domain/container-check.ts";
import { clipRanges } from "../../functions/domain/ranges.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";

const NOW = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
const H = 3600;
let sim: FlussonicSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe("Flussonic simulator", () => {
  it("grows the open range with the clock and forgets what is older than the depth", async () => {
    let now = NOW;
    sim = await FlussonicSimulator.start({
      now: () => now,
      streams: [
        {
          name: "cam1",
          depthSeconds: 2 * H,
          ranges: [
            { from: NOW - 3 * H, to: NOW - H },
            { from: NOW - 1800, to: NOW + 1 },
          ],
        },
      ],
    });
    expect(sim.rangesOf("cam1")).toEqual([
      { from: NOW - 2 * H, to: NOW - H },
      { from: NOW - 1800, to: NOW },
    ]);
    now += 600;
    expect(sim.rangesOf("cam1")).toEqual([
      { from: NOW - 2 * H + 600, to: NOW - H },
      { from: NOW - 1800, to: NOW + 600 },
    ]);
  });

  it("generates the same archive for the same seed whenever it starts", async () => {
    const a = await FlussonicSimulator.start({ now: () => NOW, streams: 3, seed: 7 });
    const b = await FlussonicSimulator.start({ now: () => NOW + 5000, streams: 3, seed: 7 });
    try {
      const ra = a.rangesOf("cam2");
      const rb = b.rangesOf("cam2");
      expect(ra.length).toBeGreaterThan(1);
      // Same gaps at the same absolute times; b simply sees 5000 s later.
      const common = [NOW + 5000 - 86_400, NOW] as const;
      expect(clipRanges(rb, ...common)).toEqual(clipRanges(ra, ...common));
      expect(a.body("cam2", NOW - 600, 30, "mp4").equals(b.body("cam2", NOW - 600, 30, "mp4"))).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("serves bodies whose framing the container check accepts, each second distinct", async () => {
    sim = await FlussonicSimulator.start({
      now: () => NOW,
      streams: [{ name: "c", bitrateBps: 100_000, ranges: [{ from: NOW - H, to: NOW + 1 }] }],
    });
    for (const format of ["mp4", "ts"] as const) {
      const body = sim.body("c", NOW - 100, 10, format);
      const check = containerCheck(format);
      check.feed(body);
      expect(() => check.finish()).not.toThrow();
      expect(body.equals(sim.body("c", NOW - 99, 10, format))).toBe(false);
    }
    // Only recorded seconds are served: a window across the start of the archive is shorter.
    expect(sim.body("c", NOW - H - 5, 10, "ts").length).toBe(sim.body("c", NOW - H, 5, "ts").length);
  });

  it("meters concurrent downloads and the byte rate the source serves", async () => {
    sim = await FlussonicSimulator.start({
      now: () => NOW,
      streams: [{ name: "c", bitrateBps: 800_000, ranges: [{ from: NOW - H, to: NOW + 1 }] }],
      faults: { bodyBytesPerSecond: 1_000_000 },
    });
    const get = async (from: number) => {
      const res = await request(`${sim!.url}/c/archive-${from}-5.mp4`);
      return (await res.body.arrayBuffer()).byteLength;
    };
    const sizes = await Promise.all([get(NOW - 100), get(NOW - 200), get(NOW - 300)]);
    await sim.meter.settled();
    expect(sim.meter.peakActive).toBe(3);
    expect(sim.meter.active).toBe(0);
    // What left the source: the bodies plus their HTTP headers.
    const bodies = sizes.reduce((a, b) => a + b, 0);
    expect(sim.meter.bytesServed).toBeGreaterThanOrEqual(bodies);
    expect(sim.meter.bytesServed).toBeLessThan(bodies + 3 * 1024);
    // Three paced bodies at 1 MB/s each: about 3 MB/s at the source.
    const rate = sim.meter.maxRate(200);
    expect(rate).toBeGreaterThan(2_000_000);
    expect(rate).toBeLessThan(4_500_000);
  });

  it("meters the bytes of a response whose connection is closed after it (Connection: close)", async () => {
    sim = await FlussonicSimulator.start({
      now: () => NOW,
      streams: [{ name: "c", bitrateBps: 800_000, ranges: [{ from: NOW - H, to: NOW + 1 }] }],
    });
    // 3 MB: more than the kernel sends before the server's socket is closed and destroyed.
    const res = await request(`${sim.url}/c/archive-${NOW - 100}-30.mp4`, { reset: true });
    expect(res.headers.connection).toBe("close");
    const size = (await res.body.arrayBuffer()).byteLength;
    await sim.meter.settled();
    expect(sim.meter.bytesServed).toBeGreaterThanOrEqual(size);
    expect(sim.meter.bytesServed).toBeLessThan(size + 1024);
  });

  it("injects errors with Retry-After, then serves again", async () => {
    sim = await FlussonicSimulator.start({
      now: () => NOW,
      streams: 1,
      faults: { target: "index", failNext: 2, retryAfterSeconds: 3 },
    });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await request(`${sim.url}/streamer/api/v3/streams`);
      await res.body.dump();
      statuses.push(res.statusCode);
      if (res.statusCode === 503) expect(res.headers["retry-after"]).toBe("3");
    }
    expect(statuses).toEqual([503, 503, 200]);
  });

  it("refuses connections while paused and serves after resuming on the same port", async () => {
    sim = await FlussonicSimulator.start({ now: () => NOW, streams: 1 });
    const url = sim.url;
    await sim.pauseListening();
    await expect(request(`${url}/streamer/api/v3/streams`)).rejects.toThrow(/ECONNREFUSED/);
    await sim.resumeListening();
    const res = await request(`${url}/streamer/api/v3/streams`);
    await res.body.dump();
    expect(res.statusCode).toBe(200);
  });
});
