/**
 * The Flussonic adapter against the simulator: stream list, both range generations, the playback
 * fallback, archive windows, auth and the error hierarchy.
 */
import { inspect } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { HttpHop } from "../../dev/kit/http-hop.ts";
import { parseConfig, Secret, type SourceCredentials } from "../../functions/config/config.ts";
import {
  BackupError,
  MalformedAnswerError,
  RetryableError,
  SetupError,
  WindowGoneError,
} from "../../functions/domain/errors.ts";
import { FlussonicClient } from "../../functions/source/flussonic.ts";
import { FlussonicSimulator, type SimulatorOptions } from "../../simulator/simulator.ts";

const NOW = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
const H = 3600;
let sim: FlussonicSimulator | undefined;
let client: FlussonicClient | undefined;
afterEach(async () => {
  await client?.close();
  await sim?.close();
  sim = undefined;
  client = undefined;
});

async function setup(
  simOptions: SimulatorOptions,
  source: Record<string, unknown> = {},
  credentials: SourceCredentials = { type: "none" },
) {
  sim = await FlussonicSimulator.start({ now: () => NOW, ...simOptions });
  const config = parseConfig(
    JSON.stringify({ bucket: "test-bucket", sources: [{ name: "src1", url: sim.url, ...source }] }),
    "test.json",
  );
  client = new FlussonicClient(config.sources[0]!, credentials);
  return { sim, client };
}

async function body(c: FlussonicClient, name: string, from: number, duration: number, format: "mp4" | "ts") {
  const w = await c.openWindow(name, from, duration, format);
  const parts: Buffer[] = [];
  for await (const chunk of w.body) parts.push(chunk as Buffer);
  return { bytes: Buffer.concat(parts), contentLength: w.contentLength };
}

const manyRanges = Array.from({ length: 200 }, (_, i) => ({
  from: NOW - 2 * H + i * 30,
  to: NOW - 2 * H + i * 30 + 20,
}));

describe("Flussonic client against the simulator", () => {
  it("lists only streams with a DVR archive, across cursor pages holding '/', '+' or '='", async () => {
    const { client: c, sim: s } = await setup({ streams: 23, pageSize: 4, liveOnlyStreams: 3 });
    const streams = await c.listDvrStreams();
    expect(streams.map((x) => x.name).sort()).toEqual(
      s
        .streams()
        .map((x) => x.name)
        .sort(),
    );
    expect(streams).toHaveLength(23);
    const pages = s.requests.filter((r) => r.path.startsWith("/streamer/api/v3/streams?"));
    expect(pages.length).toBe(Math.ceil(26 / 4));
    // Bitrate derives from dvr_info bytes and duration.
    const cam1 = streams.find((x) => x.name === "cam1")!;
    expect(cam1.bitrateBps).toBe(s.streams().find((x) => x.name === "cam1")!.bitrateBps);
    // The archive depth: the DVR expiration and the oldest second held (dvr_info.from).
    expect(cam1.expirationSeconds).toBe(s.streams().find((x) => x.name === "cam1")!.depthSeconds);
    expect(cam1.oldest).toBe(s.rangesOf("cam1")[0]!.from);
  });

  for (const rangeFields of ["seconds", "milliseconds"] as const) {
    it(`reads paged ranges in the ${rangeFields} generation, with the open last range ending at the span`, async () => {
      const { client: c, sim: s } = await setup({
        streams: [{ name: "live/cam 1", ranges: [...manyRanges, { from: NOW - 10 * 60, to: NOW + 1 }] }],
        rangeFields,
        pageSize: 50,
      });
      const span = { from: NOW - 3 * H, to: NOW };
      const got = await c.recordedRanges("live/cam 1", span);
      expect(got).toEqual(s.rangesOf("live/cam 1"));
      expect(got.at(-1)).toEqual({ from: NOW - 600, to: NOW });
      expect(got).toHaveLength(201);
      expect(s.requests.filter((r) => r.path.includes("/dvr/ranges")).length).toBe(Math.ceil(201 / 50));
    });
  }

  it("falls back to recording_status.json with a play token", async () => {
    const { client: c, sim: s } = await setup(
      {
        streams: [
          {
            name: "cam1",
            ranges: [
              { from: NOW - H, to: NOW - 1800 },
              { from: NOW - 1700, to: NOW + 1 },
            ],
          },
        ],
        auth: { playToken: "s3cr3t-token" },
      },
      { streams: ["cam1"], auth: { type: "token", tokenEnv: "T" } },
      { type: "token", token: new Secret("s3cr3t-token") },
    );
    const got = await c.recordedRanges("cam1", { from: NOW - 2 * H, to: NOW });
    expect(got).toEqual([
      { from: NOW - H, to: NOW - 1800 },
      { from: NOW - 1700, to: NOW },
    ]);
    const { bytes } = await body(c, "cam1", NOW - 1200, 60, "mp4");
    expect(bytes.equals(s.body("cam1", NOW - 1200, 60, "mp4"))).toBe(true);
    expect(s.requests.some((r) => r.path.includes("recording_status.json"))).toBe(true);
  });

  it("sends the play token on the wire only: never in its errors (HTTP status, malformed answer, lost connection)", async () => {
    const secret = "s3cr3t-token";
    const s = await FlussonicSimulator.start({
      now: () => NOW,
      streams: [{ name: "cam1", ranges: [{ from: NOW - H, to: NOW + 1 }] }],
      auth: { playToken: secret },
    });
    sim = s;
    const wire: string[] = []; // what the client really sent (the simulator's own log redacts it)
    const hop = await HttpHop.start(s.url, (req) => {
      wire.push(req.url ?? "");
      return false;
    });
    try {
      const config = parseConfig(
        JSON.stringify({
          bucket: "test-bucket",
          sources: [
            { name: "src1", url: hop.url, streams: ["cam1"], auth: { type: "token", tokenEnv: "T" } },
          ],
        }),
        "test.json",
      );
      const c = new FlussonicClient(config.sources[0]!, { type: "token", token: new Secret(secret) });
      client = c;
      expect(await c.recordedRanges("cam1", { from: NOW - 2 * H, to: NOW })).toHaveLength(1);
      expect(wire.some((u) => u.includes(`token=${secret}`))).toBe(true);
      const errors: unknown[] = [];
      const failing = async (
        faults: Parameters<FlussonicSimulator["setFaults"]>[0],
        call: () => Promise<unknown>,
      ) => {
        s.setFaults(faults);
        errors.push(
          await call().then(
            () => new Error("no error"),
            (e: unknown) => e,
          ),
        );
      };
      await failing({ target: "all", failNext: 1, errorStatus: 503 }, () =>
        c.recordedRanges("cam1", { from: NOW - H, to: NOW }),
      );
      await failing({ target: "archive", failNext: 1, errorStatus: 403 }, () =>
        c.openWindow("cam1", NOW - 600, 60, "mp4"),
      );
      await failing({ target: "index", indexFault: "bad-json" }, () =>
        c.recordedRanges("cam1", { from: NOW - H, to: NOW }),
      );
      s.setFaults({});
      await hop.close();
      await failing({}, () => c.recordedRanges("cam1", { from: NOW - H, to: NOW }));
      for (const e of errors) {
        expect(e).toBeInstanceOf(BackupError);
        // What a log line or a dead-letter reason can show: message, stack, causes, fields.
        const shown = [String(e), (e as Error).stack, inspect(e, { depth: 8 }), JSON.stringify(e)].join("\n");
        expect(shown, String(e)).not.toContain(secret);
        expect(shown, String(e)).not.toContain(encodeURIComponent(secret));
      }
    } finally {
      await hop.close();
    }
  });

  it("streams mp4 and ts windows byte for byte, with and without Content-Length", async () => {
    for (const sendContentLength of [false, true]) {
      const { client: c, sim: s } = await setup({
        streams: [{ name: "cam1", bitrateBps: 400_000, ranges: [{ from: NOW - H, to: NOW + 1 }] }],
        sendContentLength,
      });
      for (const format of ["mp4", "ts"] as const) {
        const { bytes, contentLength } = await body(c, "cam1", NOW - 600, 120, format);
        const expected = s.body("cam1", NOW - 600, 120, format);
        expect(bytes.equals(expected), `${format} content-length=${sendContentLength}`).toBe(true);
        expect(contentLength).toBe(sendContentLength ? expected.length : undefined);
      }
      await c.close();
      await s.close();
    }
  });

  it("classifies a window retention removed as gone (404)", async () => {
    const { client: c } = await setup({
      streams: [{ name: "cam1", ranges: [{ from: NOW - H, to: NOW + 1 }] }],
    });
    await expect(c.openWindow("cam1", NOW - 2 * H, 60, "mp4")).rejects.toBeInstanceOf(WindowGoneError);
  });

  it("classifies 401 as a configuration error naming the source and status", async () => {
    const { client: c } = await setup(
      { streams: 1, auth: { basic: { username: "backup", password: "right" } } },
      { auth: { type: "basic", username: "backup", passwordEnv: "P" } },
      { type: "basic", username: "backup", password: new Secret("wrong-password") },
    );
    const error = await c.listDvrStreams().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SetupError);
    expect(String(error)).toMatch(/source src1: stream list: HTTP 401/);
    expect(String(error)).not.toContain("wrong-password");
  });

  it("accepts basic and bearer credentials", async () => {
    const { client: c } = await setup(
      { streams: 2, auth: { basic: { username: "backup", password: "pw" } } },
      { auth: { type: "basic", username: "backup", passwordEnv: "P" } },
      { type: "basic", username: "backup", password: new Secret("pw") },
    );
    expect(await c.listDvrStreams()).toHaveLength(2);
    await c.close();
    await sim!.close();
    const { client: c2 } = await setup(
      { streams: 2, auth: { bearer: "tok" } },
      { auth: { type: "bearer", tokenEnv: "T" } },
      { type: "bearer", token: new Secret("tok") },
    );
    expect(await c2.listDvrStreams()).toHaveLength(2);
  });

  it("classifies 503 with Retry-After and 429 as retryable, with the delay", async () => {
    const { client: c, sim: s } = await setup({
      streams: 1,
      faults: { target: "all", failNext: 1, errorStatus: 503, retryAfterSeconds: 7 },
    });
    const error = await c.listDvrStreams().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as RetryableError).retryAfterSeconds).toBe(7);
    expect((error as RetryableError).status).toBe(503);
    s.setFaults({ target: "archive", failNext: 1, errorStatus: 429 });
    const r = s.rangesOf("cam1").at(-1)!;
    const e2 = await c.openWindow("cam1", r.to - 120, 60, "mp4").catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(RetryableError);
    expect((e2 as RetryableError).status).toBe(429);
  });

  it("says what is wrong with a malformed index: bad JSON and wrong shape", async () => {
    const { client: c, sim: s } = await setup({
      streams: 1,
      faults: { target: "index", indexFault: "bad-json" },
    });
    const bad = await c.listDvrStreams().catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(MalformedAnswerError);
    expect(String(bad)).toMatch(/stream list/);
    s.setFaults({ target: "index", indexFault: "wrong-shape" });
    const shape = await c.recordedRanges("cam1", { from: NOW - H, to: NOW }).catch((e: unknown) => e);
    expect(shape).toBeInstanceOf(MalformedAnswerError);
    expect(String(shape)).toMatch(/ranges of stream "cam1".*ranges/);
  });

  it("turns a refused connection and a stalled body into retryable errors", async () => {
    const { client: c, sim: s } = await setup(
      { streams: [{ name: "cam1", bitrateBps: 800_000, ranges: [{ from: NOW - H, to: NOW + 1 }] }] },
      { timeouts: { connectSeconds: 1, headersSeconds: 1, bodyIdleSeconds: 1 } },
    );
    s.setFaults({ stallAfterBytes: 10_000 });
    const w = await c.openWindow("cam1", NOW - 600, 60, "mp4");
    const read = (async () => {
      for await (const _ of w.body) {
        // drain until the idle timeout fires
      }
    })();
    const started = performance.now();
    const stalled = await read.then(
      () => new Error("the stalled body ended"),
      (e: unknown) => e,
    );
    // The body fails at the idle timeout (1 s here), not at the test's. The copier's retry of a
    // stalled window is checked in test/local/metrics.test.ts (result `retry`, reason `timeout`).
    expect(String(stalled)).toMatch(/timeout/i);
    expect(performance.now() - started).toBeLessThan(5000);
    // Either a network error (the copy wraps it as retryable) or a BackupError that is retryable.
    expect(!(stalled instanceof BackupError) || stalled.retryable, String(stalled)).toBe(true);
    await s.pauseListening();
    const refused = await c.listDvrStreams().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RetryableError);
    expect(String(refused)).toMatch(/refused|ECONNREFUSED|closed|socket/i);
  });

  it("refuses an unknown stream as a configuration error", async () => {
    const { client: c } = await setup({ streams: 1 });
    await expect(c.dvrStream("nope")).rejects.toBeInstanceOf(SetupError);
  });
});
