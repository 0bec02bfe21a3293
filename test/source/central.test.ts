/**
 * A Flussonic Central source against the Central simulator and simulated media servers: servers and
 * streams found by themselves across pages, a server added and removed, the ways Central fails
 * (5xx, a server's stream list refused, a server listed at an address nobody answers), each
 * server's cap, and each server's cluster key as its credentials.
 */
import { afterEach, describe, expect, it } from "vitest";
import { parseConfig, Secret, type SourceCredentials } from "../../functions/config/config.ts";
import { MalformedAnswerError, RetryableError, SetupError } from "../../functions/domain/errors.ts";
import { CentralClient } from "../../functions/source/central.ts";
import { CentralSimulator } from "../../simulator/central.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";

const NOW = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function media(streams: number, options: Parameters<typeof FlussonicSimulator.start>[0] = {}) {
  const sim = await FlussonicSimulator.start({
    now: () => NOW,
    streams,
    days: 0.1,
    bitrateBps: 8000,
    ...options,
  });
  open.push(sim);
  return sim;
}

async function fleet(
  source: Record<string, unknown> = {},
  credentials: SourceCredentials = { type: "none" },
) {
  const central = await CentralSimulator.start({ pageSize: 2 });
  open.push(central);
  const config = parseConfig(
    JSON.stringify({
      bucket: "fleet-backup",
      sources: [{ name: "fleet", kind: "central", url: central.url, ...source }],
    }),
    "fleet.json",
  );
  const client = new CentralClient(config.sources[0]!, credentials);
  open.push(client);
  return { central, client };
}

const names = async (c: CentralClient) => (await c.listDvrStreams()).map((s) => s.name).sort();

describe("a Flussonic Central source", () => {
  it("finds every server's DVR streams across pages, then a server added, and no longer a server removed", async () => {
    const { central, client } = await fleet();
    const a = await media(3);
    const b = await media(3);
    central.addServer({ hostname: "a.example", sim: a });
    central.addServer({ hostname: "b.example", sim: b });
    // A node without media (vision) is not a server to copy from.
    central.addServer({ hostname: "v.example", sim: b, role: "vision" });
    expect(await names(client)).toEqual([
      "a.example/cam1",
      "a.example/cam2",
      "a.example/cam3",
      "b.example/cam1",
      "b.example/cam2",
      "b.example/cam3",
    ]);
    // Pages of 2: the server list and each stream list took more than one request.
    expect(central.requests.filter((r) => r.path.includes("cursor=")).length).toBeGreaterThanOrEqual(3);

    const c = await media(1);
    central.addServer({ hostname: "c.example", sim: c });
    central.removeServer("a.example");
    expect(await names(client)).toEqual([
      "b.example/cam1",
      "b.example/cam2",
      "b.example/cam3",
      "c.example/cam1",
    ]);
    expect(client.listingGaps()).toEqual([]);

    // Each stream is read on its own server.
    const ranges = await client.recordedRanges("c.example/cam1", { from: NOW - 3600, to: NOW });
    expect(ranges).toEqual(
      c
        .rangesOf("cam1")
        .map((r) => ({ from: Math.max(r.from, NOW - 3600), to: Math.min(r.to, NOW) }))
        .filter((r) => r.to > r.from),
    );
    expect(c.requests.some((r) => r.path.startsWith("/streamer/api/v3/streams/cam1/dvr/ranges"))).toBe(true);
    expect(b.requests.some((r) => r.path.includes("/dvr/ranges"))).toBe(false);
  });

  it("a 5xx of Central's server list fails the listing (nothing is taken as removed)", async () => {
    const { central, client } = await fleet();
    central.addServer({ hostname: "a.example", sim: await media(1) });
    central.setFaults({ failNext: 1, errorStatus: 503, target: "streamers" });
    const error = await client.listDvrStreams().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as Error).message).toBe("source fleet: server list (Central): HTTP 503");
    expect(await names(client)).toEqual(["a.example/cam1"]);
  });

  it("a server whose stream list Central refuses is a gap named in one sentence, the others are listed", async () => {
    const { central, client } = await fleet();
    central.addServer({ hostname: "a.example", sim: await media(1) });
    central.addServer({ hostname: "b.example", sim: await media(1) });
    central.setFaults({ refuseStreamsOf: "b.example" });
    expect(await names(client)).toEqual(["a.example/cam1"]);
    const gaps = client.listingGaps();
    expect(gaps.map((g) => g.server)).toEqual(["b.example"]);
    expect(gaps[0]!.error).toBeInstanceOf(SetupError);
    expect(gaps[0]!.error.message).toBe(
      "source fleet: stream list of server b.example (from Central): HTTP 403, access refused: check the source's auth settings and secret",
    );
  });

  it("a server listed at an address nobody answers: its streams fail at once with one sentence", async () => {
    const { central, client } = await fleet();
    const gone = await media(2);
    const url = gone.url;
    await gone.pauseListening();
    central.addServer({ hostname: "down.example", sim: gone, apiUrl: url });
    expect(await names(client)).toEqual(["down.example/cam1", "down.example/cam2"]);
    const first = await client
      .recordedRanges("down.example/cam1", { from: NOW - 60, to: NOW })
      .catch((e: unknown) => e);
    expect(first).toBeInstanceOf(RetryableError);
    expect((first as Error).message).toMatch(
      /^source fleet: server down\.example \(listed by Central\) is unreachable at http:\/\/127\.0\.0\.1:\d+: source fleet: ranges of stream "cam1": connection refused \(ECONNREFUSED\)$/,
    );
    // The server's next stream is not asked again while it is down: the same error, no new attempt.
    const second = await client
      .recordedRanges("down.example/cam2", { from: NOW - 60, to: NOW })
      .catch((e: unknown) => e);
    expect(second).toBe(first);
  });

  it("credentials never go in clear to a server Central lists at an http:// address of another machine", async () => {
    const { central, client } = await fleet(
      { auth: { type: "bearer", tokenEnv: "CENTRAL_TOKEN" } },
      { type: "bearer", token: new Secret("central-secret") },
    );
    central.addServer({
      hostname: "far.example",
      sim: await media(1),
      apiUrl: "http://admin:pw-in-url@far.example:8080/",
    });
    expect(await names(client)).toEqual([]);
    const [gap] = client.listingGaps();
    expect(gap!.error).toBeInstanceOf(SetupError);
    expect(gap!.error.message).toBe(
      "source fleet: Central gives server far.example the address http://far.example:8080, where the bearer credentials would go in clear: give the servers https:// addresses in Central, or set allowCredentialsOverHttp of source fleet to true to accept that anyone on the path can read them",
    );
    expect(gap!.error.message).not.toMatch(/central-secret|pw-in-url/);
  });

  it("a server Central lists without an api_url is named, not guessed", async () => {
    const { central, client } = await fleet();
    central.addServer({ hostname: "a.example", sim: await media(1), apiUrl: "" });
    expect(await names(client)).toEqual([]);
    expect(client.listingGaps()[0]!.error).toBeInstanceOf(MalformedAnswerError);
    expect(client.listingGaps()[0]!.error.message).toBe(
      'source fleet: Central gives server a.example no http(s) api_url (got ""), so it cannot be read',
    );
  });

  it("a stream of a server not listed in this process is routed by asking Central for that server", async () => {
    const { central, client } = await fleet();
    const a = await media(1);
    central.addServer({ hostname: "a.example", sim: a });
    const ranges = await client.recordedRanges("a.example/cam1", { from: NOW - 600, to: NOW });
    expect(ranges.length).toBeGreaterThan(0);
    expect(central.requests.map((r) => r.path)).toEqual(["/streamer/api/v3/streamers/a.example"]);
    const unknown = await client
      .recordedRanges("z.example/cam1", { from: NOW - 600, to: NOW })
      .catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(SetupError);
    expect((unknown as Error).message).toBe(
      'source fleet: server z.example (Central): HTTP 404, Central does not list this server (removed from the cluster, or renamed), so stream "cam1" of it cannot be read',
    );
  });

  it("holds each server to its own copies at once: a second window waits for the first to end", async () => {
    const { central, client } = await fleet({ eachServer: { maxConcurrentCopies: 1 } });
    const a = await media(2);
    const b = await media(1);
    central.addServer({ hostname: "a.example", sim: a });
    central.addServer({ hostname: "b.example", sim: b });
    const [r] = a.rangesOf("cam1");
    const from = r!.from;
    const first = await client.openWindow("a.example/cam1", from, 60, "mp4");
    let secondOpened = false;
    const second = client.openWindow("a.example/cam2", from, 60, "mp4").then((w) => {
      secondOpened = true;
      return w;
    });
    // Another server is not held up by a.example's cap.
    const other = await client.openWindow("b.example/cam1", b.rangesOf("cam1")[0]!.from, 60, "mp4");
    other.body.on("error", () => undefined).destroy();
    expect(secondOpened).toBe(false);
    expect(a.requests.filter((x) => x.kind === "archive").length).toBeLessThanOrEqual(1);
    for await (const _ of first.body) {
      // read the first window to its end: its slot is released
    }
    const w = await second;
    expect(secondOpened).toBe(true);
    w.body.on("error", () => undefined).destroy();
  });

  it('with eachServer.auth "cluster_key", each server is asked with its cluster key as a Bearer token', async () => {
    const { central, client } = await fleet({ eachServer: { auth: "cluster_key" } });
    const a = await media(1, { auth: { bearer: "key-of-a" } });
    central.addServer({ hostname: "a.example", sim: a, clusterKey: "key-of-a" });
    expect(await names(client)).toEqual(["a.example/cam1"]);
    const ranges = await client.recordedRanges("a.example/cam1", { from: NOW - 600, to: NOW });
    expect(ranges.length).toBeGreaterThan(0);
  });
});
