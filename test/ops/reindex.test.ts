/**
 * `flussonic-backup reindex`, the real binary in a child process against the harness's emulator:
 * windows stored before copiers recorded the fragment index get the same index as at copy time,
 * read from S3 by ranged GETs that skip the media payloads, never from the source; a second run
 * changes nothing.
 */
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it } from "vitest";
import { cli } from "../../dev/kit/cli-process.ts";
import { type Harness, startHarness } from "../../dev/kit/harness.ts";
import { operatorTarget } from "../../dev/kit/ops-target.ts";
import type { FragmentIndexDay } from "../../functions/domain/fragment-index.ts";
import { utcDate } from "../../functions/domain/keys.ts";
import { FragmentIndexStore } from "../../functions/store/fragment-index-store.ts";
import { runOnce } from "../../local/once.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe("reindex", () => {
  it("rebuilds the copy-time index of windows stored without one, from ranged S3 reads only; idempotent", async () => {
    const now = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
    h = await startHarness({
      sim: {
        streams: [
          // 70 KB per 1-second fragment: payloads long enough to be skipped by ranged reads.
          { name: "cam1", bitrateBps: 560_000, ranges: [{ from: now - 6 * 60, to: now + 1 }] },
          { name: "cam2", bitrateBps: 20_000, ranges: [{ from: now - 6 * 60, to: now + 1 }] },
        ],
      },
      source: { retentionDays: 1 / 24, streams: ["cam1", { name: "cam2", format: "ts" }] },
      // One-minute windows: the emulator reads a whole object for each ranged GET.
      config: { maxWindowSeconds: 60 },
    });
    const rt = await h.runtime();
    expect((await runOnce(rt, h.tally)).ok).toBe(true);
    const index = new FragmentIndexStore(rt.store);
    const day = utcDate(now);
    const atCopy = new Map<string, FragmentIndexDay | undefined>();
    for (const stream of ["cam1", "cam2"]) atCopy.set(stream, await index.readDay("src1", stream, day));
    expect(atCopy.get("cam1")!.windows.length).toBeGreaterThanOrEqual(2);
    expect(atCopy.get("cam2")!.windows.length).toBeGreaterThanOrEqual(2);
    const windows = [...atCopy.values()].reduce((n, d) => n + d!.windows.length, 0);
    const storedBytes = atCopy.get("cam1")!.windows.reduce((n, w) => n + w.size, 0);

    // As if stored before this change: no index objects (days and their per-stream summaries).
    const indexKeys = await h.keys(`${h.config.prefix}.backup/index/`);
    expect(indexKeys.filter((k) => !k.endsWith(".summary.json")).length).toBe(2);
    await rt.store.deleteKeys(indexKeys);
    expect(await index.readDay("src1", "cam1", day)).toBeUndefined();
    // And cam2's last window expired meanwhile (the catalog still lists it): reported, not a failure.
    const cam2 = atCopy.get("cam2")!;
    const expired = cam2.windows.pop()!;
    await rt.store.deleteKeys([expired.key]);

    const file = operatorTarget(h);
    const env = Object.fromEntries(
      [
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_SQS",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
      ].map((k) => [k, process.env[k]!]),
    );
    const sourceRequests = h.sim.requests.length;
    const first = await cli(["reindex", "-c", file], { cwd: h.dir, env, timeoutMs: 120_000 });
    expect(first.stderr).not.toMatch(/error/i);
    expect(first.code).toBe(0);
    const m =
      /Reindexed (\d+) stored window\(s\) in 2 stream\(s\): (\d+) indexed now, 0 already indexed, 0 unreadable, 1 missing; (\S+ \S+) read in (\d+) ranged GET\(s\), 2 index object\(s\) written\./.exec(
        first.stdout,
      );
    expect(m, first.stdout).not.toBeNull();
    expect(Number(m![1])).toBe(windows);
    expect(Number(m![2])).toBe(windows - 1);
    expect(first.stdout).toContain(
      `  MISSING src1 cam2 ${expired.key}: not in the bucket (expired or deleted)\n`,
    );
    expect(h.sim.requests.length, "no request to the source").toBe(sourceRequests);
    for (const stream of ["cam1", "cam2"]) {
      expect(await index.readDay("src1", stream, day), stream).toEqual(atCopy.get(stream));
    }

    // Ranged reads skipped the fMP4 payloads: about one 16 KiB range per 70 KB fragment of cam1
    // (the whole of cam2: MPEG-TS is read through).
    const cam2Bytes = atCopy.get("cam2")!.windows.reduce((n, w) => n + w.size, 0);
    const bytes = parseBytes(m![3]!);
    const fragments = atCopy.get("cam1")!.windows.reduce((n, w) => n + w.n, 0);
    expect(bytes).toBeLessThan(cam2Bytes + storedBytes / 2);
    expect(bytes).toBeLessThanOrEqual(cam2Bytes + (fragments + 4) * 32 * 1024);

    // Again: nothing to do, nothing written.
    const second = await cli(["reindex", "-c", file, "--stream", "cam1"], { cwd: h.dir, env });
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(
      new RegExp(
        `Reindexed ${atCopy.get("cam1")!.windows.length} stored window\\(s\\) in 1 stream\\(s\\): 0 indexed now, ${atCopy.get("cam1")!.windows.length} already indexed, 0 unreadable, 0 missing; 0 B read in 0 ranged GET\\(s\\), 0 index object\\(s\\) written\\.`,
      ),
    );
    // The day object is the one the first run wrote.
    const obj = await h.s3().send(
      new GetObjectCommand({
        Bucket: h.config.bucket,
        Key: `${h.config.prefix}.backup/index/src1/cam1/${day}.json`,
      }),
    );
    expect(JSON.parse(await obj.Body!.transformToString())).toEqual(atCopy.get("cam1"));

    // A stored window that is not whole media is named, and the exit status is 1.
    const cam1 = atCopy.get("cam1")!.windows;
    const broken = cam1[0]!;
    await h.s3().send(
      new PutObjectCommand({
        Bucket: h.config.bucket,
        Key: broken.key,
        Body: Buffer.from("<html>gone</html>"),
      }),
    );
    await rt.store.deleteKeys([`${h.config.prefix}.backup/index/src1/cam1/${day}.json`]);
    const third = await cli(["reindex", "-c", file, "--stream", "cam1"], { cwd: h.dir, env });
    expect(third.code).toBe(1);
    expect(third.stdout).toContain(`, 1 unreadable, 0 missing;`);
    expect(third.stdout).toMatch(
      new RegExp(`  UNREADABLE src1 cam1 ${broken.key}: not an MP4 box at byte 0`),
    );
    expect((await index.readDay("src1", "cam1", day))!.windows).toEqual(cam1.slice(1));
  });
});

/** "1.5 MiB" → bytes (ops/progress.ts formatBytes). */
function parseBytes(s: string): number {
  const m = /^([\d.]+) (B|KiB|MiB|GiB)$/.exec(s);
  if (!m) throw new Error(`unexpected byte count ${s}`);
  return Number(m[1]) * 1024 ** ["B", "KiB", "MiB", "GiB"].indexOf(m[2]!);
}
