/**
 * The planner reads a source's manifests through one listing of their folder (read-streams.ts
 * listManifests): a long-lived planner (the service, a warm Lambda container) reads only the
 * manifests whose listed ETag is not the one it holds. It plans the same windows as a planner that
 * reads every manifest; it reads again what another planner or writer changed; and a manifest
 * changed between its listing and its write is still caught by the conditional write, so no window
 * is queued twice. Two runtimes share one bucket through the S3 fault proxy (which enforces
 * If-Match / If-None-Match as S3 does and tells the planners apart by their access keys).
 */
import { afterEach, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "../../dev/kit/harness.ts";
import { errorsOf, plannedOf, signedAs } from "../../dev/kit/planner-reports.ts";
import { S3FaultProxy } from "../../dev/kit/s3-fault-proxy.ts";

let h: Harness | undefined;
let proxy: S3FaultProxy | undefined;
afterEach(async () => {
  await h?.close();
  await proxy?.close();
  h = undefined;
  proxy = undefined;
});

const STREAMS = 3;
// Three streams are listed here as a fleet's are (by default a listing starts at 13 streams: a
// source of few streams reads its manifests one by one, tested in planner-listings.test.ts).

/** GETs of manifests signed by one planner since `from` (an index into the proxy's log): stream -> statuses. */
function manifestGets(client: string, from = 0): Record<string, (number | undefined)[]> {
  const out: Record<string, (number | undefined)[]> = {};
  for (const r of proxy!.log.slice(from)) {
    if (r.op !== "GetObject" || r.kind !== "manifest" || r.client !== client) continue;
    const stream = r.key.slice(r.key.lastIndexOf("/") + 1, -".json".length);
    out[stream] = [...(out[stream] ?? []), r.status];
  }
  return out;
}

async function start(): Promise<void> {
  // Twenty minutes of archive: two windows a stream to copy on the first run.
  h = await startHarness({ sim: { streams: STREAMS }, source: { retentionDays: 1 / 72 } });
  proxy = await S3FaultProxy.start(h.emulator.endpoints.s3Endpoint!);
}

function as(accessKeyId: string) {
  return signedAs(h!.emulator.endpoints, proxy!, accessKeyId);
}

type Mode = "listing" | "no listing" | "listing without ETags";

/**
 * Four planning runs ten minutes apart, the copies of each drained before the next: what each run
 * planned, the manifests at the end, and the manifest GETs of the planner.
 */
async function rounds(mode: Mode) {
  await start();
  if (mode === "no listing")
    proxy!.inject({ op: "ListObjectsV2", kind: "manifest", fault: "500", times: Number.POSITIVE_INFINITY });
  if (mode === "listing without ETags")
    proxy!.inject({ op: "ListObjectsV2", kind: "manifest", fault: "no-listing-etags", times: Infinity });
  const rt = await h!.runtime({ endpoints: as("planner"), manifestListingMinStreams: 1 });
  await rt.startCopiers();
  const planned: string[][] = [];
  for (let round = 0; round < 4; round++) {
    const report = await rt.plan();
    expect(errorsOf(report), `${mode}, round ${round}`).toEqual([]);
    planned.push(plannedOf(report));
    await rt.drain();
    h!.clock.advance(600);
  }
  await rt.stopCopiers();
  const manifests = [];
  for (let i = 1; i <= STREAMS; i++)
    manifests.push((await rt.store.readManifest("src1", `cam${i}`)).manifest);
  const gets = manifestGets("planner");
  const lists = proxy!.count("ListObjectsV2", "manifest");
  await h!.close();
  await proxy!.close();
  h = undefined;
  proxy = undefined;
  return { planned, manifests, gets, lists };
}

describe("the planner reads manifests through a listing", () => {
  it("plans the same windows as reading every manifest, and reads none it holds unchanged", async () => {
    const listed = await rounds("listing");
    const read = await rounds("no listing");
    const bare = await rounds("listing without ETags");
    expect(listed.planned.flat().length).toBeGreaterThan(0);
    expect(listed.planned).toEqual(read.planned);
    expect(bare.planned).toEqual(read.planned);
    expect(listed.manifests).toEqual(read.manifests);
    expect(bare.manifests).toEqual(read.manifests);
    // With the listing: no manifest read at all (none on the first run, and every later one held as
    // this process wrote it), plus the reads of the end (readManifest without a listing: 304s).
    expect(listed.lists).toBe(4);
    const heldOnly = Object.fromEntries(
      Array.from({ length: STREAMS }, (_, i) => [`cam${i + 1}`, [304]] as const),
    );
    expect(listed.gets).toEqual(heldOnly);
    // Without it, each run reads each manifest (the first run: 404s), conditionally once held.
    expect(read.gets.cam1).toEqual([404, 304, 304, 304, 304]);
    // A listing without ETags: nothing asked while none exists, conditional GETs once held.
    expect(bare.gets.cam1).toEqual([304, 304, 304, 304]);
  }, 180_000);

  it("reads again a manifest another planner or writer changed, and only that one", async () => {
    await start();
    const a = await h!.runtime({ endpoints: as("planner-a"), manifestListingMinStreams: 1 });
    const b = await h!.runtime({ endpoints: as("planner-b"), manifestListingMinStreams: 1 });
    expect(errorsOf(await a.plan())).toEqual([]);
    h!.clock.advance(600);
    // B leases the new window of every stream: A reads each manifest again and leases nothing.
    const byB = await b.plan();
    expect(errorsOf(byB)).toEqual([]);
    expect(new Set(byB.sources[0]!.planned.map((m) => m.stream)).size).toBe(STREAMS);
    let mark = proxy!.log.length;
    const again = await a.plan();
    expect(errorsOf(again)).toEqual([]);
    expect(manifestGets("planner-a", mark)).toEqual({ cam1: [200], cam2: [200], cam3: [200] });
    expect(again.sources[0]!.planned, "A read B's leases").toEqual([]);
    expect(proxy!.preconditionFailed, "A planned on B's manifests, not on its held copies").toBe(0);

    // Another writer (an operator's command) changes cam2 only: A reads cam2 and nothing else.
    const { manifest, etag } = await b.store.readManifest("src1", "cam2");
    expect(await b.store.writeManifest({ ...manifest, updatedAt: manifest.updatedAt + 1 }, etag)).toBe(true);
    mark = proxy!.log.length;
    expect(errorsOf(await a.plan())).toEqual([]);
    expect(manifestGets("planner-a", mark)).toEqual({ cam2: [200] });
    mark = proxy!.log.length;
    expect(errorsOf(await a.plan())).toEqual([]);
    expect(manifestGets("planner-a", mark)).toEqual({});
  }, 120_000);

  it("a manifest changed between the listing and the write: the write loses, no window is queued twice", async () => {
    await start();
    const a = await h!.runtime({ endpoints: as("planner-a"), manifestListingMinStreams: 1 });
    const b = await h!.runtime({ endpoints: as("planner-b"), manifestListingMinStreams: 1 });
    expect(errorsOf(await a.plan())).toEqual([]);
    const first = await a.pendingMessages();
    h!.clock.advance(600);
    // A lists (every manifest held unchanged: no read), chooses the new windows, and its lease
    // writes are held in the network while B plans the same windows and leases them.
    let release = (): void => undefined;
    const held = new Promise<void>((r) => {
      release = r;
    });
    const stall = proxy!.inject({
      op: "PutObject",
      kind: "manifest",
      client: "planner-a",
      fault: "stall-request",
      until: held,
      times: Number.POSITIVE_INFINITY,
    });
    const mark = proxy!.log.length;
    const planA = a.plan();
    await expect.poll(() => stall.hits, { timeout: 20_000, interval: 20 }).toBeGreaterThan(0);
    expect(manifestGets("planner-a", mark), "A read no manifest: it holds them all").toEqual({});
    const byB = await b.plan();
    expect(errorsOf(byB)).toEqual([]);
    const leasedByB = plannedOf(byB);
    expect(leasedByB.length).toBeGreaterThan(0);
    release();
    const byA = await planA;
    expect(errorsOf(byA)).toEqual([]);
    expect(proxy!.preconditionFailed, "A's writes found B's manifests").toBeGreaterThan(0);
    expect(
      plannedOf(byA).filter((w) => leasedByB.includes(w)),
      "windows queued by both",
    ).toEqual([]);
    expect(await a.pendingMessages()).toBe(first + leasedByB.length + byA.sources[0]!.planned.length);
  }, 120_000);
});
