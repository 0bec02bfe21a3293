/**
 * The share of the cap the real planner gives what it queues (functions/domain/cap-share.ts), read
 * from the queue (the embedded emulator's SQS) and the manifest: a window leased alone gets the whole
 * cap for a bounded span, recorded in its lease; a window leased while that span runs gets the
 * default share and waits in the queue until the span has ended; windows leased maxConcurrentCopies
 * at a time keep the default share.
 */
import { ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { afterEach, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "../../dev/kit/harness.ts";
import type { CopyMessage } from "../../functions/domain/archive.ts";
import { SHARE_START_SECONDS } from "../../functions/domain/cap-share.ts";
import { queueDepth } from "../../functions/queue/source-queues.ts";
import type { LocalRuntime } from "../../local/runtime.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const WINDOW = 300;
/** 500 kbit/s: a 300-s window is 150 s at the whole 1 Mbit/s cap, 300 s at half of it. */
const BITRATE = 500_000;

/**
 * cam1 recorded one whole window, due now; cam2 records the next window, due WINDOW seconds later
 * (and `more` further streams recording cam1's window too).
 */
async function harness(
  more = 0,
  holdForSpans = true,
): Promise<{ h: Harness; rt: LocalRuntime; first: number }> {
  const clock = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
  const settle = 120;
  const first = Math.floor((clock - settle) / WINDOW) * WINDOW - WINDOW;
  const stream = (name: string, from: number, to: number) => ({
    name,
    bitrateBps: BITRATE,
    ranges: [{ from, to }],
  });
  const harness = await startHarness({
    sim: {
      streams: [
        stream("cam1", first, first + WINDOW),
        stream("cam2", first + WINDOW, first + 3 * WINDOW),
        ...Array.from({ length: more }, (_, i) => stream(`more${i + 1}`, first, first + WINDOW)),
      ],
    },
    source: { maxConcurrentCopies: 2, maxBandwidthMbps: 1, retentionDays: 1 / 24 },
    config: { settleSeconds: settle, minWindowSeconds: WINDOW, maxWindowSeconds: WINDOW },
  });
  // The Lambda copier's timeout: windows are sized for it, leases leave it room.
  // Planned as in AWS, where each copier has a throttle of its own.
  const rt = await harness.runtime({ copyTimeoutSeconds: 900, holdForSpans });
  return { h: harness, rt, first };
}

async function receiveAll(rt: LocalRuntime): Promise<CopyMessage[]> {
  const res = await rt.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: rt.queues.get("src1")!.url,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 0,
    }),
  );
  return (res.Messages ?? []).map((m) => JSON.parse(m.Body!) as CopyMessage);
}

describe("the share of the cap the planner gives", () => {
  it("gives a window leased alone the whole cap for a span, and holds the next window until the span ends", async () => {
    let rt: LocalRuntime;
    let first: number;
    ({ h, rt, first } = await harness());
    const t0 = h.clock.now();
    const run1 = (await rt.plan()).sources[0]!;
    expect(run1.planned.map((m) => [m.stream, m.from, m.duration])).toEqual([["cam1", first, WINDOW]]);
    // 150 s at the whole cap, twice, and the time to start.
    const until = t0 + SHARE_START_SECONDS + 2 * 150;
    const [queued] = await receiveAll(rt);
    expect(queued).toMatchObject({ stream: "cam1", copies: 1, copiesUntil: until });
    const lease = (await rt.store.readManifest("src1", "cam1")).manifest.leases;
    expect(lease).toEqual([{ from: first, duration: WINDOW, until: expect.any(Number), copiesUntil: until }]);

    // Five minutes on, cam1's copy not recorded yet and its span still running: cam2's window is
    // queued at the default share, delayed until the span has ended.
    h.clock.advance(WINDOW);
    const run2 = (await rt.plan()).sources[0]!;
    expect(run2.planned.map((m) => [m.stream, m.from])).toEqual([["cam2", first + WINDOW]]);
    expect(run2.planned[0]!.copies).toBeUndefined();
    expect(run2.planned[0]!.copiesUntil).toBeUndefined();
    const depth = await queueDepth(rt.sqs, rt.queues.get("src1")!.url);
    expect(depth).toMatchObject({ visible: 0, delayed: 1 });
    expect(await receiveAll(rt)).toEqual([]);
    const cam2Lease = (await rt.store.readManifest("src1", "cam2")).manifest.leases;
    expect(cam2Lease[0]!.copiesUntil).toBeUndefined();
  }, 60_000);

  it("holds no window in the queue where the copies share one throttle of the whole cap (the local runtime)", async () => {
    let rt: LocalRuntime;
    ({ h, rt } = await harness(0, false));
    const run1 = (await rt.plan()).sources[0]!;
    // The share is written as AWS would get it...
    expect(run1.planned[0]).toMatchObject({ stream: "cam1", copies: 1 });
    await receiveAll(rt);
    h.clock.advance(WINDOW);
    const run2 = (await rt.plan()).sources[0]!;
    expect(run2.planned.map((m) => m.stream)).toEqual(["cam2"]);
    // ...but the next window is not held: this runtime's copies read from one bucket of the cap.
    expect(await queueDepth(rt.sqs, rt.queues.get("src1")!.url)).toMatchObject({ visible: 1, delayed: 0 });
  }, 60_000);

  it("keeps the default share when the run leases maxConcurrentCopies windows", async () => {
    ({ h } = await harness(1));
    const rt = await h.runtime({ copyTimeoutSeconds: 900 });
    const run = (await rt.plan()).sources[0]!;
    expect(run.planned.map((m) => m.stream).sort()).toEqual(["cam1", "more1"]);
    expect(run.planned.every((m) => m.copies === undefined && m.copiesUntil === undefined)).toBe(true);
    expect((await receiveAll(rt)).length).toBe(2);
  }, 60_000);
});
