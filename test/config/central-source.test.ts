/** Config of a Flussonic Central source (`kind: "central"`): defaults, and one clear sentence per mistake. */
import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig, serverCaps } from "../../functions/config/config.ts";

const parse = (source: Record<string, unknown>) =>
  parseConfig(
    JSON.stringify({
      bucket: "b-backup",
      sources: [{ name: "fleet", url: "https://central.example", ...source }],
    }),
    "c.json",
  );
const problems = (source: Record<string, unknown>) => {
  try {
    parse(source);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
};

describe("a central source in the config", () => {
  it("defaults: each server 2 copies, 100 Mbit/s, the source's own auth; a server source is unchanged", () => {
    const s = parse({ kind: "central" }).sources[0]!;
    expect(s.kind).toBe("central");
    expect(serverCaps(s)).toEqual({ maxConcurrentCopies: 2, maxBandwidthMbps: 100, auth: "central" });
    const plain = parse({}).sources[0]!;
    expect("kind" in plain).toBe(false);
    expect("eachServer" in plain).toBe(false);
    expect(serverCaps(parse({ kind: "central", eachServer: { maxBandwidthMbps: 20 } }).sources[0]!)).toEqual({
      maxConcurrentCopies: 2,
      maxBandwidthMbps: 20,
      auth: "central",
    });
  });

  it("episodes: pre- and post-roll default to 30 s; a central source needs no URL", () => {
    expect(parse({ kind: "central", episodes: {} }).sources[0]!.episodes).toEqual({
      preRollSeconds: 30,
      postRollSeconds: 30,
    });
    expect(
      parse({ episodes: { url: "https://c.example/episodes", postRollSeconds: 120 } }).sources[0]!.episodes,
    ).toEqual({
      url: "https://c.example/episodes",
      preRollSeconds: 30,
      postRollSeconds: 120,
    });
  });

  it.each([
    [
      { kind: "fleet" },
      'c.json: sources[0].kind: expected "server" (one Flussonic Media Server) or "central" (a Flussonic Central or Watcher API whose servers are found by themselves)',
    ],
    [
      { kind: "central", archiveUrl: "https://x.example" },
      'c.json: sources[0].archiveUrl: a central source reads each server at the address Central gives it (api_url, private_payload_url): remove archiveUrl, or make this source kind "server"',
    ],
    [
      { kind: "central", index: "playback", streams: ["a.example/cam1"] },
      'c.json: sources[0].index: a central source lists servers and streams through Central\'s admin API: use auth "none", "basic" or "bearer" and index "auto" or "api"',
    ],
    [
      { kind: "central", streams: ["cam1"] },
      'c.json: sources[0].streams[0]: a central source names its streams "<server hostname>/<stream>", like "streamer1.example.com/cam1"',
    ],
    [
      { eachServer: { maxConcurrentCopies: 1 } },
      'c.json: sources[0].eachServer: eachServer is for sources of kind "central" (the cap of each server Central lists)',
    ],
    [
      { kind: "central", eachServer: { auth: "token" } },
      'c.json: sources[0].eachServer.auth: expected "central" or "cluster_key"',
    ],
    [
      { episodes: {} },
      'c.json: sources[0].episodes.url: a source of kind "server" has no episodes API of its own: give the episodes URL its episodes_url points at, or remove episodes',
    ],
    [
      { kind: "central", episodes: { preRollSeconds: -1 } },
      "c.json: sources[0].episodes.preRollSeconds: expected 0 or more seconds (got -1)",
    ],
  ])("%j: %s", (source, problem) => {
    expect(problems(source)).toEqual([problem]);
  });
});
