/**
 * Issue 27: the client against a simulator that answers as Flussonic's OpenAPI says
 * (flussonic/openapi-demo, openapi/flussonic/) and, where servers differ, in the older documented
 * shapes: recording_status.json, the range field generations, archive 404s, remote streams and
 * Accept, play auth.
 */
import { afterEach, describe, expect, it } from "vitest";
import { expectExactCopies } from "../../dev/kit/backup-checks.ts";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { parseConfig, Secret, type SourceCredentials } from "../../functions/config/config.ts";
import { MalformedAnswerError, SetupError, WindowGoneError } from "../../functions/domain/errors.ts";
import { clipRanges } from "../../functions/domain/ranges.ts";
import { FlussonicClient } from "../../functions/source/flussonic.ts";
import { runOnce } from "../../local/once.ts";
import { FlussonicSimulator, type SimulatorOptions } from "../../simulator/simulator.ts";

const NOW = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
let sim: FlussonicSimulator | undefined;
let client: FlussonicClient | undefined;
let h: Harness | undefined;
afterEach(async () => {
  await client?.close();
  await sim?.close();
  await h?.close();
  sim = undefined;
  client = undefined;
  h = undefined;
});

async function setup(
  simOptions: SimulatorOptions,
  source: Record<string, unknown> = {},
  credentials: SourceCredentials = { type: "none" },
  archivePrefix?: string,
) {
  sim = await FlussonicSimulator.start({ now: () => NOW, ...simOptions });
  const config = parseConfig(
    JSON.stringify({
      bucket: "test-bucket",
      sources: [
        {
          name: "src1",
          url: sim.url,
          ...(archivePrefix === undefined ? {} : { archiveUrl: `${sim.url}${archivePrefix}` }),
          ...source,
        },
      ],
    }),
    "test.json",
  );
  client = new FlussonicClient(config.sources[0]!, credentials);
  return { sim, client };
}

const gappy = [
  { from: NOW - 3 * HOUR, to: NOW - 2 * HOUR },
  { from: NOW - 2 * HOUR + 300, to: NOW - HOUR },
  { from: NOW - HOUR + 45, to: NOW + 1 },
];

describe("recording_status.json in both shapes (item 1)", () => {
  for (const shape of ["spec", "docs"] as const) {
    it(`backs up a token-auth source in full when recording_status.json is the ${shape === "spec" ? "spec's dvr_info object" : "documented array"}`, async () => {
      const now0 = NOW;
      h = await startHarness({
        sim: {
          shape,
          auth: { playToken: "play-s3cr3t" },
          streams: [
            { name: "cam1", bitrateBps: 80_000, ranges: gappy.map((r) => ({ ...r })) },
            { name: "live/cam 2", bitrateBps: 60_000, ranges: [{ from: now0 - 2 * HOUR, to: now0 + 1 }] },
          ],
        },
        source: {
          retentionDays: 1 / 24,
          streams: ["cam1", "live/cam 2"],
          auth: { type: "token", tokenEnv: "T" },
        },
        credentials: { type: "token", token: new Secret("play-s3cr3t") },
      });
      const rt = await h.runtime();
      const run = await runOnce(rt, h.tally);
      expect(run.ok, h.logs.filter((l) => /error|warn/i.test(l)).join("\n")).toBe(true);
      expect(run.deadLettered).toEqual([]);
      expect(run.copied).toBeGreaterThan(0);
      const now = h.clock.now();
      const lastBoundary = Math.floor((now - h.config.settleSeconds) / 600) * 600;
      for (const stream of ["cam1", "live/cam 2"]) {
        await expectExactCopies(h, stream, clipRanges(h.sim.rangesOf(stream), now - HOUR, lastBoundary));
      }
      expect(h.sim.requests.some((r) => r.path.includes("/recording_status.json"))).toBe(true);
      expect(h.sim.requests.every((r) => !r.path.includes("play-s3cr3t"))).toBe(true);
      expect(h.logs.filter((l) => l.includes("play-s3cr3t"))).toEqual([]);
    });
  }
});

describe("a recording_status.json without ranges (newer servers)", () => {
  it("backs up a token-auth source from ranges.json when dvr_info has no ranges", async () => {
    h = await startHarness({
      sim: {
        recordingStatusRanges: false,
        auth: { playToken: "play-s3cr3t" },
        streams: [{ name: "cam1", bitrateBps: 80_000, ranges: gappy.map((r) => ({ ...r })) }],
      },
      source: { retentionDays: 1 / 24, streams: ["cam1"], auth: { type: "token", tokenEnv: "T" } },
      credentials: { type: "token", token: new Secret("play-s3cr3t") },
    });
    const rt = await h.runtime();
    const run = await runOnce(rt, h.tally);
    expect(run.ok, h.logs.filter((l) => /error|warn/i.test(l)).join("\n")).toBe(true);
    expect(run.copied).toBeGreaterThan(0);
    const now = h.clock.now();
    const lastBoundary = Math.floor((now - h.config.settleSeconds) / 600) * 600;
    await expectExactCopies(h, "cam1", clipRanges(h.sim.rangesOf("cam1"), now - HOUR, lastBoundary));
    expect(h.sim.requests.some((r) => r.path.includes("/ranges.json?"))).toBe(true);
  });
});

describe("a recording_status.json of neither shape (item 1)", () => {
  it("is a malformed answer that names both shapes it could have been", async () => {
    const { client: c } = await setup(
      { streams: 1, auth: { playToken: "t" }, faults: { target: "index", indexFault: "wrong-shape" } },
      { streams: ["cam1"], auth: { type: "token", tokenEnv: "T" } },
      { type: "token", token: new Secret("t") },
    );
    const error = await c.recordedRanges("cam1", { from: NOW - HOUR, to: NOW }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MalformedAnswerError);
    expect(String(error)).toMatch(/recording status of stream "cam1".*dvr_info object.*or an array/);
  });
});

describe("a 404 on an archive download (item 2)", () => {
  it("is a failure naming the URL and the config field while the stream's ranges still hold the window", async () => {
    const { client: c, sim: s } = await setup(
      { streams: [{ name: "cam1", ranges: [{ from: NOW - HOUR, to: NOW + 1 }] }] },
      {},
      { type: "none" },
      "/wrong-prefix",
    );
    const error = await c.openWindow("cam1", NOW - 1200, 600, "mp4").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SetupError);
    expect(String(error)).toContain(`${s.url}/wrong-prefix/cam1/archive-${NOW - 1200}-600.mp4`);
    expect(String(error)).toMatch(/archiveUrl/);
    expect(String(error)).toMatch(/HTTP 404/);
  });

  it("is a failure naming `url` when no archiveUrl is set, and a window retention deleted is still gone", async () => {
    const { client: c, sim: s } = await setup({
      streams: [{ name: "cam1", ranges: [{ from: NOW - HOUR, to: NOW + 1 }] }],
    });
    // The stream's ranges hold the window but the export answers 404 (e.g. not loaded yet).
    s.setFaults({ target: "archive", failNext: 1, errorStatus: 404 });
    const error = await c.openWindow("cam1", NOW - 1200, 600, "ts").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SetupError);
    expect(String(error)).toContain(`${s.url}/cam1/archive-${NOW - 1200}-600.ts`);
    expect(String(error)).toMatch(/sources\[\]\.url|"url"/);
    // Seconds no longer in the ranges: gone, as before.
    await expect(c.openWindow("cam1", NOW - 2 * HOUR, 600, "mp4")).rejects.toBeInstanceOf(WindowGoneError);
    // A window whose start retention deleted (the archive now starts inside it): gone, whatever
    // a server answers for the rest of it.
    s.setFaults({ target: "archive", failNext: 1, errorStatus: 404 });
    await expect(c.openWindow("cam1", NOW - HOUR - 300, 600, "mp4")).rejects.toBeInstanceOf(WindowGoneError);
  });

  it("with a wrong archiveUrl, a backup dead-letters its windows with the reason instead of dropping them as gone", async () => {
    h = await startHarness({
      sim: { streams: [{ name: "cam1", ranges: [{ from: NOW - 2 * HOUR, to: NOW + 1 }] }] },
      source: { retentionDays: 1 / 24, archiveUrl: "http://127.0.0.1:1/x" },
    });
    // The harness's source URL is the simulator; point the archive at a prefix it does not serve.
    h.config.sources[0]!.archiveUrl = `${h.sim.url}/wrong-prefix`;
    const rt = await h.runtime();
    const run = await runOnce(rt, h.tally);
    expect(run.gone).toBe(0);
    expect(run.ok).toBe(false);
    const dead = h.tally.events.filter((e) => e.type === "dead-lettered");
    expect(dead.length).toBeGreaterThan(0);
    expect(dead[0]!.reason).toMatch(/archiveUrl/);
  });
});

describe("range field generations (item 3)", () => {
  const expected = gappy.map((r) => ({ from: r.from, to: Math.min(r.to, NOW) }));
  for (const rangeFields of ["seconds", "milliseconds", "both"] as const) {
    it(`reads closed ranges and their gaps from ${rangeFields}`, async () => {
      const { client: c } = await setup({ streams: [{ name: "cam1", ranges: gappy }], rangeFields });
      expect(await c.recordedRanges("cam1", { from: NOW - 4 * HOUR, to: NOW })).toEqual(expected);
    });
  }

  it("prefers from/duration when a server sends both and leaves closed_at out of closed ranges", async () => {
    const { client: c } = await setup({
      streams: [{ name: "cam1", ranges: gappy }],
      rangeFields: "both",
      omitClosedAt: true,
    });
    expect(await c.recordedRanges("cam1", { from: NOW - 4 * HOUR, to: NOW })).toEqual(expected);
  });

  it("refuses milliseconds-only ranges where a range before the last has no closed_at", async () => {
    const { client: c } = await setup({
      streams: [{ name: "cam1", ranges: gappy }],
      rangeFields: "milliseconds",
      omitClosedAt: true,
    });
    const error = await c.recordedRanges("cam1", { from: NOW - 4 * HOUR, to: NOW }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MalformedAnswerError);
    expect(String(error)).toMatch(/ranges of stream "cam1".*closed_at/);
  });
});

describe("the stream list (item 4)", () => {
  it("leaves out remote streams, asks for JSON and selects only the fields it reads", async () => {
    const { client: c, sim: s } = await setup({
      streams: 3,
      remoteStreams: 2,
      liveOnlyStreams: 1,
      anyAccept: "openmetrics",
    });
    const streams = await c.listDvrStreams();
    expect(streams.map((x) => x.name).sort()).toEqual(["cam1", "cam2", "cam3"]);
    const list = s.requests.find((r) => r.path.startsWith("/streamer/api/v3/streams?"))!;
    const select = new URL(list.path, "http://x").searchParams.get("select")?.split(",") ?? [];
    expect(select).toContain("name");
    expect(select).toContain("named_by");
  });
});

describe("play auth (item 5)", () => {
  it("says a 403 on a playback URL comes from play auth, which the admin login does not pass", async () => {
    const { client: c } = await setup(
      {
        streams: [{ name: "cam1", ranges: [{ from: NOW - HOUR, to: NOW + 1 }] }],
        auth: { basic: { username: "admin", password: "adm1n-pw" }, playToken: "tok", playAuth: true },
      },
      { auth: { type: "basic", username: "admin", passwordEnv: "P" } },
      { type: "basic", username: "admin", password: new Secret("adm1n-pw") },
    );
    // The admin API takes the login.
    expect(await c.recordedRanges("cam1", { from: NOW - HOUR, to: NOW })).toHaveLength(1);
    const error = await c.openWindow("cam1", NOW - 1200, 600, "mp4").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SetupError);
    expect(String(error)).toMatch(/HTTP 403/);
    expect(String(error)).toMatch(/play auth/);
    expect(String(error)).not.toContain("adm1n-pw");
  });
});
