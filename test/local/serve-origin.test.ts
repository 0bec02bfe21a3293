/**
 * Who may read a local `serve` (issue 20 §2): a web page on another origin must not read the
 * backup through the operator's browser (no wildcard CORS; only `--cors-origin` origins), and DNS
 * rebinding must not reach it (a `Host` that is not the bound address, `localhost`, an IP address,
 * this machine's name or an `--allowed-host` is refused). The server runs in this process against
 * the embedded emulator; requests are made with node:http so that `Host` can be set.
 */
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "../../dev/kit/harness.ts";
import { createPlaybackHandler } from "../../functions/playback/handler.ts";
import { createPlaybackToken, tokenProblem } from "../../functions/playback/token.ts";
import { FragmentIndexStore } from "../../functions/store/fragment-index-store.ts";
import { type PlaybackServer, startPlaybackServer } from "../../local/playback-server.ts";

const KEY = "k".repeat(40);
let h: Harness;
let open: PlaybackServer;
let guarded: PlaybackServer;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(
  base: string,
  path: string,
  headers: Record<string, string> = {},
  method = "GET",
): Promise<Answer> {
  const url = new URL(path, base);
  return new Promise((done, fail) => {
    const req = request(url, { method, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
      });
      res.on("end", () => done({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", fail);
    req.end();
  });
}

beforeAll(async () => {
  h = await startHarness({ sim: { streams: [{ name: "cam1", bitrateBps: 40_000 }] } });
  const rt = await h.runtime();
  const base = {
    host: "127.0.0.1",
    port: 0,
    config: h.config,
    s3: rt.s3,
    store: rt.store,
  };
  open = await startPlaybackServer({
    ...base,
    checkToken: undefined,
    createHandler: (media) =>
      createPlaybackHandler({
        config: h.config,
        index: new FragmentIndexStore(rt.store),
        ...media,
        now: () => Date.now(),
        tokenKeys: undefined,
      }),
  });
  guarded = await startPlaybackServer({
    ...base,
    corsOrigins: ["https://player.example"],
    allowedHosts: ["backup.lan"],
    checkToken: (token, wanted) => tokenProblem(token, [KEY], wanted, Math.floor(Date.now() / 1000)),
    createHandler: (media) =>
      createPlaybackHandler({
        config: h.config,
        index: new FragmentIndexStore(rt.store),
        ...media,
        now: () => Date.now(),
        tokenKeys: [KEY],
      }),
  });
}, 60_000);

afterAll(async () => {
  await open?.close();
  await guarded?.close();
  await h?.close();
});

describe("serve: other origins and other host names", () => {
  it("sends no CORS to a page on another origin by default (a preflight included)", async () => {
    const listing = await get(open.url, "/_api/streams.json", { Origin: "https://evil.example" });
    expect(listing.status).toBe(200);
    expect(listing.headers["access-control-allow-origin"]).toBeUndefined();
    const preflight = await get(
      open.url,
      "/_api/streams.json",
      { Origin: "https://evil.example", "Access-Control-Request-Method": "GET" },
      "OPTIONS",
    );
    expect(preflight.headers["access-control-allow-origin"]).toBeUndefined();
  });

  it("refuses a Host name other than the bound address, localhost, an IP address or an allowed name (DNS rebinding), with a sentence", async () => {
    const rebound = await get(open.url, "/_api/streams.json", { Host: "evil.example" });
    expect(rebound.status).toBe(421);
    expect(rebound.body).toMatch(
      /Host "evil\.example" is not a name this server answers to; add it with --allowed-host/,
    );
    const port = new URL(open.url).port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`]) {
      expect((await get(open.url, "/_api/streams.json", { Host: host })).status, host).toBe(200);
    }
    expect((await get(guarded.url, "/", { Host: "backup.lan" })).status).toBe(200);
    expect((await get(guarded.url, "/", { Host: "other.lan" })).status).toBe(421);
  });

  it("gives CORS to a --cors-origin origin only, and its token still works cross-origin", async () => {
    const token = createPlaybackToken(KEY, { source: "src1" }, Math.floor(Date.now() / 1000) + 600);
    const allowed = await get(guarded.url, `/_api/streams.json?token=${token}`, {
      Origin: "https://player.example",
    });
    expect(allowed.status, allowed.body).toBe(200);
    expect(allowed.headers["access-control-allow-origin"]).toBe("https://player.example");
    expect(allowed.headers["access-control-expose-headers"]).toMatch(/Content-Range/);
    expect(allowed.headers.vary).toMatch(/Origin/);
    const preflight = await get(
      guarded.url,
      "/src1/cam1/recording_status.json",
      {
        Origin: "https://player.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "range",
      },
      "OPTIONS",
    );
    expect(preflight.status).toBe(204);
    expect(preflight.headers["access-control-allow-headers"]).toMatch(/Range/);
    const other = await get(guarded.url, `/_api/streams.json?token=${token}`, {
      Origin: "https://evil.example",
    });
    expect(other.headers["access-control-allow-origin"]).toBeUndefined();
  });
});
