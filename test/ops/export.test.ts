/**
 * Signed exports against the embedded emulator and the simulator (real media): the evidence checks
 * with the public key alone, one changed byte in the clip or in its evidence fails with a sentence
 * naming which, and with the bucket a window deleted since the export shows.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it } from "vitest";
import { exportCommand, exportKeyInitCommand, verifyExportCommand } from "../../cli/commands/export.ts";
import { UsageError } from "../../cli/commands/time-arg.ts";
import { bucketSnapshot } from "../../dev/kit/cli-process.ts";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { operatorTarget, TextSink } from "../../dev/kit/ops-target.ts";
import type { ExportEvidence } from "../../functions/domain/evidence.ts";
import { runOnce } from "../../local/once.ts";

const NOW0 = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
const MIN = 60;
const iso = (t: number) => new Date(t * 1000).toISOString();

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function exported() {
  const hh = await startHarness({
    sim: {
      media: "real",
      streams: [{ name: "cam1", bitrateBps: 16_000, ranges: [{ from: NOW0 - 2 * HOUR, to: NOW0 + 1 }] }],
    },
    source: { retentionDays: 1 / 24 },
  });
  h = hh;
  const rt = await hh.runtime();
  expect((await runOnce(rt, hh.tally)).ok).toBe(true);
  const file = operatorTarget(hh);
  const key = join(hh.dir, "export-key.pem");
  expect(exportKeyInitCommand({ out: key, stdout: new TextSink() })).toBe(0);
  const clip = join(hh.dir, "clip.mp4");
  const stdout = new TextSink();
  const code = await exportCommand({
    config: file,
    source: "src1",
    stream: "cam1",
    from: iso(NOW0 - 35 * MIN),
    to: iso(NOW0 - 25 * MIN),
    out: clip,
    key,
    by: "tester",
    stdout,
    stderr: new TextSink(),
  });
  expect(code).toBe(0);
  return { hh, file, clip, key, publicKey: join(hh.dir, "export-key.pub.pem"), stdout: stdout.text };
}

async function verify(clip: string, publicKey: string, config?: string) {
  const stdout = new TextSink();
  const code = await verifyExportCommand({ clip, publicKey, ...(config ? { config } : {}), stdout });
  return { code, stdout: stdout.text };
}

function flipByte(file: string, at: number): void {
  const bytes = readFileSync(file);
  bytes[at] = bytes[at]! ^ 0x01;
  writeFileSync(file, bytes);
}

describe("signed export", () => {
  it("an export verifies with only the public key and fails after one flipped byte in either file", async () => {
    const { hh, clip, publicKey, stdout } = await exported();
    expect(stdout).toContain(`Evidence signed with key`);
    const evidence = JSON.parse(readFileSync(`${clip}.evidence.json`, "utf8")) as ExportEvidence;
    expect(evidence).toMatchObject({
      source: "src1",
      stream: "cam1",
      from: NOW0 - 35 * MIN,
      to: NOW0 - 25 * MIN,
      gaps: [],
      exportedBy: "tester",
      clip: { file: "clip.mp4", format: "mp4" },
    });
    expect(evidence.windows.map((w) => w.key)).toEqual([
      "flussonic/src1/cam1/2026-11-20/114000Z-600s.mp4",
      "flussonic/src1/cam1/2026-11-20/115000Z-600s.mp4",
    ]);
    for (const w of evidence.windows) {
      expect(w.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(w.sourceUrl).toBe(`${hh.sim.url}/cam1/archive-${w.from}-600.mp4`);
    }
    expect(evidence.signature?.alg).toBe("Ed25519");

    const ok = await verify(clip, publicKey);
    expect(ok.stdout).toContain("ok: clip.mp4.evidence.json: signed by key");
    expect(ok.stdout).toContain(`ok: clip.mp4: SHA-256 ${evidence.clip.sha256} as signed`);
    expect(ok.code).toBe(0);

    const clipBytes = readFileSync(clip);
    flipByte(clip, Math.floor(clipBytes.length / 2));
    const badClip = await verify(clip, publicKey);
    expect(badClip.code).toBe(1);
    expect(badClip.stdout).toContain("FAILED: clip.mp4: its SHA-256");
    expect(badClip.stdout).toContain("the clip was changed after the export");
    writeFileSync(clip, clipBytes);
    expect((await verify(clip, publicKey)).code).toBe(0);

    const json = readFileSync(`${clip}.evidence.json`, "utf8");
    flipByte(`${clip}.evidence.json`, json.indexOf('"tester"') + 3);
    const badJson = await verify(clip, publicKey);
    expect(badJson.code).toBe(1);
    expect(badJson.stdout).toContain(
      "FAILED: clip.mp4.evidence.json: its signature does not match its content (it was changed after it was signed)",
    );
  });

  it("with the bucket: every window is read back, and one deleted since the export fails naming it", async () => {
    const { hh, file, clip, publicKey } = await exported();
    const ok = await verify(clip, publicKey, file);
    expect(ok.stdout).toContain(
      "ok: flussonic/src1/cam1/2026-11-20/114000Z-600s.mp4: still stored, unchanged",
    );
    expect(ok.code).toBe(0);
    await hh.s3().send(
      new DeleteObjectCommand({
        Bucket: hh.config.bucket,
        Key: "flussonic/src1/cam1/2026-11-20/115000Z-600s.mp4",
      }),
    );
    const gone = await verify(clip, publicKey, file);
    expect(gone.code).toBe(1);
    expect(gone.stdout).toContain(
      "FAILED: flussonic/src1/cam1/2026-11-20/115000Z-600s.mp4: no longer in the bucket",
    );
  });

  it("a missing or wrong key: one sentence, no clip written, nothing stored changes", async () => {
    const { hh, file, publicKey } = await exported();
    const before = await bucketSnapshot(hh.s3(), hh.config.bucket);
    const args = {
      config: file,
      source: "src1",
      stream: "cam1",
      from: iso(NOW0 - 35 * MIN),
      to: iso(NOW0 - 25 * MIN),
      out: join(hh.dir, "other.mp4"),
      env: {},
      stdout: new TextSink(),
      stderr: new TextSink(),
    };
    await expect(exportCommand(args)).rejects.toThrow(
      new UsageError(
        "export: no signing key: give --key <file> or set FLUSSONIC_BACKUP_EXPORT_KEY to the PEM of an Ed25519 private key (`flussonic-backup export-key init` makes one)",
      ),
    );
    await expect(exportCommand({ ...args, key: publicKey })).rejects.toThrow(
      /--key .*export-key\.pub\.pem: not a PEM private key/,
    );
    expect(await bucketSnapshot(hh.s3(), hh.config.bucket)).toEqual(before);
    expect(existsSync(join(hh.dir, "other.mp4"))).toBe(false);
    // A public key of another pair does not verify the export.
    const other = join(hh.dir, "other-key.pem");
    exportKeyInitCommand({ out: other, stdout: new TextSink() });
    const wrong = await verify(join(hh.dir, "clip.mp4"), join(hh.dir, "other-key.pub.pem"));
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toMatch(
      /FAILED: clip\.mp4\.evidence\.json: it was signed by key [0-9a-f]{16}, not by the public key given/,
    );
  });
});
