/**
 * Holds against the embedded emulator and the simulator: a held range outlives the lifecycle rules
 * the stack deploys (each applied as if its objects had aged past it), windows arriving later inside
 * a hold are held, a legal hold is put on a bucket with Object Lock and lifted on release, holds
 * survive `rebuild`, and a hold the config cannot have changes nothing.
 */
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectLegalHoldCommand,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it } from "vitest";
import { holdCommand, holdsCommand, releaseCommand } from "../../cli/commands/hold.ts";
import { rebuildCommand } from "../../cli/commands/rebuild.ts";
import { restoreCommand } from "../../cli/commands/restore.ts";
import { statusCommand } from "../../cli/commands/status.ts";
import { awsClients, bucketSnapshot } from "../../dev/kit/cli-process.ts";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { expireAsLifecycle } from "../../dev/kit/lifecycle-expiry.ts";
import { operatorTarget, TextSink } from "../../dev/kit/ops-target.ts";
import { heldFolder } from "../../functions/domain/keys.ts";
import { runOnce } from "../../local/once.ts";

const NOW0 = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
const MIN = 60;
const iso = (t: number) => new Date(t * 1000).toISOString();
/** 11:20 – 11:40: two whole 600 s windows. */
const HELD = { from: NOW0 - 57 * MIN, to: NOW0 - 37 * MIN };

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function backedUp(o: { config?: Record<string, unknown>; lockedBucket?: boolean } = {}) {
  const hh = await startHarness({
    sim: {
      media: "real",
      streams: [
        { name: "cam1", bitrateBps: 16_000, ranges: [{ from: NOW0 - 3 * HOUR, to: NOW0 + 2 * HOUR }] },
      ],
    },
    source: { retentionDays: 1.5 / 24 },
    config: { ...(o.lockedBucket ? { bucket: "locked-backup" } : {}), ...o.config },
  });
  h = hh;
  if (o.lockedBucket) {
    const aws = awsClients(hh.emulator.endpoints.s3Endpoint!);
    await aws.s3.send(new CreateBucketCommand({ Bucket: "locked-backup", ObjectLockEnabledForBucket: true }));
    aws.close();
  }
  const rt = await hh.runtime();
  expect((await runOnce(rt, hh.tally)).ok).toBe(true);
  return { hh, file: operatorTarget(hh), rt };
}

type Cmd<O> = (o: O) => Promise<number>;
async function run<O>(f: Cmd<O>, o: Omit<O, "stdout" | "stderr">) {
  const stdout = new TextSink();
  const stderr = new TextSink();
  const code = await f({ ...o, stdout, stderr } as O);
  return { code, stdout: stdout.text, stderr: stderr.text };
}

const holdArgs = (file: string, range = HELD, stream = "cam1") => ({
  config: file,
  source: "src1",
  stream,
  from: iso(range.from),
  to: iso(range.to),
  reason: "case 114",
  by: "tester",
});

describe("holds", () => {
  it("a held window survives a simulated lifecycle expiry that removes its unheld neighbours", async () => {
    const { hh, file } = await backedUp();
    const r = await run(holdCommand, holdArgs(file));
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("2 window(s) kept past retention");
    expect(r.stdout).not.toContain("does not hold");

    const expired = await expireAsLifecycle(hh.s3(), hh.config);
    expect(expired).toContain("flussonic/src1/cam1/2026-11-20/105000Z-600s.mp4");
    expect(expired).toContain("flussonic/src1/cam1/2026-11-20/112000Z-600s.mp4");
    const neighbour = await run(restoreCommand, {
      config: file,
      source: "src1",
      stream: "cam1",
      from: iso(NOW0 - 87 * MIN),
      to: iso(NOW0 - 77 * MIN),
      out: `${hh.dir}/gone.mp4`,
    });
    expect(neighbour.code).toBe(1);
    expect(neighbour.stderr).toContain("holds nothing");

    const back = await run(restoreCommand, {
      config: file,
      source: "src1",
      stream: "cam1",
      from: iso(HELD.from),
      to: iso(HELD.to),
      out: `${hh.dir}/held.mp4`,
    });
    expect(back.stderr).not.toContain("refused");
    expect(back.code).toBe(0);
    expect(back.stdout).toContain("2 window(s)");
  });

  it("windows stored later inside a held range are held as they arrive; the hold names the seconds it lacks", async () => {
    const { hh, file, rt } = await backedUp();
    const range = { from: NOW0 - 7 * MIN, to: NOW0 + 23 * MIN };
    const r = await run(holdCommand, holdArgs(file, range));
    expect(r.code).toBe(0);
    // Stored up to 12:10 (whole windows, 120 s from the live edge): 12:10 – 12:40 is missing.
    expect(r.stdout).toContain("0 window(s) kept past retention");
    expect(r.stdout).toContain("The backup does not hold 1800 s of the range");
    expect(r.stdout).toContain("missing 2026-11-20T12:10:00Z – 2026-11-20T12:40:00Z (30m00s)");
    const folder = heldFolder(hh.config.prefix, "src1", "cam1", "2026-11-20");
    expect(await hh.keys(folder)).toEqual([]);

    hh.clock.advance(30 * MIN);
    expect((await runOnce(rt, hh.tally)).ok).toBe(true);
    // The planner holds what the copiers stored inside the range on its next run.
    await rt.plan();
    const held = await hh.keys(folder);
    expect(held).toEqual([
      `${folder}121000Z-600s.mp4`,
      `${folder}122000Z-600s.mp4`,
      `${folder}123000Z-600s.mp4`,
    ]);
  });

  it("on a bucket with Object Lock each held copy has a legal hold; release lifts it and removes the copies", async () => {
    const { hh, file } = await backedUp({ lockedBucket: true });
    const r = await run(holdCommand, holdArgs(file));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("each with an S3 legal hold");
    const folder = heldFolder(hh.config.prefix, "src1", "cam1", "2026-11-20");
    const keys = await hh.keys(folder);
    expect(keys).toHaveLength(2);
    for (const Key of keys) {
      const got = await hh.s3().send(new GetObjectLegalHoldCommand({ Bucket: "locked-backup", Key }));
      expect(got.LegalHold?.Status).toBe("ON");
    }
    const refused = await hh
      .s3()
      .send(new DeleteObjectCommand({ Bucket: "locked-backup", Key: keys[0]! }))
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(S3ServiceException);
    expect((refused as S3ServiceException).$metadata.httpStatusCode).toBe(403);

    const listed = await run(holdsCommand, { config: file });
    const id = /hold (\S+) src1 "cam1"/.exec(listed.stdout)?.[1];
    expect(id).toBeDefined();
    const released = await run(releaseCommand, { config: file, source: "src1", id, by: "tester" });
    expect(released.stderr).toBe("");
    expect(released.code).toBe(0);
    expect(released.stdout).toContain("2 held cop(ies) removed");
    expect(await hh.keys(folder)).toEqual([]);
    expect((await run(holdsCommand, { config: file })).stdout).toBe("No holds.\n");
  });

  it('evidence.legalHold "required" on a bucket without Object Lock: refused in one sentence, nothing stored changes', async () => {
    const { hh, file } = await backedUp({ config: { evidence: { legalHold: "required" } } });
    const before = await bucketSnapshot(hh.s3(), hh.config.bucket);
    const r = await run(holdCommand, holdArgs(file));
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain('evidence.legalHold is "required" but bucket test-backup has no Object Lock');
    expect(await bucketSnapshot(hh.s3(), hh.config.bucket)).toEqual(before);
  });

  it("an unknown stream is refused and nothing is held", async () => {
    const { hh, file } = await backedUp();
    const before = await bucketSnapshot(hh.s3(), hh.config.bucket);
    const r = await run(holdCommand, holdArgs(file, HELD, "cam9"));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('the backup has no stream "cam9" of source src1');
    expect(await bucketSnapshot(hh.s3(), hh.config.bucket)).toEqual(before);
  });

  it("holds survive rebuild: listed by holds and status, still restoring after the lifecycle", async () => {
    const { hh, file } = await backedUp();
    expect((await run(holdCommand, holdArgs(file))).code).toBe(0);
    const rebuilt = await run(rebuildCommand, {
      config: file,
      source: "src1",
      out: new TextSink(),
      progress: new TextSink(),
    });
    expect(rebuilt.code).toBe(0);
    const listed = await run(holdsCommand, { config: file });
    expect(listed.stdout).toMatch(
      /^hold \S+ src1 "cam1" 2026-11-20T11:20:00Z – 2026-11-20T11:40:00Z \(20m00s\) by tester at .*: case 114\n$/,
    );
    const status = new TextSink();
    await statusCommand({ config: file, copyTimeoutSeconds: 60, now: NOW0, out: status });
    expect(status.text).toContain(`Holds (kept past retention until released):\n  ${listed.stdout}`);
    await expireAsLifecycle(hh.s3(), hh.config);
    const back = await run(restoreCommand, {
      config: file,
      source: "src1",
      stream: "cam1",
      from: iso(HELD.from),
      to: iso(HELD.to),
      out: `${hh.dir}/held.mp4`,
    });
    expect(back.stderr).not.toContain("refused");
    expect(back.code).toBe(0);
  });
});
