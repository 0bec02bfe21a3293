/**
 * Playback tokens (functions/playback/token.ts) and the `playback-token` command that prints them.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { playbackTokenCommand } from "../../cli/commands/playback-token.ts";
import { UsageError } from "../../cli/commands/usage-error.ts";
import { createPlaybackToken, parseTokenKeys, tokenProblem } from "../../functions/playback/token.ts";

const KEY = "a".repeat(32);
const NEXT = "b".repeat(32);
const NOW = 1_764_547_200;
const CAM = { source: "s1", stream: "site/cam1" };

describe("playback tokens", () => {
  it("grant their stream, or every stream of their source, until they expire", () => {
    const stream = createPlaybackToken(KEY, CAM, NOW + 60);
    expect(tokenProblem(stream, [KEY], CAM, NOW)).toBeUndefined();
    expect(tokenProblem(stream, [KEY], CAM, NOW + 60)).toMatch(/expired at 2025-12-01T00:01:00.000Z/);
    expect(tokenProblem(stream, [KEY], { source: "s1", stream: "cam2" }, NOW)).toMatch(
      /for stream "site\/cam1"/,
    );
    const source = createPlaybackToken(KEY, { source: "s1" }, NOW + 60);
    expect(tokenProblem(source, [KEY], { source: "s1", stream: "cam2" }, NOW)).toBeUndefined();
    expect(tokenProblem(source, [KEY], { source: "s2", stream: "cam2" }, NOW)).toMatch(
      /for source "s1", not "s2"/,
    );
  });

  it("are accepted with any listed key (rotation) and refused once their key is dropped", () => {
    const old = createPlaybackToken(KEY, CAM, NOW + 60);
    expect(tokenProblem(old, [NEXT, KEY], CAM, NOW)).toBeUndefined();
    expect(tokenProblem(old, [NEXT], CAM, NOW)).toMatch(/signature does not match/);
  });

  it("refuse an altered payload (a stream swapped under the same signature) and malformed text", () => {
    const [v, , sig] = createPlaybackToken(KEY, CAM, NOW + 60).split(".");
    const swapped = Buffer.from(JSON.stringify({ src: "s1", str: "cam2", exp: NOW + 60 })).toString(
      "base64url",
    );
    expect(tokenProblem(`${v}.${swapped}.${sig}`, [KEY], { source: "s1", stream: "cam2" }, NOW)).toMatch(
      /signature does not match/,
    );
    for (const bad of ["", "v1", "v1..", "v2.a.b", "x.y.z.w"]) {
      expect(tokenProblem(bad, [KEY], CAM, NOW), bad).toMatch(/needs a token|malformed/);
    }
  });

  it("keys: one or more comma-separated secrets of 32+ characters, else a message naming the variable", () => {
    expect(parseTokenKeys("V", ` ${KEY} , ${NEXT}`)).toEqual([KEY, NEXT]);
    expect(() => parseTokenKeys("V", undefined)).toThrow(/set V to a secret of at least 32 characters/);
    expect(() => parseTokenKeys("V", `${KEY},short`)).toThrow(/key 2 in V is shorter than 32/);
  });
});

describe("flussonic-backup playback-token", () => {
  const dir = mkdtempSync(join(tmpdir(), "playback-token-"));
  const config = join(dir, "config.json");
  writeFileSync(
    config,
    JSON.stringify({
      bucket: "backup",
      sources: [{ name: "s1", url: "http://flussonic.example", streams: ["site/cam1", "cam2"] }],
      playback: { tokenKeysEnv: "MY_PLAYBACK_KEYS" },
    }),
  );
  const run = async (o: { stream?: string; ttl?: number; env?: NodeJS.ProcessEnv }) => {
    let text = "";
    const code = await playbackTokenCommand({
      config,
      source: "s1",
      stream: o.stream,
      ttlSeconds: o.ttl ?? 600,
      env: o.env ?? { MY_PLAYBACK_KEYS: `${KEY},${NEXT}` },
      now: NOW,
      out: { write: (s: string) => (text += s) },
      // The audit record is tested in test/ops/playback-token-audit.test.ts, against a bucket.
      audit: "off",
    });
    return { code, lines: text.trimEnd().split("\n") };
  };

  it("prints a token for the stream, alone on the last line, signed with the first key of the variable the config names, valid for --ttl", async () => {
    const { code, lines } = await run({ stream: "site/cam1", ttl: 600 });
    expect(code).toBe(0);
    const token = lines.at(-1)!;
    expect(token).toMatch(/^v1\.[\w-]+\.[\w-]+$/);
    expect(tokenProblem(token, [KEY], CAM, NOW + 599)).toBeUndefined();
    expect(tokenProblem(token, [KEY], CAM, NOW + 600)).toMatch(/expired/);
    expect(tokenProblem(token, [KEY], { source: "s1", stream: "cam2" }, NOW)).toMatch(/for stream/);
    expect(tokenProblem(token, [NEXT], CAM, NOW)).toMatch(/signature/);
  });

  it("without --stream the token grants every stream of the source", async () => {
    const token = (await run({})).lines.at(-1)!;
    expect(tokenProblem(token, [KEY], { source: "s1", stream: "cam2" }, NOW)).toBeUndefined();
  });

  it("refuses an unknown stream and a missing key with a usage error", async () => {
    await expect(run({ stream: "cam9" })).rejects.toThrow(/no stream "cam9" in source "s1"/);
    await expect(run({ env: {} })).rejects.toThrow(UsageError);
    await expect(run({ env: {} })).rejects.toThrow(/set MY_PLAYBACK_KEYS/);
  });
});

describe("one spelling per token (issue 20 §6)", () => {
  it("refuses the signature with padding appended or with other unused low bits: each token has exactly one accepted form", () => {
    const good = createPlaybackToken(KEY, CAM, NOW + 60);
    expect(tokenProblem(good, [KEY], CAM, NOW)).toBeUndefined();
    const [v, payload, sig] = good.split(".") as [string, string, string];
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    // The last character of a 32-byte signature carries 2 unused bits: its 3 siblings decode the same.
    const last = alphabet.indexOf(sig.at(-1)!);
    const siblings = [1, 2, 3].map((d) => `${sig.slice(0, -1)}${alphabet[(last & ~3) | ((last + d) & 3)]}`);
    for (const spelling of [`${sig}==`, `${sig}=`, `${sig}.`, ` ${sig}`, ...siblings]) {
      expect(Buffer.from(spelling, "base64url").equals(Buffer.from(sig, "base64url")), spelling).toBe(true);
      expect(tokenProblem(`${v}.${payload}.${spelling}`, [KEY], CAM, NOW), spelling).toMatch(
        /malformed|does not match/,
      );
    }
  });
});
