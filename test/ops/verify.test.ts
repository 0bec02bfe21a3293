/**
 * `verify` re-reads what the backup stored and compares it with the copy records.
 */
import { DeleteObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it } from "vitest";
import { verifyCommand } from "../../cli/commands/verify.ts";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { operatorTarget, TextSink } from "../../dev/kit/ops-target.ts";
import { streamPrefix } from "../../functions/domain/keys.ts";
import { runOnce } from "../../local/once.ts";
import type { VerifyReport } from "../../ops/verify.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const NOW0 = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);

async function backedUp(): Promise<{ hh: Harness; file: string; windows: string[] }> {
  const hh = await startHarness({
    sim: {
      streams: [{ name: "cam1", bitrateBps: 80_000, ranges: [{ from: NOW0 - 2 * HOUR, to: NOW0 + 1 }] }],
    },
    source: { retentionDays: 1 / 24 },
  });
  h = hh;
  const rt = await hh.runtime();
  expect((await runOnce(rt, hh.tally)).ok).toBe(true);
  const windows = await hh.keys(streamPrefix(hh.config.prefix, "src1", "cam1"));
  expect(windows.length).toBeGreaterThanOrEqual(5);
  return { hh, file: operatorTarget(hh), windows };
}

async function verify(file: string, extra: Record<string, unknown> = {}) {
  const out = new TextSink();
  const progress = new TextSink();
  const code = await verifyCommand({ config: file, json: true, out, progress, progressEveryMs: 0, ...extra });
  return { code, report: JSON.parse(out.text) as VerifyReport, progress: progress.text };
}

describe("verify", () => {
  it("passes an intact backup, reading every recorded window, with progress on the side", async () => {
    const { file, windows } = await backedUp();
    const { code, report, progress } = await verify(file);
    expect(code).toBe(0);
    expect(report.problems).toEqual([]);
    expect(report.checked).toBe(windows.length);
    expect(report.intact).toBe(windows.length);
    expect(report.bytesRead).toBeGreaterThan(0);
    expect(progress).toContain(`verify: cam1: ${windows.length}/${windows.length} window(s)`);
  });

  it("reports a missing, a corrupt (same size, other bytes), a resized and an unrecorded object, and exits 1", async () => {
    const { hh, file, windows } = await backedUp();
    const s3 = hh.s3();
    const bucket = hh.config.bucket;
    const [gone, flipped, resized] = windows;
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: gone! }));
    const original = await hh.getObject(flipped!);
    const changed = Buffer.from(original);
    changed[changed.length - 1]! ^= 0xff;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: flipped!, Body: changed }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: resized!, Body: Buffer.alloc(10) }));
    const stray = `${streamPrefix(hh.config.prefix, "src1", "cam1")}2026-11-20/101500Z-60s.mp4`;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: stray, Body: Buffer.alloc(5) }));

    const { code, report } = await verify(file);
    expect(code).toBe(1);
    const byKind = (k: string) =>
      report.problems
        .filter((p) => p.kind === k)
        .map((p) => p.key)
        .sort();
    expect(byKind("missing")).toEqual([gone]);
    expect(byKind("corrupt")).toEqual([flipped, resized].sort());
    expect(byKind("unrecorded")).toEqual([stray]);
    expect(report.intact).toBe(windows.length - 3);

    const text = new TextSink();
    expect(await verifyCommand({ config: file, out: text, progress: new TextSink() })).toBe(1);
    expect(text.text).toContain("1 missing, 2 corrupt, 1 unrecorded object(s)");
    expect(text.text).toContain(`CORRUPT src1 cam1 ${flipped}: sha256 `);
  });

  it("checks only the windows overlapping --from/--to", async () => {
    const { file, windows } = await backedUp();
    const first = /(\d{4}-\d{2}-\d{2})\/(\d{2})(\d{2})(\d{2})Z-/.exec(windows[1]!)!;
    const from = `${first[1]}T${first[2]}:${first[3]}:${first[4]}Z`;
    const to = String(Date.parse(from) / 1000 + 1);
    const { code, report } = await verify(file, { from, to });
    expect(code).toBe(0);
    expect(report.checked).toBe(1);
    await expect(verifyCommand({ config: file, from: "soon", out: new TextSink() })).rejects.toThrow(
      /^--from: expected/,
    );
  });
});
