/**
 * `node dev/bench/failover-latency.ts [--runs N]`: what `serve --upstream` adds to a request the
 * Flussonic server answers (issue 24 §1), and what a refused connection costs before the backup
 * answers. The simulator (real media, its HLS) in this process; a node:http server in front of it
 * that answers through `forwardOrFailover` as serve does (the backup a stub answering at once, so
 * only the failover's own cost is measured). Sequential keep-alive requests, median and p90:
 *   - direct: the simulator asked by fetch;
 *   - through: the same URL through the failover front;
 *   - refused: the simulator stopped, the front answering from the stub (connection refused seen).
 * For a live playlist (`timeshift_rel-1800.m3u8`, read whole to check it lists segments) and a
 * 6-second segment (~30 KB, streamed through).
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { forwardOrFailover } from "../../local/upstream-failover.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "200" } } });
const runs = Number(values.runs);

const now = Math.floor(Date.now() / 1000);
const sim = await FlussonicSimulator.start({
  media: "real",
  liveOnlyStreams: 0,
  streams: [{ name: "tv", ranges: [{ from: now - 3600, to: Number.POSITIVE_INFINITY }] }],
});
const upstream = { url: sim.url, source: "sim", timeoutMs: 3000 };
const front = createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://front");
  forwardOrFailover(
    upstream,
    { method: "GET", path: url.pathname, query: {}, headers: {}, search: url.search },
    async () => ({ status: 200, headers: { "Content-Type": "text/plain" }, body: "backup\n" }),
  ).then(async (a) => {
    res.writeHead(a.status, a.headers);
    if (typeof a.body === "string" || a.body instanceof Uint8Array) res.end(a.body);
    else if (a.body) {
      for await (const c of a.body) res.write(c);
      res.end();
    } else res.end();
  });
});
front.listen(0, "127.0.0.1");
await new Promise((r) => front.once("listening", r));
const frontUrl = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;

async function timed(url: string): Promise<{ median: number; p90: number; bytes: number }> {
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < runs + 5; i++) {
    const t0 = performance.now();
    const res = await fetch(url);
    bytes = (await res.arrayBuffer()).byteLength;
    if (i >= 5) times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)]!, p90: times[Math.floor(times.length * 0.9)]!, bytes };
}

const playlist = "/tv/timeshift_rel-1800.m3u8";
const text = await (await fetch(`${sim.url}${playlist}`)).text();
const segment = `/tv/${/^\d{4}\/.*\.m4s$/m.exec(text)![0]}`;
const f = (x: number) => x.toFixed(2);
for (const [label, path] of [
  ["live playlist", playlist],
  ["6 s segment", segment],
] as const) {
  const direct = await timed(`${sim.url}${path}`);
  const through = await timed(`${frontUrl}${path}`);
  console.log(
    `${label} (${direct.bytes} bytes): direct median ${f(direct.median)} ms p90 ${f(direct.p90)} ms; through the failover front median ${f(through.median)} ms p90 ${f(through.p90)} ms; added median ${f(through.median - direct.median)} ms over ${runs} requests`,
  );
}
await sim.pauseListening();
const refused = await timed(`${frontUrl}${playlist}`);
console.log(
  `server stopped (connection refused): the backup's answer after median ${f(refused.median)} ms p90 ${f(refused.p90)} ms (stub backup: the failover's own cost)`,
);
front.close();
await sim.close();
