/**
 * Signing exports and day proofs with an AWS KMS key (ECC_NIST_EDWARDS25519, Sign ED25519_SHA_512
 * over the RAW message), against the KMS twin (dev/kit/kms-twin.ts), the embedded emulator and the
 * simulator: `export-key public` writes the KMS key's public key as a PEM, with which
 * `verify-export` checks a KMS-signed clip exactly as a local key's; `evidence.kmsKey` in the config
 * does what `--kms-key` does; a key of another spec or a caller refused kms:Sign is one sentence and
 * writes nothing.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { exportCommand, exportKeyPublicCommand, verifyExportCommand } from "../../cli/commands/export.ts";
import { proveCommand } from "../../cli/commands/prove.ts";
import { UsageError } from "../../cli/commands/time-arg.ts";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { KmsTwin } from "../../dev/kit/kms-twin.ts";
import { operatorTarget, TextSink } from "../../dev/kit/ops-target.ts";
import type { DayProof, ExportEvidence } from "../../functions/domain/evidence.ts";
import { runOnce } from "../../local/once.ts";
import { checkProof } from "../../ops/prove.ts";
import { loadPublicKey } from "../../ops/signing.ts";

const NOW0 = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
const MIN = 60;
const iso = (t: number) => new Date(t * 1000).toISOString();

let h: Harness | undefined;
let twin: KmsTwin | undefined;
afterEach(async () => {
  await h?.close();
  await twin?.close();
  h = undefined;
  twin = undefined;
});

async function backedUp() {
  twin = await KmsTwin.start();
  const hh = await startHarness({
    sim: {
      media: "real",
      streams: [{ name: "cam1", bitrateBps: 16_000, ranges: [{ from: NOW0 - 2 * HOUR, to: NOW0 + 1 }] }],
    },
    source: { retentionDays: 1 / 24 },
  });
  h = hh;
  expect((await runOnce(await hh.runtime(), hh.tally)).ok).toBe(true);
  const config = operatorTarget(hh);
  return { hh, twin, config, env: { ...process.env, ...twin.env() } };
}

const range = { source: "src1", stream: "cam1", from: iso(NOW0 - 35 * MIN), to: iso(NOW0 - 25 * MIN) };

describe("signing with a KMS key", () => {
  it("export --kms-key signs with KMS; the public key export-key public writes verifies it, and fails after one flipped byte", async () => {
    const { hh, twin, config, env } = await backedUp();
    const arn = twin.createKey("ECC_NIST_EDWARDS25519", "alias/fb-export");
    const pub = join(hh.dir, "kms.pub.pem");
    const wrote = new TextSink();
    expect(await exportKeyPublicCommand({ kmsKey: "alias/fb-export", out: pub, env, stdout: wrote })).toBe(0);
    expect(wrote.text).toContain(`Wrote the public key of KMS key alias/fb-export to ${pub}`);
    expect(readFileSync(pub, "utf8")).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    // Never over a file.
    await expect(exportKeyPublicCommand({ kmsKey: arn, out: pub, env })).rejects.toThrow(/exists already/);

    const clip = join(hh.dir, "clip.mp4");
    const out = new TextSink();
    const code = await exportCommand({
      config,
      ...range,
      out: clip,
      kmsKey: arn,
      env,
      by: "tester",
      stdout: out,
    });
    expect(code).toBe(0);
    const evidence = JSON.parse(readFileSync(`${clip}.evidence.json`, "utf8")) as ExportEvidence;
    expect(evidence.signature?.alg).toBe("Ed25519");
    expect(out.text).toContain(`Evidence signed with key ${evidence.signature?.keyId}`);
    const signs = twin.calls.filter((c) => c.op === "Sign");
    expect(signs).toEqual([{ op: "Sign", keyId: arn }]);

    const check = async () => {
      const s = new TextSink();
      return { code: await verifyExportCommand({ clip, publicKey: pub, stdout: s }), text: s.text };
    };
    const ok = await check();
    expect(ok.text).toMatch(/^ok: clip.mp4.evidence.json: signed by key /m);
    expect(ok.code).toBe(0);
    const json = readFileSync(`${clip}.evidence.json`, "utf8");
    writeFileSync(`${clip}.evidence.json`, json.replace('"exportedBy": "tester"', '"exportedBy": "testes"'));
    const bad = await check();
    expect(bad.code).toBe(1);
    expect(bad.text).toContain("its signature does not match its content");
  });

  it("evidence.kmsKey in the config signs exports and day proofs without --kms-key", async () => {
    const { hh, twin, config, env } = await backedUp();
    twin.createKey("ECC_NIST_EDWARDS25519", "alias/fb-export");
    const withKms = join(hh.dir, "kms-config.json");
    writeFileSync(
      withKms,
      JSON.stringify({
        ...JSON.parse(readFileSync(config, "utf8")),
        evidence: { kmsKey: "alias/fb-export" },
      }),
    );
    const pub = join(hh.dir, "kms.pub.pem");
    expect(
      await exportKeyPublicCommand({ kmsKey: "alias/fb-export", out: pub, env, stdout: new TextSink() }),
    ).toBe(0);
    const out = new TextSink();
    const base = { config: withKms, source: "src1", stream: "cam1", day: "2026-11-20", env };
    expect(await proveCommand({ ...base, now: () => NOW0 + 86_400, stdout: out })).toBe(0);
    const proof = JSON.parse(out.text) as DayProof;
    expect(proof.signature?.alg).toBe("Ed25519");
    const lines = await checkProof(hh.store(), proof, loadPublicKey(pub));
    expect(lines[0]).toMatch(/^ok: .*signature/);
    expect(lines.filter((l) => l.startsWith("FAILED"))).toEqual([]);
    expect(twin.calls.filter((c) => c.op === "Sign")).toHaveLength(1);
  });

  it("a key of another spec, an unknown alias or a caller without kms:Sign: one sentence, nothing written", async () => {
    const { hh, twin, config, env } = await backedUp();
    const p256 = twin.createKey("ECC_NIST_P256");
    const ed = twin.createKey("ECC_NIST_EDWARDS25519");
    const clip = join(hh.dir, "clip.mp4");
    const attempt = (kmsKey: string) =>
      exportCommand({
        config,
        ...range,
        out: clip,
        kmsKey,
        env,
        stdout: new TextSink(),
        stderr: new TextSink(),
      });
    await expect(attempt(p256)).rejects.toThrow(UsageError);
    await expect(attempt(p256)).rejects.toThrow(
      `export: KMS key ${p256}: a ECC_NIST_P256 key for SIGN_VERIFY; exports are signed with an ECC_NIST_EDWARDS25519 key for SIGN_VERIFY`,
    );
    await expect(attempt("alias/nope")).rejects.toThrow(
      /KMS key alias\/nope: cannot read its public key \(NotFoundException: .*\): no such key or alias/,
    );
    twin.deny.add("Sign");
    await expect(attempt(ed)).rejects.toThrow(
      /cannot sign \(AccessDeniedException: .*\): the caller needs kms:Sign on it/,
    );
    expect(existsSync(clip)).toBe(false);
    expect(existsSync(`${clip}.evidence.json`)).toBe(false);
    await expect(
      exportCommand({ config, ...range, out: clip, key: "k.pem", kmsKey: ed, env, stdout: new TextSink() }),
    ).rejects.toThrow("--key and --kms-key: give one of them");
  });
});
