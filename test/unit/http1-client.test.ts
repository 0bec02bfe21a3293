/**
 * The lean S3 path's HTTP/1.1 client (functions/adapters/http1-client.ts): responses framed every
 * way HTTP/1.1 allows, parsed whatever the chunking of the bytes on the wire; connections kept and
 * reused, dropped when the server closes them; a cut-short response and a silent server are errors.
 */
import { once } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Http1Connections, Http1Error, ResponseParser } from "../../functions/adapters/http1-client.ts";

/** Feeds `wire` to a parser in pieces of `step` bytes; the response once complete. */
function parse(wire: string, step: number) {
  const p = new ResponseParser();
  const bytes = Buffer.from(wire, "latin1");
  for (let at = 0; at < bytes.length; at += step) {
    const done = p.push(bytes.subarray(at, at + step));
    if (done) return { ...done, rest: bytes.length - Math.min(bytes.length, at + step) };
  }
  const ended = p.end();
  return ended ? { response: ended, keepAlive: false, rest: 0 } : undefined;
}

describe("ResponseParser", () => {
  const cases: [string, string, number, string, boolean][] = [
    [
      "Content-Length",
      'HTTP/1.1 200 OK\r\nETag: "abc"\r\nContent-Length: 11\r\n\r\nhello world',
      200,
      "hello world",
      true,
    ],
    [
      "chunked with an extension and trailers",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n",
      200,
      "hello world",
      true,
    ],
    [
      "a 100 Continue before the response",
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno",
      404,
      "no",
      true,
    ],
    ["Connection: close", "HTTP/1.1 412 X\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 412, "", false],
    ["HTTP/1.0 without keep-alive", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 200, "x", false],
    [
      "delimited by the connection's end",
      "HTTP/1.1 200 OK\r\n\r\nuntil the end",
      200,
      "until the end",
      false,
    ],
  ];
  for (const [name, wire, status, body, keepAlive] of cases) {
    it(`${name}: whole, and one byte at a time`, () => {
      for (const step of [wire.length, 1, 7]) {
        const got = parse(wire, step);
        expect(got, `step ${step}`).toBeDefined();
        expect(got!.response.status).toBe(status);
        expect(got!.response.body.toString("latin1")).toBe(body);
        expect(got!.keepAlive).toBe(keepAlive);
      }
    });
  }

  it("keeps the last value of a header, by lower-case name", () => {
    const got = parse('HTTP/1.1 200 OK\r\nETag: "1"\r\netag: "2"\r\nContent-Length: 0\r\n\r\n', 3);
    expect(got!.response.headers.get("etag")).toBe('"2"');
  });

  it("refuses what is not an HTTP/1.x response", () => {
    expect(() => new ResponseParser().push(Buffer.from("SSH-2.0-OpenSSH\r\n\r\n"))).toThrow(/status line/);
    expect(() =>
      new ResponseParser().push(Buffer.from("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n")),
    ).toThrow(/content-length/);
  });
});

describe("Http1Connections", () => {
  let server: Server | undefined;
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    if (server) await new Promise<void>((r) => server!.close(() => r()));
    server = undefined;
  });

  /** A server that answers each request (one per write from the client) with `answer(n)`. */
  async function serve(answer: (n: number, request: string, socket: Socket) => string | undefined) {
    let n = 0;
    server = createServer((socket) => {
      sockets.push(socket);
      socket.on("data", (d) => {
        const reply = answer(n++, d.toString("utf8"), socket);
        if (reply !== undefined) socket.write(reply);
      });
      socket.on("error", () => undefined);
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as { port: number };
    return new Http1Connections(new URL(`http://127.0.0.1:${port}`), {
      connectTimeoutMs: 2000,
      idleTimeoutMs: 300,
    });
  }

  it("sends head and body in one write, and reuses the connection for the next request", async () => {
    const seen: string[] = [];
    const c = await serve((n, request) => {
      seen.push(request);
      return `HTTP/1.1 200 OK\r\nContent-Length: ${String(n).length}\r\n\r\n${n}`;
    });
    try {
      const a = await c.request("PUT /k HTTP/1.1\r\nhost: h\r\ncontent-length: 8", '{"é":1}');
      const b = await c.request("GET /k HTTP/1.1\r\nhost: h");
      expect([a.body.toString(), b.body.toString()]).toEqual(["0", "1"]);
      expect(seen[0]).toBe('PUT /k HTTP/1.1\r\nhost: h\r\ncontent-length: 8\r\n\r\n{"é":1}');
      expect(sockets).toHaveLength(1);
    } finally {
      c.close();
    }
  });

  it("opens a new connection when the server closed the idle one", async () => {
    const c = await serve((_n, _r, socket) => {
      socket.end("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
      return undefined;
    });
    try {
      expect((await c.request("GET / HTTP/1.1\r\nhost: h")).status).toBe(200);
      await new Promise((r) => setTimeout(r, 50));
      expect((await c.request("GET / HTTP/1.1\r\nhost: h")).status).toBe(200);
      expect(sockets).toHaveLength(2);
    } finally {
      c.close();
    }
  });

  it("a response cut short is an ECONNRESET error; a silent server an ETIMEDOUT one", async () => {
    const c = await serve((n, _r, socket) => {
      if (n === 0) socket.end("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf");
      return undefined; // n = 1: never answers
    });
    try {
      const cut = await c.request("GET / HTTP/1.1\r\nhost: h").catch((e: unknown) => e);
      expect(cut).toBeInstanceOf(Http1Error);
      expect((cut as Http1Error).code).toBe("ECONNRESET");
      const silent = await c.request("GET / HTTP/1.1\r\nhost: h").catch((e: unknown) => e);
      expect((silent as Http1Error).code).toBe("ETIMEDOUT");
    } finally {
      c.close();
    }
  });
});
