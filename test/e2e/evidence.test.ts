/**
 * The evidence commands run as a user runs them (the package's bin in a child process) against a
 * backup in the embedded emulator: export-key init, hold, holds, release, export, verify-export,
 * prove and audit, end to end, and their refusals in one line with the exit status they promise.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli } from "../../dev/kit/cli-process.ts";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { KmsTwin } from "../../dev/kit/kms-twin.ts";
import { runOnce } from "../../local/once.ts";

const NOW0 = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);

let h: Harness;
let env: Record<string, string>;
let config: string;

beforeAll(async () => {
  h = await startHarness({
    sim: {
      media: "real",
      streams: [{ name: "cam1", bitrateBps: 16_000, ranges: [{ from: NOW0 - 2 * HOUR, to: NOW0 + 1 }] }],
    },
    source: { retentionDays: 1 / 24 },
  });
  expect((await runOnce(await h.runtime(), h.tally)).ok).toBe(true);
  config = join(h.dir, "config.json");
  writeFileSync(config, JSON.stringify(h.config));
  const e = h.emulator.endpoints;
  env = {
    AWS_ENDPOINT_URL_S3: e.s3Endpoint!,
    AWS_ENDPOINT_URL_SQS: e.sqsEndpoint!,
    AWS_REGION: e.region,
    AWS_ACCESS_KEY_ID: e.credentials?.accessKeyId ?? "embedded",
    AWS_SECRET_ACCESS_KEY: e.credentials?.secretAccessKey ?? "embedded",
  };
});

afterAll(async () => {
  await h?.close();
});

const run = (args: string[], extra: Record<string, string> = {}) =>
  cli(args, { cwd: h.dir, env: { ...env, ...extra }, timeoutMs: 60_000 });

describe("evidence commands (the real binary)", () => {
  it("export-key init, hold, holds, export, verify-export, prove, release, audit", async () => {
    const key = await run(["export-key", "init", "--out", "key.pem"]);
    expect(key.stderr).toBe("");
    expect(key.code).toBe(0);
    expect(key.stdout).toMatch(
      /^Wrote the export signing key .*key\.pem .* its public key .*key\.pub\.pem \(key [0-9a-f]{16}\)/,
    );

    const range = ["--from", "2026-11-20T11:40:00Z", "--to", "2026-11-20T11:50:00Z"];
    const target = ["-c", config, "--source", "src1", "--stream", "cam1"];
    const hold = await run(["hold", ...target, ...range, "--reason", "case 9", "--by", "alice"]);
    expect(hold.stderr).toBe("");
    expect(hold.code).toBe(0);
    expect(hold.stdout).toContain("1 window(s) kept past retention");
    const id = /hold (\S+),/.exec(hold.stdout)?.[1];

    const holds = await run(["holds", "-c", config]);
    expect(holds.stdout).toBe(
      `hold ${id} src1 "cam1" 2026-11-20T11:40:00Z – 2026-11-20T11:50:00Z (10m00s) by alice at ${/at (\S+):/.exec(holds.stdout)?.[1]}: case 9\n`,
    );

    const pem = readFileSync(join(h.dir, "key.pem"), "utf8");
    const exported = await run(["export", ...target, ...range, "--out", "clip.mp4", "--by", "alice"], {
      FLUSSONIC_BACKUP_EXPORT_KEY: pem,
    });
    expect(exported.stderr).toBe("");
    expect(exported.code).toBe(0);
    expect(exported.stdout).toContain("Evidence signed with key");

    const offline = await run(["verify-export", "clip.mp4", "--public-key", "key.pub.pem"]);
    expect(offline.code).toBe(0);
    expect(offline.stdout).toContain("clip.mp4: verified.");
    const online = await run(["verify-export", "clip.mp4", "--public-key", "key.pub.pem", "-c", config]);
    expect(online.code).toBe(0);
    expect(online.stdout).toContain("still stored, unchanged");

    const proof = await run(["prove", ...target, "--day", "2026-11-20", "--key", "key.pem"]);
    expect(proof.stderr).toBe("");
    expect(proof.code).toBe(0);
    expect(JSON.parse(proof.stdout)).toMatchObject({ day: "2026-11-20", stream: "cam1" });
    const check = await run([
      "prove",
      ...target,
      "--day",
      "2026-11-20",
      "--check",
      "--public-key",
      "key.pub.pem",
    ]);
    expect(check.code).toBe(0);

    const released = await run(["release", "-c", config, "--source", "src1", "--id", id!, "--by", "alice"]);
    expect(released.stderr).toBe("");
    expect(released.code).toBe(0);

    const audit = await run(["audit", "-c", config]);
    expect(audit.code).toBe(0);
    expect(
      audit.stdout
        .trim()
        .split("\n")
        .map((l) => l.split(" ").slice(1, 4).join(" "))
        // Alice's actions, once each and in order (the KMS test, in any order, adds its own).
        .filter((l) => l.endsWith(" by alice")),
    ).toEqual(["hold by alice", "export by alice", "release by alice"]);
    expect(audit.stdout).not.toContain(pem.split("\n")[1]!);
  });

  it("refusals: one line each, no stack, the exit status promised", async () => {
    const target = ["-c", config, "--source", "src1"];
    const range = ["--from", "2026-11-20T11:40:00Z", "--to", "2026-11-20T11:50:00Z"];
    const unknown = await run(["hold", ...target, "--stream", "cam9", ...range, "--reason", "x"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe(
      'hold refused: the backup has no stream "cam9" of source src1 (did you mean "cam1"? streams it holds: 1)\n',
    );
    const noKey = await run(["export", ...target, "--stream", "cam1", ...range, "--out", "x.mp4"]);
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toBe(
      "export: no signing key: give --key <file> or set FLUSSONIC_BACKUP_EXPORT_KEY to the PEM of an Ed25519 private key (`flussonic-backup export-key init` makes one)\n",
    );
    const noClip = await run(["verify-export", "missing.mp4", "--public-key", "nowhere.pem"]);
    expect(noClip.code).toBe(2);
    expect(noClip.stderr).toBe("verify-export: --public-key nowhere.pem: cannot read it (ENOENT)\n");
    const badDay = await run(["prove", ...target, "--stream", "cam1", "--day", "20-11-2026"]);
    expect(badDay.code).toBe(2);
    expect(badDay.stderr).toBe('--day: expected a UTC date like 2026-11-25, got "20-11-2026"\n');
    const noRelease = await run(["release", ...target, "--id", "nope"]);
    expect(noRelease.code).toBe(1);
    expect(noRelease.stderr).toMatch(/^release refused: no hold nope in source src1 \(its holds: .*\)\n$/);
  });

  it("with a KMS key: export-key public, export --kms-key, verify-export with the PEM; the token minted is audited", async () => {
    const twin = await KmsTwin.start(env.AWS_REGION);
    try {
      const arn = twin.createKey("ECC_NIST_EDWARDS25519", "alias/fb-e2e");
      const kms = { AWS_ENDPOINT_URL_KMS: twin.url };
      const pub = await run(
        ["export-key", "public", "--kms-key", "alias/fb-e2e", "--out", "kms.pub.pem"],
        kms,
      );
      expect(pub.stderr).toBe("");
      expect(pub.code).toBe(0);
      expect(pub.stdout).toMatch(
        /^Wrote the public key of KMS key alias\/fb-e2e to .*kms\.pub\.pem \(key [0-9a-f]{16}\)/,
      );
      const range = ["--from", "2026-11-20T11:40:00Z", "--to", "2026-11-20T11:50:00Z"];
      const exported = await run(
        [
          "export",
          "-c",
          config,
          "--source",
          "src1",
          "--stream",
          "cam1",
          ...range,
          "--out",
          "kms.mp4",
          "--kms-key",
          arn,
        ],
        kms,
      );
      expect(exported.stderr).toBe("");
      expect(exported.code).toBe(0);
      const checked = await run(["verify-export", "kms.mp4", "--public-key", "kms.pub.pem"]);
      expect(checked.code).toBe(0);
      expect(checked.stdout).toContain("kms.mp4: verified.");
      const refused = await run(
        ["export-key", "public", "--kms-key", "alias/none", "--out", "none.pem"],
        kms,
      );
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(
        /^export-key public: KMS key alias\/none: cannot read its public key \(NotFoundException: .*\n$/,
      );
    } finally {
      await twin.close();
    }
    const token = await run(["playback-token", "-c", config, "--source", "src1", "--by", "carol"], {
      FLUSSONIC_BACKUP_PLAYBACK_KEYS: "a-playback-key-of-at-least-32-characters",
    });
    expect(token.stderr).toBe("");
    expect(token.code).toBe(0);
    const audit = await run(["audit", "-c", config, "--json"]);
    const records = JSON.parse(audit.stdout) as { action: string; by: string }[];
    expect(records.filter((r) => r.action === "playback-token").map((r) => r.by)).toEqual(["carol"]);
  });
});
