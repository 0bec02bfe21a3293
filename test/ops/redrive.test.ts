/**
 * `redrive` moves dead-lettered windows back to the copy queue; once the cause is fixed they copy.
 */
import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { afterEach, describe, expect, it } from "vitest";
import { redriveCommand } from "../../cli/commands/redrive.ts";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { operatorTarget, TextSink } from "../../dev/kit/ops-target.ts";
import { createSqsClient } from "../../local/aws-clients.ts";
import { startEmbedded } from "../../local/embedded.ts";
import { runOnce } from "../../local/once.ts";
import { redrive } from "../../ops/redrive.ts";
import { queueStatus, sourceQueueUrls } from "../../ops/status.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const NOW0 = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);

describe("redrive", () => {
  it("lists dead letters with their reasons on --dry-run, then moves them back and they are copied", async () => {
    h = await startHarness({
      sim: {
        streams: [{ name: "cam1", bitrateBps: 80_000, ranges: [{ from: NOW0 - 2 * HOUR, to: NOW0 + 1 }] }],
        faults: { errorStatus: 403, errorRate: 1 },
      },
      source: { retentionDays: 1 / 24 },
    });
    const rt = await h.runtime();
    const failed = await runOnce(rt, h.tally);
    const n = failed.deadLettered.length;
    expect(n).toBeGreaterThan(0);
    expect(failed.copied).toBe(0);
    const file = operatorTarget(h);

    const dry = new TextSink();
    expect(
      await redriveCommand({ config: file, source: "src1", dryRun: true, now: h.clock.now(), out: dry }),
    ).toBe(0);
    expect(dry.text).toContain(`${n} dead-lettered window(s) of source src1 (left in place, --dry-run)`);
    expect(dry.text).toMatch(
      /"cam1" 2026-11-20T\d\d:\d\d:00Z \+\d+s: source src1: .*HTTP 403, access refused/,
    );
    expect(await queueStatus(rt.sqs, "src1")).toEqual({ queued: 0, inFlight: 0, deadLettered: n });

    // The operator fixes the cause, then redrives. A dry run hides the dead letters for a second
    // (the receive that reads them), and the emulator releases hidden messages only on a receive,
    // so no attribute shows their return: redrive until all are moved, as an operator would.
    h.sim.setFaults({});
    const outputs: string[] = [];
    let moved = 0;
    await expect
      .poll(
        async () => {
          const out = new TextSink();
          expect(await redriveCommand({ config: file, source: "src1", now: h!.clock.now(), out })).toBe(0);
          outputs.push(out.text);
          moved += Number(/^Moved (\d+) dead-lettered window\(s\) of source src1 back/m.exec(out.text)?.[1]);
          return moved;
        },
        { timeout: 10_000, interval: 50 },
      )
      .toBe(n);
    for (const text of outputs)
      expect(text).toMatch(/^Moved \d+ dead-lettered window\(s\) of source src1 back to its copy queue\.$/m);
    expect(await queueStatus(rt.sqs, "src1")).toEqual({ queued: n, inFlight: 0, deadLettered: 0 });

    const copiedBefore = h.tally.events.filter((e) => e.type === "copied").length;
    await rt.startCopiers();
    await rt.drain();
    await rt.stopCopiers();
    const copied = h.tally.events.filter((e) => e.type === "copied").length - copiedBefore;
    expect(copied).toBe(n);
    // The next plan finds nothing left to do.
    const after = await runOnce(rt, h.tally);
    expect(after.planned).toBe(0);
    const st = after.finalPlan.sources[0]!.streams[0]!;
    expect(st.backedUpSeconds).toBe(st.copyableSeconds);
  });

  it("finds a source's FIFO queues (a central source in AWS) and puts each window back into its own message group", async () => {
    const emulator = await startEmbedded(undefined);
    const sqs = createSqsClient(emulator.endpoints);
    try {
      for (const name of ["flussonic-backup-fleet-dlq.fifo", "flussonic-backup-fleet.fifo"]) {
        await sqs.send(
          new CreateQueueCommand({
            QueueName: name,
            Attributes: { FifoQueue: "true", ContentBasedDeduplication: "true" },
          }),
        );
      }
      const urls = await sourceQueueUrls(sqs, "fleet");
      expect(urls.url).toMatch(/flussonic-backup-fleet\.fifo$/);
      expect(urls.deadLetterUrl).toMatch(/flussonic-backup-fleet-dlq\.fifo$/);
      // Dead-lettered by the copier in the window's own group (functions/copier/copy-messages.ts).
      const body = (stream: string) =>
        JSON.stringify({
          v: 1,
          source: "fleet",
          stream,
          from: 0,
          duration: 600,
          format: "mp4",
          leaseUntil: 1,
        });
      for (const [stream, group] of [
        ["a.example/cam1", "a.example#1"],
        ["b.example/cam1", "b.example#0"],
      ] as const) {
        await sqs.send(
          new SendMessageCommand({
            QueueUrl: urls.deadLetterUrl,
            MessageBody: body(stream),
            MessageGroupId: group,
          }),
        );
      }
      const result = await redrive({ sqs, queueUrl: urls.url, deadLetterUrl: urls.deadLetterUrl });
      expect(result.failed).toEqual([]);
      expect(result.moved).toHaveLength(2);
      const back = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: urls.url,
          MaxNumberOfMessages: 10,
          MessageSystemAttributeNames: ["MessageGroupId"],
        }),
      );
      expect(
        (back.Messages ?? []).map((m) => [JSON.parse(m.Body!).stream, m.Attributes?.MessageGroupId]).sort(),
      ).toEqual([
        ["a.example/cam1", "a.example#1"],
        ["b.example/cam1", "b.example#0"],
      ]);
    } finally {
      sqs.destroy();
      await emulator.stop();
    }
  });

  it("refuses an unknown source with the configured names", async () => {
    h = await startHarness();
    await h.runtime();
    const file = operatorTarget(h);
    await expect(redriveCommand({ config: file, source: "nope", out: new TextSink() })).rejects.toThrow(
      '--source: no source "nope" in the configuration (sources: src1)',
    );
  });
});
