/**
 * Central discovery end to end (planner, copier, status on the embedded emulator): the servers a
 * Flussonic Central lists are backed up without a config change; a server added later is backed up
 * by the next run; a server removed is reported as retired while its backup stays; a server listed
 * whose stream list fails is reported, and its streams are neither planned nor taken as retired.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "../../dev/kit/harness.ts";
import { runOnce } from "../../local/once.ts";
import type { LocalRuntime } from "../../local/runtime.ts";
import { readBackupStatus } from "../../ops/status.ts";
import { CentralSimulator } from "../../simulator/central.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";

let h: Harness | undefined;
let central: CentralSimulator | undefined;
const extra: FlussonicSimulator[] = [];
afterEach(async () => {
  await h?.close();
  for (const s of extra.splice(0)) await s.close();
  await central?.close();
  h = undefined;
  central = undefined;
});

const small = { streams: 2, days: 0.05, bitrateBps: 8000, liveOnlyStreams: 1 };

async function status(rt: LocalRuntime) {
  const s = await readBackupStatus({
    config: h!.config,
    store: rt.store,
    sqs: rt.sqs,
    flussonic: (source) => rt.clients.get(source)!,
    now: h!.clock.now(),
    copyTimeoutSeconds: 60,
  });
  return s.sources[0]!;
}

describe("a fleet behind Flussonic Central", () => {
  it("backs up the servers Central lists, then a server added, and reports a removed one retired", async () => {
    central = await CentralSimulator.start({ pageSize: 1 });
    h = await startHarness({
      sim: small,
      source: {
        kind: "central",
        url: central.url,
        retentionDays: 0.02,
        eachServer: { maxConcurrentCopies: 1 },
      },
    });
    const b = await FlussonicSimulator.start({ ...small, now: h.clock.now });
    extra.push(b);
    central.addServer({ hostname: "a.example", sim: h.sim });
    central.addServer({ hostname: "b.example", sim: b });
    const rt = await h.runtime();

    const first = await runOnce(rt, h.tally);
    expect(first.ok).toBe(true);
    const planned = first.finalPlan.sources[0]!.streams;
    expect(planned.map((s) => s.stream).sort()).toEqual([
      "a.example/cam1",
      "a.example/cam2",
      "b.example/cam1",
      "b.example/cam2",
    ]);
    for (const s of planned) expect(s.backedUpSeconds, s.stream).toBe(s.copyableSeconds);
    expect(planned.every((s) => s.backedUpSeconds > 0)).toBe(true);
    // Each window was read from its own server.
    expect(h.sim.requests.some((r) => r.kind === "archive")).toBe(true);
    expect(b.requests.some((r) => r.kind === "archive")).toBe(true);
    const stored = (await h.keys("flussonic/src1/")).filter((k) =>
      k.startsWith("flussonic/src1/b.example%2Fcam1/"),
    );
    expect(stored.length).toBeGreaterThan(0);

    // A server joins, another leaves: no config change.
    const c = await FlussonicSimulator.start({ ...small, streams: 1, now: h.clock.now });
    extra.push(c);
    central.addServer({ hostname: "c.example", sim: c });
    central.removeServer("b.example");
    h.clock.advance(60);
    const second = await runOnce(rt, h.tally);
    expect(second.ok).toBe(true);
    const now = second.finalPlan.sources[0]!.streams;
    expect(now.map((s) => s.stream).sort()).toEqual(["a.example/cam1", "a.example/cam2", "c.example/cam1"]);
    expect(now.find((s) => s.stream === "c.example/cam1")!.backedUpSeconds).toBeGreaterThan(0);

    const st = await status(rt);
    const retired = st.streams.filter((s) => s.retired);
    expect(retired.map((s) => [s.stream, s.retired!.reason])).toEqual([
      ["b.example/cam1", "gone at the source"],
      ["b.example/cam2", "gone at the source"],
    ]);
    // Its backup stays.
    for (const s of retired) expect(s.windows, s.stream).toBeGreaterThan(0);
    expect(
      (await h.keys("flussonic/src1/")).filter((k) => k.startsWith("flussonic/src1/b.example%2Fcam1/")),
    ).toEqual(stored);
  });

  it("a server whose stream list Central refuses: the run says so, its streams are not planned and not retired", async () => {
    central = await CentralSimulator.start();
    h = await startHarness({
      sim: small,
      source: { kind: "central", url: central.url, retentionDays: 0.02 },
    });
    const b = await FlussonicSimulator.start({ ...small, now: h.clock.now });
    extra.push(b);
    central.addServer({ hostname: "a.example", sim: h.sim });
    central.addServer({ hostname: "b.example", sim: b });
    const rt = await h.runtime();
    expect((await runOnce(rt, h.tally)).ok).toBe(true);

    central.setFaults({ refuseStreamsOf: "b.example" });
    h.clock.advance(60);
    const run = await runOnce(rt, h.tally);
    expect(run.ok).toBe(false);
    expect(run.planErrors.map((e) => e.message)).toEqual([
      "source src1: stream list of server b.example (from Central): HTTP 403, access refused: check the source's auth settings and secret",
    ]);
    expect(run.finalPlan.sources[0]!.streams.map((s) => s.stream).sort()).toEqual([
      "a.example/cam1",
      "a.example/cam2",
    ]);
    const st = await status(rt);
    const bStreams = st.streams.filter((s) => s.stream.startsWith("b.example/"));
    expect(bStreams.map((s) => [s.stream, s.retired, s.error])).toEqual([
      ["b.example/cam1", undefined, `archive unknown: ${run.planErrors[0]!.message}`],
      ["b.example/cam2", undefined, `archive unknown: ${run.planErrors[0]!.message}`],
    ]);
  });
});
