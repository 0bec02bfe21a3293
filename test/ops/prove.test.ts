/**
 * The day proof against the embedded emulator and the simulator: signed once per stream and day,
 * it tells the seconds the source did not record apart from those the backup missed, gives each
 * window an inclusion proof, backs an export's check, and shows a window deleted since.
 */
import { join } from "node:path";
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it } from "vitest";
import { exportCommand, exportKeyInitCommand, verifyExportCommand } from "../../cli/commands/export.ts";
import { proveCommand } from "../../cli/commands/prove.ts";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { operatorTarget, TextSink } from "../../dev/kit/ops-target.ts";
import { type DayProof, leafHash, type ProofStep, verifyInclusion } from "../../functions/domain/evidence.ts";
import { proofKey } from "../../functions/domain/keys.ts";
import { runOnce } from "../../local/once.ts";

const NOW0 = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
const MIN = 60;
const iso = (t: number) => new Date(t * 1000).toISOString();
/** The source recorded nothing here (a camera off): not something the backup missed. */
const OFF = { from: NOW0 - 47 * MIN, to: NOW0 - 42 * MIN };

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe("day proof", () => {
  it("signed once; recorded, stored and missed apart; inclusion proofs; an export checks against it; a deleted window breaks it", async () => {
    const hh = await startHarness({
      sim: {
        media: "real",
        streams: [
          {
            name: "cam1",
            bitrateBps: 16_000,
            ranges: [
              { from: NOW0 - 2 * HOUR, to: OFF.from },
              { from: OFF.to, to: NOW0 + 1 },
            ],
          },
        ],
      },
      source: { retentionDays: 1 / 24 },
    });
    h = hh;
    expect((await runOnce(await hh.runtime(), hh.tally)).ok).toBe(true);
    const config = operatorTarget(hh);
    const key = join(hh.dir, "key.pem");
    const publicKey = join(hh.dir, "key.pub.pem");
    exportKeyInitCommand({ out: key, stdout: new TextSink() });
    const later = () => NOW0 + 86_400;
    const base = { config, source: "src1", stream: "cam1", day: "2026-11-20", key, now: later };

    const out = new TextSink();
    expect(await proveCommand({ ...base, stdout: out })).toBe(0);
    const proof = JSON.parse(out.text) as DayProof;
    expect(proof.signature?.alg).toBe("Ed25519");
    // The source recorded 10:17 – 11:30 and 11:35 – 12:17 (its live edge); the backup (one hour of retention)
    // holds 11:17 – 11:30 and 11:35 – 12:10 in whole windows.
    expect(proof.recorded).toEqual([
      { from: NOW0 - 2 * HOUR, to: OFF.from },
      { from: OFF.to, to: NOW0 },
    ]);
    expect(proof.stored).toEqual([
      { from: NOW0 - HOUR, to: OFF.from },
      { from: OFF.to, to: NOW0 - 7 * MIN },
    ]);
    // Missed: what the source recorded and the backup does not hold; the camera's pause is not.
    expect(proof.missed).toEqual([
      { from: NOW0 - 2 * HOUR, to: NOW0 - HOUR },
      { from: NOW0 - 7 * MIN, to: NOW0 },
    ]);
    expect(proof.windows.length).toBeGreaterThan(4);

    // Made once: a second prove prints the stored statement, not a new one.
    const again = new TextSink();
    expect(await proveCommand({ ...base, now: () => NOW0 + 2 * 86_400, stdout: again })).toBe(0);
    expect(JSON.parse(again.text)).toEqual(proof);

    const inc = new TextSink();
    expect(await proveCommand({ ...base, window: iso(NOW0 - 30 * MIN), stdout: inc })).toBe(0);
    const {
      root,
      window,
      proof: steps,
    } = JSON.parse(inc.text) as {
      root: string;
      window: DayProof["windows"][number];
      proof: ProofStep[];
    };
    expect(window.key).toBe("flussonic/src1/cam1/2026-11-20/114000Z-600s.mp4");
    expect(verifyInclusion(leafHash(window), steps, root)).toBe(true);
    expect(verifyInclusion(leafHash({ ...window, size: window.size + 1 }), steps, root)).toBe(false);

    const clip = join(hh.dir, "clip.mp4");
    expect(
      await exportCommand({
        config,
        source: "src1",
        stream: "cam1",
        from: iso(NOW0 - 30 * MIN),
        to: iso(NOW0 - 20 * MIN),
        out: clip,
        key,
        by: "tester",
        stdout: new TextSink(),
        stderr: new TextSink(),
      }),
    ).toBe(0);
    const checked = new TextSink();
    expect(await verifyExportCommand({ clip, publicKey, config, stdout: checked })).toBe(0);
    expect(checked.text).toContain(`ok: window ${NOW0 - 37 * MIN}-600s is in the signed proof of 2026-11-20`);

    const ok = new TextSink();
    expect(await proveCommand({ ...base, check: true, publicKey, stdout: ok })).toBe(0);
    expect(ok.text).toContain(`all ${proof.windows.length} window(s) still stored, unchanged`);

    await hh.s3().send(new DeleteObjectCommand({ Bucket: hh.config.bucket, Key: window.key }));
    const broken = new TextSink();
    expect(await proveCommand({ ...base, check: true, publicKey, stdout: broken })).toBe(1);
    expect(broken.text).toContain(
      `FAILED: ${window.key}: in the proof of src1 "cam1" 2026-11-20 but no longer stored`,
    );
    expect(await hh.keys(proofKey(hh.config.prefix, "src1", "cam1", "2026-11-20"))).toHaveLength(1);
  });
});
