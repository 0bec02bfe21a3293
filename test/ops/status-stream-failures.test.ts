/**
 * issue 15 items 4 and 11: `status` names the streams it cannot plan (404 at the source: renamed or
 * deleted there), and says what happened to a stream the backup holds but the source no longer lists.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { statusCommand } from "../../cli/commands/status.ts";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { operatorTarget, TextSink } from "../../dev/kit/ops-target.ts";
import { runOnce } from "../../local/once.ts";
import type { BackupStatus } from "../../ops/status.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";

let h: Harness | undefined;
const extra: FlussonicSimulator[] = [];
afterEach(async () => {
  await h?.close();
  h = undefined;
  for (const s of extra.splice(0)) await s.close();
});

const NOW0 = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
const cam = (name: string) => ({
  name,
  bitrateBps: 40_000,
  ranges: [{ from: NOW0 - 2 * HOUR, to: NOW0 + 1 }],
});

async function status(hh: Harness, file: string, json: boolean) {
  const out = new TextSink();
  const code = await statusCommand({ config: file, json, copyTimeoutSeconds: 60, now: hh.clock.now(), out });
  return { code, text: out.text, status: json ? (JSON.parse(out.text) as BackupStatus) : undefined };
}

describe("status: streams that fail planning", () => {
  it("lists a configured stream the source does not know (HTTP 404) with the reason, in the table and --json, and exits 1", async () => {
    h = await startHarness({
      sim: { streams: [cam("cam1")] },
      source: { retentionDays: 1 / 24, streams: ["cam1", "cam9"] },
    });
    const run = await runOnce(await h.runtime(), h.tally);
    expect(run.planErrors.map((e) => e.stream)).toEqual(["cam9"]);
    const file = operatorTarget(h);

    const json = await status(h, file, true);
    expect(json.code).toBe(1);
    const [cam1, cam9] = json.status!.sources[0]!.streams;
    expect(cam1!.stream).toBe("cam1");
    expect(cam1!.error).toBeUndefined();
    expect(cam1!.coverage.percent).toBe(100);
    expect(cam9!.stream).toBe("cam9");
    expect(cam9!.error).toMatch(
      /^archive unknown: source src1 \(http:\/\/127\.0\.0\.1:\d+\) has no stream "cam9".*HTTP 404/,
    );

    const text = await status(h, file, false);
    expect(text.code).toBe(1);
    expect(text.text).toMatch(/^src1\s+cam9\s.*FAILED$/m);
    expect(text.text).toMatch(/^ {2}src1 cam9: archive unknown: source src1 \(http:.*HTTP 404/m);
  });
});

/**
 * A backup of cam1 and cam2 whose last round of copies is still pending (not compacted), then the
 * source lists only cam1 (cam2 deleted or renamed there). Returns the config (and its file) that
 * points at that source.
 */
async function cam2GoneAtTheSource(hh: Harness) {
  const rt = await hh.runtime();
  expect((await runOnce(rt, hh.tally)).ok).toBe(true);
  // Twenty minutes on, one more round is copied and its completion records wait for the next plan.
  hh.clock.advance(20 * 60);
  await rt.startCopiers();
  await rt.plan();
  await rt.drain();
  await rt.stopCopiers();

  const source = await FlussonicSimulator.start({ streams: [cam("cam1")], now: hh.clock.now });
  extra.push(source);
  operatorTarget(hh);
  const config = { ...hh.config, sources: [{ ...hh.config.sources[0]!, url: source.url }] };
  const file = join(hh.dir, "config-without-cam2.json");
  writeFileSync(file, JSON.stringify(config));
  return { file, config };
}

describe("status: a stream removed or renamed at the source", () => {
  it("says the stream is gone at the source, with its pending records, and does not count it as missing", async () => {
    h = await startHarness({
      sim: { streams: [cam("cam1"), cam("cam2")] },
      source: { retentionDays: 1 / 24 },
    });
    const { file } = await cam2GoneAtTheSource(h);

    const json = await status(h, file, true);
    const cam2 = json.status!.sources[0]!.streams.find((s) => s.stream === "cam2")!;
    expect(cam2.retired).toEqual({ reason: "gone at the source", lastStoredSecond: expect.any(Number) });
    expect(cam2.retired!.lastStoredSecond).toBeGreaterThan(NOW0);
    expect(cam2.pendingRecords).toBeGreaterThan(0);
    expect(cam2.coverage.backedUpSeconds).toBeGreaterThan(0);
    expect(json.code).toBe(0);

    const text = await status(h, file, false);
    expect(text.text).toMatch(/^src1\s+cam2\s.*gone at the source$/m);
    expect(text.text).toContain(
      `src1 cam2: gone at the source (no longer listed there: deleted or renamed; newest copy ends `,
    );
    expect(text.text).toContain(`; ${cam2.pendingRecords} completion record(s) pending`);
  });
});

describe("planner: a stream removed or renamed at the source", () => {
  it("folds the pending completion records of a stream it no longer plans into its manifest", async () => {
    h = await startHarness({
      sim: { streams: [cam("cam1"), cam("cam2")] },
      source: { retentionDays: 1 / 24 },
    });
    const { file, config } = await cam2GoneAtTheSource(h);
    const before = (await status(h, file, true)).status!.sources[0]!.streams.find(
      (s) => s.stream === "cam2",
    )!;
    expect(before.pendingRecords).toBeGreaterThan(0);

    const rt = await h.runtime({ config });
    const report = await rt.plan();
    expect(report.sources[0]!.streams.map((s) => s.stream)).toEqual(["cam1"]);
    expect(report.sources[0]!.recordsCompacted).toBeGreaterThanOrEqual(before.pendingRecords);
    expect(report.sources[0]!.errors).toEqual([]);

    const after = (await status(h, file, true)).status!.sources[0]!.streams.find((s) => s.stream === "cam2")!;
    expect(after.pendingRecords).toBe(0);
    expect(after.coverage.backedUpSeconds).toBe(before.coverage.backedUpSeconds);
    expect(after.windows).toBe(before.windows);
    expect(after.retired?.reason).toBe("gone at the source");
  });
});
