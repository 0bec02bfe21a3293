/**
 * A new process (a cold Lambda container, `run --once`) takes a source's manifests from the
 * snapshot the previous run wrote (functions/store/manifest-snapshot.ts) instead of reading each:
 * it plans and writes exactly what a long-lived process and a process reading every manifest do;
 * and a snapshot that is stale (written late by a planner whose lease writes lost a race, after
 * another planner changed the manifests again) costs GETs only: the new process plans on the
 * current manifests, queues no window another planner queued, and loses no race. Planners are
 * runtimes sharing one bucket through the S3 fault proxy (which enforces If-Match / If-None-Match
 * and tells them apart by their access keys).
 */
import { afterEach, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "../../dev/kit/harness.ts";
import { errorsOf, plannedOf, signedAs } from "../../dev/kit/planner-reports.ts";
import { S3FaultProxy } from "../../dev/kit/s3-fault-proxy.ts";
import { SNAPSHOT_MIN_MANIFESTS } from "../../functions/store/backup-store.ts";

let h: Harness | undefined;
let proxy: S3FaultProxy | undefined;
afterEach(async () => {
  await h?.close();
  await proxy?.close();
  h = undefined;
  proxy = undefined;
});

const STREAMS = 20;
const names = Array.from({ length: STREAMS }, (_, i) => `cam${i + 1}`);

/** Requests of one planner since `from` (an index into the proxy's log): "op kind status" -> count. */
function requestsOf(client: string, from = 0): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of proxy!.log.slice(from)) {
    if (r.client !== client || (r.kind !== "manifest" && r.kind !== "snapshot")) continue;
    const k = `${r.op} ${r.kind} ${r.status}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/** Streams whose manifests a planner read or wrote (200) since `from`, sorted. */
function streamsOf(client: string, op: "GetObject" | "PutObject", from: number): string[] {
  const out = new Set<string>();
  for (const r of proxy!.log.slice(from)) {
    if (r.client !== client || r.kind !== "manifest" || r.op !== op || r.status !== 200) continue;
    out.add(r.key.slice(r.key.lastIndexOf("/") + 1, -".json".length));
  }
  return [...out].sort();
}

async function start(): Promise<void> {
  // Twenty minutes of archive: two windows a stream to copy on the first run.
  h = await startHarness({ sim: { streams: STREAMS }, source: { retentionDays: 1 / 72 } });
  proxy = await S3FaultProxy.start(h.emulator.endpoints.s3Endpoint!);
}

function as(accessKeyId: string) {
  return signedAs(h!.emulator.endpoints, proxy!, accessKeyId);
}

type Mode = "long-lived" | "a new process each run" | "a new process each run, no snapshot";

/** Four planning runs ten minutes apart (nothing copied: each run leases the newest windows). */
async function rounds(mode: Mode) {
  await start();
  if (mode.endsWith("no snapshot"))
    proxy!.inject({ op: "GetObject", kind: "snapshot", fault: "500", times: Number.POSITIVE_INFINITY });
  const planned: string[][] = [];
  const requests: Record<string, number>[] = [];
  let rt = await h!.runtime({ endpoints: as("planner-0") });
  for (let round = 0; round < 4; round++) {
    const client = mode === "long-lived" ? "planner-0" : `planner-${round}`;
    if (round > 0 && mode !== "long-lived") rt = await h!.runtime({ endpoints: as(client) });
    const mark = proxy!.log.length;
    const report = await rt.plan();
    expect(errorsOf(report), `${mode}, round ${round}`).toEqual([]);
    planned.push(plannedOf(report));
    requests.push(requestsOf(client, mark));
    h!.clock.advance(600);
  }
  const manifests = [];
  for (const s of names) manifests.push((await rt.store.readManifest("src1", s)).manifest);
  const preconditionFailed = proxy!.preconditionFailed;
  await h!.close();
  await proxy!.close();
  h = undefined;
  proxy = undefined;
  return { planned, manifests, requests, preconditionFailed };
}

describe("a new process takes the manifests from the source's snapshot", () => {
  it("plans and writes as a long-lived process, with one snapshot GET instead of a GET per manifest", async () => {
    expect(STREAMS).toBeGreaterThanOrEqual(SNAPSHOT_MIN_MANIFESTS);
    const warm = await rounds("long-lived");
    const fresh = await rounds("a new process each run");
    const refused = await rounds("a new process each run, no snapshot");
    expect(warm.planned.flat().length).toBeGreaterThan(STREAMS);
    expect(fresh.planned).toEqual(warm.planned);
    expect(refused.planned).toEqual(warm.planned);
    expect(fresh.manifests).toEqual(warm.manifests);
    expect(refused.manifests).toEqual(warm.manifests);
    for (const r of [warm, fresh, refused]) expect(r.preconditionFailed).toBe(0);
    // Each run lists the manifests, writes those it leases windows of and then the snapshot (the
    // first finds none). A new process reads the snapshot, not the manifests.
    for (const r of warm.requests) {
      expect(r["PutObject manifest 200"]).toBeGreaterThan(0);
      expect(r["PutObject snapshot 200"]).toBe(1);
      expect(r["ListObjectsV2 manifest 200"]).toBe(1);
      expect(Object.keys(r).sort()).toEqual([
        "ListObjectsV2 manifest 200",
        "PutObject manifest 200",
        "PutObject snapshot 200",
      ]);
    }
    expect(fresh.requests).toEqual(
      warm.requests.map((r, i) => (i === 0 ? r : { ...r, "GetObject snapshot 200": 1 })),
    );
    // Without it (S3 answers 500 every time, tried as the SDK would): every manifest is read.
    expect(refused.requests).toEqual(
      warm.requests.map((r, i) =>
        i === 0 ? r : { ...r, "GetObject snapshot 500": 3, "GetObject manifest 200": STREAMS },
      ),
    );
  }, 240_000);

  it("a stale snapshot, written late by a planner that lost a race, costs GETs, not a window twice", async () => {
    await start();
    const a = await h!.runtime({ endpoints: as("planner-a") });
    const first = await a.plan();
    expect(errorsOf(first)).toEqual([]);
    const queued = plannedOf(first);
    h!.clock.advance(600);

    // A plans the new windows; its lease writes and then its snapshot are held in the network.
    let releaseLeases = (): void => undefined;
    let releaseSnapshot = (): void => undefined;
    const leasesHeld = new Promise<void>((r) => {
      releaseLeases = r;
    });
    const snapshotHeld = new Promise<void>((r) => {
      releaseSnapshot = r;
    });
    const leaseStall = proxy!.inject({
      op: "PutObject",
      kind: "manifest",
      client: "planner-a",
      fault: "stall-request",
      until: leasesHeld,
      times: Number.POSITIVE_INFINITY,
    });
    const snapshotStall = proxy!.inject({
      op: "PutObject",
      kind: "snapshot",
      client: "planner-a",
      fault: "stall-request",
      until: snapshotHeld,
      times: Number.POSITIVE_INFINITY,
    });
    const planA = a.plan();
    await expect.poll(() => leaseStall.hits, { timeout: 20_000, interval: 20 }).toBeGreaterThan(0);

    // Meanwhile B, a new process, takes the manifests from A's first snapshot and leases them.
    const b = await h!.runtime({ endpoints: as("planner-b") });
    let mark = proxy!.log.length;
    const byB = await b.plan();
    expect(errorsOf(byB)).toEqual([]);
    expect(requestsOf("planner-b", mark)["GetObject snapshot 200"]).toBe(1);
    expect(requestsOf("planner-b", mark)["GetObject manifest 200"]).toBeUndefined();
    expect(plannedOf(byB).length).toBeGreaterThan(0);
    queued.push(...plannedOf(byB));

    // A's writes lose to B's, A reads B's manifests and gives those windows up; its snapshot
    // (of the manifests as A last wrote them) waits while B plans again ten minutes on.
    const lost = proxy!.preconditionFailed;
    releaseLeases();
    await expect.poll(() => snapshotStall.hits, { timeout: 20_000, interval: 20 }).toBeGreaterThan(0);
    expect(proxy!.preconditionFailed, "A's lease writes lost to B's").toBeGreaterThan(lost);
    h!.clock.advance(600);
    mark = proxy!.log.length;
    const again = await b.plan();
    expect(errorsOf(again)).toEqual([]);
    expect(plannedOf(again).length).toBeGreaterThan(0);
    const changedByB = streamsOf("planner-b", "PutObject", mark);
    queued.push(...plannedOf(again));
    releaseSnapshot();
    const byA = await planA;
    expect(errorsOf(byA)).toEqual([]);
    queued.push(...plannedOf(byA));

    // C, a new process, finds A's late snapshot: no copy in it has the ETag listed, so each
    // manifest is read; nothing is planned that A or B queued, and no write of C loses.
    const c = await h!.runtime({ endpoints: as("planner-c") });
    mark = proxy!.log.length;
    const failedBefore = proxy!.preconditionFailed;
    const byC = await c.plan();
    expect(errorsOf(byC)).toEqual([]);
    const cRequests = requestsOf("planner-c", mark);
    expect(cRequests["GetObject snapshot 200"]).toBe(1);
    expect(changedByB.length).toBeGreaterThan(0);
    expect(
      streamsOf("planner-c", "GetObject", mark),
      "read: the manifests B changed after A's snapshot",
    ).toEqual(changedByB);
    expect(proxy!.preconditionFailed - failedBefore, "C planned on the current manifests").toBe(0);
    expect(plannedOf(byC), "nothing left to plan at this time").toEqual([]);
    expect(new Set(queued).size, "no window queued twice").toBe(queued.length);
    // And what C holds is what is stored.
    for (const s of names) {
      const held = (await c.store.readManifest("src1", s, await c.store.listManifests("src1"))).manifest;
      expect(held, s).toEqual((await b.store.readManifest("src1", s)).manifest);
    }
  }, 180_000);
});
