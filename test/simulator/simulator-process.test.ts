/**
 * The simulator in a process of its own (dev/kit/simulator-process.ts, what bench figure 6 measures
 * the source with): it serves from another process, its meter's figures come back over the pipe
 * once the downloads' bytes were acknowledged, and a reset starts a new measurement.
 */
import { once } from "node:events";
import { connect, createServer, type Socket } from "node:net";
import { request } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { worstSecond } from "../../dev/bench/small-windows.ts";
import { maxRateOf, type SimulatorProcess, startSimulatorProcess } from "../../dev/kit/simulator-process.ts";
import { DownloadMeter } from "../../simulator/meter.ts";

const NOW = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
let sim: SimulatorProcess | undefined;
afterEach(async () => {
  await sim?.stop();
  sim = undefined;
});

describe("simulator process", () => {
  it("serves from its own process and reports what its meter counted", async () => {
    sim = await startSimulatorProcess({
      nowSeconds: NOW,
      liveOnlyStreams: 0,
      streams: [{ name: "c", bitrateBps: 800_000, ranges: [{ from: NOW - 3600, to: NOW + 1 }] }],
    });
    expect(sim.pid).not.toBe(process.pid);
    const get = async (from: number) => {
      const res = await request(`${sim!.url}/c/archive-${from}-5.mp4`);
      expect(res.statusCode).toBe(200);
      return (await res.body.arrayBuffer()).byteLength;
    };
    const sizes = [await get(NOW - 100), await get(NOW - 200)];
    const m = await sim.meter();
    expect(m.downloads).toBe(2);
    // What left the source: the bodies plus their HTTP headers, every byte in the series.
    const bodies = sizes[0]! + sizes[1]!;
    expect(m.bytesServed).toBeGreaterThanOrEqual(bodies);
    expect(m.bytesServed).toBeLessThan(bodies + 2 * 1024);
    expect(m.series.reduce((n, [, b]) => n + b, 0)).toBe(m.bytesServed);
    expect(maxRateOf(m.series, 1000)).toBeGreaterThan(0);
    expect(m.averageRate).toBeGreaterThan(0);

    await sim.reset();
    const after = await sim.meter();
    expect(after.downloads).toBe(0);
    expect(after.bytesServed).toBe(0);
    expect(after.series).toEqual([]);
  });

  it("stops on stop(): its port no longer answers", async () => {
    sim = await startSimulatorProcess({ nowSeconds: NOW, streams: 1 });
    const url = sim.url;
    await sim.stop();
    sim = undefined;
    await expect(request(`${url}/streamer/api/v3/streams`)).rejects.toThrow();
  });
});

describe("worst second of a meter's series", () => {
  it("finds the second with the most bytes and lists the bursts in it", () => {
    // 100 KiB at 0 ms, 100 KiB at 950 ms (the same second), 100 KiB at 3000 ms alone.
    const series: [number, number][] = [
      [0, 51_200],
      [10, 51_200],
      [950, 102_400],
      [3000, 102_400],
    ];
    expect(maxRateOf(series, 1000)).toBe(204_800);
    expect(worstSecond(series)).toBe("+0..20 ms 100 KiB, +950..960 ms 100 KiB");
    expect(worstSecond([])).toBe("-");
  });
});

describe("meter samples", () => {
  it("records a sample that came late, the first one after a start included", async () => {
    const server = createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const accepted = once(server, "connection");
    const client = connect((server.address() as { port: number }).port, "127.0.0.1");
    const [socket] = (await accepted) as [Socket];
    // A clock that jumps 100 ms at the first tick, then moves 10 ms a tick.
    const times = [0, 100, 110, 120];
    let i = 0;
    const meter = new DownloadMeter(() => times[Math.min(i++, times.length - 1)]!);
    try {
      meter.started(socket);
      socket.write(Buffer.alloc(1000));
      await meter.settled();
      meter.ended(socket);
      await meter.settled();
      if (meter.mode === "wire") expect(meter.lateSamples[0]).toEqual([0, 100]);
    } finally {
      meter.close();
      client.destroy();
      socket.destroy();
      server.close();
    }
  });
});
