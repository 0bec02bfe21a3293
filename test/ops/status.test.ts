/**
 * `status` against the simulator and the embedded emulator, opened like an operator opens any
 * S3/SQS endpoint (AWS variables), with the harness's clock.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it } from "vitest";
import { statusCommand } from "../../cli/commands/status.ts";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { operatorTarget, TextSink } from "../../dev/kit/ops-target.ts";
import { manifestKey, streamPrefix } from "../../functions/domain/keys.ts";
import { clipRanges, normalizeRanges, subtractRanges } from "../../functions/domain/ranges.ts";
import { runOnce } from "../../local/once.ts";
import type { BackupStatus } from "../../ops/status.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const NOW0 = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
const streams = [
  {
    name: "cam1",
    bitrateBps: 80_000,
    ranges: [
      { from: NOW0 - 2 * HOUR, to: NOW0 - 40 * 60 + 7 },
      { from: NOW0 - 31 * 60, to: NOW0 + 1 },
    ],
  },
  { name: "live/cam <2>", bitrateBps: 40_000, ranges: [{ from: NOW0 - 2 * HOUR, to: NOW0 + 1 }] },
];

async function status(hh: Harness, file: string, extra: Record<string, unknown> = {}) {
  const out = new TextSink();
  const code = await statusCommand({
    config: file,
    json: true,
    copyTimeoutSeconds: 60,
    now: hh.clock.now(),
    out,
    ...extra,
  });
  return { code, status: JSON.parse(out.text) as BackupStatus };
}

/** Stored windows of a stream as ranges, read from the bucket's keys (independent of the manifest). */
async function storedRanges(hh: Harness, stream: string) {
  const prefix = streamPrefix(hh.config.prefix, "src1", stream);
  return normalizeRanges(
    (await hh.keys(prefix)).map((key) => {
      const m = /(\d{4}-\d{2}-\d{2})\/(\d{2})(\d{2})(\d{2})Z-(\d+)s\.mp4$/.exec(key)!;
      const from = Date.parse(`${m[1]}T${m[2]}:${m[3]}:${m[4]}Z`) / 1000;
      return { from, to: from + Number(m[5]) };
    }),
  );
}

describe("status", () => {
  it("reports the seconds recorded but not backed up as missing, and the settle margin as not yet due", async () => {
    h = await startHarness({ sim: { streams }, source: { retentionDays: 1 / 24 } });
    const rt = await h.runtime();
    expect((await runOnce(rt, h.tally)).ok).toBe(true);
    const file = operatorTarget(h);

    const full = await status(h, file);
    expect(full.code).toBe(0);
    for (const st of full.status.sources[0]!.streams) {
      expect(st.coverage.missing, st.stream).toEqual([]);
      expect(st.coverage.percent, st.stream).toBe(100);
      expect(st.bytes).toBeGreaterThan(0);
    }
    expect(full.status.sources[0]!.streams.map((s) => s.stream)).toEqual(["cam1", "live/cam <2>"]);
    expect(full.status.sources[0]!.queue).toEqual({ queued: 0, inFlight: 0, deadLettered: 0 });

    // Half an hour passes without a run: what became due is missing, the last minutes are not yet due.
    h.clock.advance(30 * 60);
    const now = h.clock.now();
    const behind = await status(h, file);
    expect(behind.code).toBe(1);
    const dueUntil = Math.floor((now - h.config.settleSeconds) / 600) * 600;
    for (const st of behind.status.sources[0]!.streams) {
      const expected = subtractRanges(
        clipRanges(h.sim.rangesOf(st.stream), now - HOUR, dueUntil),
        await storedRanges(h, st.stream),
      );
      expect(expected.length, st.stream).toBeGreaterThan(0);
      expect(st.coverage.missing, st.stream).toEqual(expected);
      expect(st.coverage.notYetDue, st.stream).toEqual([{ from: dueUntil, to: now }]);
      expect(st.coverage.percent!, st.stream).toBeLessThan(100);
      expect(st.coverage.lagSeconds, st.stream).toBe(now - (await storedRanges(h, st.stream)).at(-1)!.to);
    }

    // The text table says the same.
    const text = new TextSink();
    await statusCommand({ config: file, copyTimeoutSeconds: 60, now, out: text });
    expect(text.text).toMatch(
      /^source\s+stream\s+archive\s+due\s+backed up\s+coverage\s+not yet copied\s+not yet due/,
    );
    expect(text.text).toContain("src1: 0 window(s) queued, 0 in flight, 0 dead-lettered");
    expect(text.text).toMatch(/src1 live\/cam <2>: not yet copied 2026-11-20T12:\d\d:00Z – /);

    // After a run the backup has caught up again.
    expect((await runOnce(rt, h.tally)).ok).toBe(true);
    const caughtUp = await status(h, file);
    expect(caughtUp.code).toBe(0);
    expect(caughtUp.status.sources[0]!.streams.every((s) => s.coverage.missing!.length === 0)).toBe(true);
  });

  it("writes a self-contained HTML page with a timeline per stream", async () => {
    h = await startHarness({ sim: { streams }, source: { retentionDays: 1 / 24 } });
    const rt = await h.runtime();
    await runOnce(rt, h.tally);
    h.clock.advance(30 * 60);
    const file = operatorTarget(h);
    const page = join(h.dir, "status.html");
    const out = new TextSink();
    const code = await statusCommand({
      config: file,
      html: page,
      copyTimeoutSeconds: 60,
      now: h.clock.now(),
      out,
    });
    expect(code).toBe(1);
    expect(out.text).toBe(`Status page written to ${page}\n`);
    const html = readFileSync(page, "utf8");
    expect(html).toMatch(/^<!doctype html>/);
    expect(html.match(/<svg /g)).toHaveLength(2);
    expect(html).toContain("live/cam &#60;2&#62;");
    expect(html).not.toContain("<script");
    expect(html).not.toMatch(/<link|@import|url\(|(src|href)="(https?:)?\/\//);
    expect(html).toMatch(/<rect [^>]*fill="#e03131"><title>not yet copied 2026-11-20T12:/);
    // One vocabulary (issue 25): cam1's gap at the source is "not recorded", never a "hole"; what is
    // recorded and not in the backup is "not yet copied".
    expect(html).not.toMatch(/hole/i);
    expect(html).toContain("recorded at the source (a gap: not recorded, nothing to copy)");
    expect(html).toMatch(/of the due archive backed up, \d+ range\(s\) not yet copied \(/);
  });

  it("names a damaged manifest on its stream (counting nothing as backed up there), reports the other streams, and exits 1", async () => {
    h = await startHarness({ sim: { streams }, source: { retentionDays: 1 / 24 } });
    const rt = await h.runtime();
    expect((await runOnce(rt, h.tally)).ok).toBe(true);
    await rt.store.s3.send(
      new PutObjectCommand({
        Bucket: h.config.bucket,
        Key: manifestKey(h.config.prefix, "src1", "cam1"),
        Body: "{ not json",
      }),
    );
    const file = operatorTarget(h);
    const { code, status: s } = await status(h, file);
    expect(code).toBe(1);
    const [cam1, other] = s.sources[0]!.streams;
    expect(cam1!.stream).toBe("cam1");
    expect(cam1!.error).toMatch(
      /manifests\/src1\/cam1\.json is damaged.*flussonic-backup rebuild --source src1 --stream cam1/,
    );
    expect(cam1!.backedUp).toEqual([]);
    expect(other!.error).toBeUndefined();
    expect(other!.backedUp.length).toBeGreaterThan(0);
    const text = new TextSink();
    await statusCommand({ config: file, copyTimeoutSeconds: 60, now: h.clock.now(), out: text });
    expect(text.text).toMatch(
      /src1 cam1: S3: .* is damaged .*run `flussonic-backup rebuild --source src1 --stream cam1`/,
    );
  });

  it("counts dead-lettered windows and exits 1", async () => {
    h = await startHarness({
      sim: { streams: [streams[0]!], faults: { errorStatus: 403, errorRate: 1 } },
      source: { retentionDays: 1 / 24 },
    });
    const rt = await h.runtime();
    const run = await runOnce(rt, h.tally);
    expect(run.deadLettered.length).toBeGreaterThan(0);
    const file = operatorTarget(h);
    const { code, status: s } = await status(h, file);
    expect(code).toBe(1);
    expect(s.sources[0]!.queue).toEqual({ queued: 0, inFlight: 0, deadLettered: run.deadLettered.length });
  });
});
