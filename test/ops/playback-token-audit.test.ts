/**
 * `playback-token` in the audit trail: each token issued appends a record to the bucket (who,
 * which stream, until when, the token's id) that holds no secret; without access to the bucket the
 * token is printed and stderr says no record was written, or, with --require-audit, no token.
 */
import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { playbackTokenCommand } from "../../cli/commands/playback-token.ts";
import { type Harness, startHarness } from "../../dev/kit/harness.ts";
import { operatorTarget, TextSink } from "../../dev/kit/ops-target.ts";
import { listAudit } from "../../ops/audit.ts";

const KEY = "k3y-of-at-least-32-characters-0123456789";
const OLD = "an-older-key-of-32-characters-abcdefghij";
const NOW = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function issue(o: Partial<Parameters<typeof playbackTokenCommand>[0]> & { config: string }) {
  const out = new TextSink();
  const err = new TextSink();
  const code = await playbackTokenCommand({
    source: "src1",
    stream: "cam1",
    ttlSeconds: 3600,
    env: { FLUSSONIC_BACKUP_PLAYBACK_KEYS: `${KEY},${OLD}` },
    now: NOW,
    by: "tester",
    out,
    err,
    ...o,
  });
  return { code, out: out.text, err: err.text, token: out.text.trimEnd().split("\n").at(-1)! };
}

describe("playback-token and the audit trail", () => {
  it("appends one record per token, naming who, which stream, until when and the token's id, and no secret", async () => {
    h = await startHarness({ sim: { streams: 1 } });
    await h.runtime();
    const config = operatorTarget(h);
    const r = await issue({ config });
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const id = createHash("sha256").update(r.token).digest("hex").slice(0, 16);
    expect(r.out).toContain(`recorded in the audit trail as token ${id}`);
    const records = await listAudit(h.store(), undefined);
    expect(records).toHaveLength(1);
    const { key, ...record } = records[0]!;
    expect(record).toEqual({
      v: 1,
      action: "playback-token",
      at: NOW,
      by: "tester",
      source: "src1",
      stream: "cam1",
      detail: {
        tokenId: id,
        expires: NOW + 3600,
        ttlSeconds: 3600,
        signedWith: "first key in FLUSSONIC_BACKUP_PLAYBACK_KEYS",
      },
    });
    // No secret: not the token, nor its signature or payload, nor either key.
    const text = JSON.stringify(records[0]) + key;
    for (const secret of [r.token, ...r.token.split(".").slice(1), KEY, OLD])
      expect(text).not.toContain(secret);
    await issue({ config, stream: undefined });
    expect(await listAudit(h.store(), undefined)).toHaveLength(2);
  });

  it("without access to the bucket: the token is printed and stderr says no record was written", async () => {
    h = await startHarness({ sim: { streams: 1 } });
    const config = operatorTarget(h);
    const gone = () => Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:9"));
    const r = await issue({ config, openTarget: gone });
    expect(r.code).toBe(0);
    expect(r.token).toMatch(/^v1\./);
    expect(r.err).toBe(
      "playback-token: no audit record written (connect ECONNREFUSED 127.0.0.1:9); the token is issued without one (--require-audit refuses it instead, --no-audit does not try)\n",
    );
    expect(r.out).not.toContain("recorded in the audit trail");

    const required = await issue({ config, openTarget: gone, audit: "required" });
    expect(required.code).toBe(1);
    expect(required.out).toBe("");
    expect(required.err).toContain("no token issued (--require-audit)");
  });

  it("a bucket that does not exist is no access either", async () => {
    h = await startHarness({ sim: { streams: 1 } });
    const config = operatorTarget(h);
    // No runtime started: the harness's bucket was never created.
    const r = await issue({ config, audit: "required" });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^playback-token: no audit record written \(.*\); no token issued/);
    expect(r.err).not.toContain(KEY);
  });
});
