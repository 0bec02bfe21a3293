/**
 * The program as a user with LocalStack or their own endpoints runs it: the emulator in a process of
 * its own, reached only through AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL_SQS / AWS_REGION and dummy
 * credentials. run --once, run --dry-run (nothing changes: bucket and queues compared before and
 * after), status --json, verify, redrive (--dry-run), pause/resume.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DeleteMessageCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  awayFromWindowEdge,
  awsClients,
  bucketSnapshot,
  type CliResult,
  cli,
  objectBytes,
  queueCounts,
  windowsIn,
} from "../../dev/kit/cli-process.ts";
import { type EmulatorProcess, startEmulatorProcess } from "../../dev/kit/emulator-process.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";

describe("the CLI against S3/SQS endpoints given by the AWS variables (emulator in its own process)", () => {
  let dir: string;
  let sim: FlussonicSimulator;
  let emulator: EmulatorProcess;
  let aws: ReturnType<typeof awsClients>;
  let env: Record<string, string>;
  let full: string;
  let cam1Only: string;
  let cam1AndCam3: string;
  const bucket = "endpoint-backup";

  /**
   * cam1 backed up by `run --once` (which also creates the bucket and the queues): done once, by
   * whichever test needs it first, so that each test runs alone or in any order.
   */
  let cam1Run: Promise<CliResult> | undefined;
  function cam1BackedUp(): Promise<CliResult> {
    cam1Run ??= (async () => {
      await awayFromWindowEdge(600, 120, 40);
      return cli(["run", "-c", cam1Only, "--once"], { cwd: dir, env });
    })();
    return cam1Run;
  }

  /** A window message for the copy queue or the dead-letter queue of source cams. */
  function windowMessage(queue: string, from: number) {
    return new SendMessageCommand({
      QueueUrl: queue,
      MessageBody: JSON.stringify({
        v: 1,
        source: "cams",
        stream: "cam1",
        from,
        duration: 600,
        format: "mp4",
        leaseUntil: from + 3600,
      }),
      MessageAttributes: { reason: { DataType: "String", StringValue: "HTTP 403 from the source" } },
    });
  }

  async function queueUrl(name: string): Promise<string> {
    return (await aws.sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!;
  }

  /** Empties the copy queue (what a test put there for itself). */
  async function drainCopyQueue(): Promise<void> {
    const url = await queueUrl("flussonic-backup-cams");
    for (;;) {
      const got = await aws.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
      );
      if (!got.Messages?.length) return;
      for (const m of got.Messages)
        await aws.sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle! }));
    }
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fb-cli-endpoints-"));
    [sim, emulator] = await Promise.all([
      // cam3 is never copied: the dry run always has windows of it to list.
      FlussonicSimulator.start({ streams: 3, days: 0.03, bitrateBps: 8000, seed: 11 }),
      startEmulatorProcess({ dir: join(dir, "emulator") }),
    ]);
    aws = awsClients(emulator.url);
    env = emulator.env;
    const config = (streams: unknown[]) =>
      JSON.stringify({
        bucket,
        sources: [
          {
            name: "cams",
            url: sim.url,
            streams,
            retentionDays: 0.02,
            maxConcurrentCopies: 2,
            maxBandwidthMbps: 100,
          },
        ],
      });
    full = join(dir, "full.json");
    cam1Only = join(dir, "cam1.json");
    cam1AndCam3 = join(dir, "cam1-cam3.json");
    writeFileSync(full, config(["cam1", { name: "cam2", format: "ts" }]));
    writeFileSync(cam1Only, config(["cam1"]));
    writeFileSync(cam1AndCam3, config(["cam1", { name: "cam3", format: "ts" }]));
  });

  afterAll(async () => {
    aws?.close();
    await emulator?.stop();
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("run --once: creates the bucket and the queues, copies byte for byte, exit 0", async () => {
    const r = await cam1BackedUp();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Copied [1-9]\d* window\(s\)/m);
    // The start-up probe of the endpoint and the copies print nothing of the SDK's own (an empty
    // PutObject body made it warn "Are you using a Stream of unknown length ..."): on stderr only
    // the program's progress lines, and the planner's margin warning: this source keeps under an hour,
    // so on a first run its oldest seconds are minutes from deletion (a true warning).
    expect(r.stderr).not.toContain("Stream of unknown length");
    const noise = r.stderr
      .split("\n")
      .filter(
        (l) => l !== "" && !l.startsWith("progress ") && !l.includes("margin below the warning threshold"),
      );
    expect(noise).toEqual([]);
    expect(r.stdout).toMatch(/^cams\s+cam1\s+.*\s100%/m);
    const objects = (await bucketSnapshot(aws.s3, bucket))!;
    const windows = windowsIn(objects.keys(), "flussonic/cams/cam1/");
    expect(windows.length).toBeGreaterThan(0);
    for (const w of windows) {
      const got = await objectBytes(aws.s3, bucket, w.key);
      expect(got.equals(sim.body("cam1", w.from, w.duration, "mp4")), w.key).toBe(true);
    }
    expect(await queueCounts(aws.sqs)).toEqual({
      "flussonic-backup-cams": 0,
      "flussonic-backup-cams-dlq": 0,
    });
  }, 120_000);

  it("run --dry-run: prints what would be copied; no object, manifest, lease or queue message changes", async () => {
    await cam1BackedUp();
    // The dry run must see the due windows of cam1 a run saw: one more run, right before it.
    await awayFromWindowEdge(600, 120, 40);
    expect((await cli(["run", "-c", cam1Only, "--once"], { cwd: dir, env })).code).toBe(0);
    const objectsBefore = await bucketSnapshot(aws.s3, bucket);
    const queuesBefore = await queueCounts(aws.sqs);
    const r = await cli(["run", "-c", cam1AndCam3, "--dry-run"], { cwd: dir, env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Dry run: nothing queued, leased or written\.$/m);
    expect(r.stdout).toMatch(
      /^ {2}cam3: [1-9]\d* window\(s\) of up to \d+ s, .*~[\d.]+ \S+, ~\d+\S* at the cap/m,
    );
    expect(r.stdout).toMatch(/^ {2}cam1: 0 window\(s\)/m);
    expect(await bucketSnapshot(aws.s3, bucket)).toEqual(objectsBefore);
    expect(await queueCounts(aws.sqs)).toEqual(queuesBefore);
  }, 120_000);

  it("run --once then status --json and verify: complete and intact (exit 0)", async () => {
    await cam1BackedUp(); // the first run of cam1 is the first test's
    // status below must see the due windows this run saw.
    await awayFromWindowEdge(600, 120, 40);
    const r = await cli(["run", "-c", full, "--once"], { cwd: dir, env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^cams\s+cam2\s+.*\s100%/m);
    const objects = (await bucketSnapshot(aws.s3, bucket))!;
    for (const w of windowsIn(objects.keys(), "flussonic/cams/cam2/")) {
      const got = await objectBytes(aws.s3, bucket, w.key);
      expect(got.equals(sim.body("cam2", w.from, w.duration, "ts")), w.key).toBe(true);
    }
    const [status, verify] = await Promise.all([
      cli(["status", "-c", full, "--json"], { cwd: dir, env }),
      cli(["verify", "-c", full], { cwd: dir, env }),
    ]);
    expect(status.code, status.stdout + status.stderr).toBe(0);
    const s = JSON.parse(status.stdout).sources[0];
    expect(s.queue).toEqual({ queued: 0, inFlight: 0, deadLettered: 0 });
    for (const st of s.streams) expect(st.coverage.missing, st.stream).toEqual([]);
    expect(verify.code, verify.stdout).toBe(0);
    expect(verify.stdout).toMatch(/in 2 stream\(s\): ([1-9]\d*) intact, 0 missing, 0 corrupt, 0 unrecorded/);
  }, 120_000);

  it("redrive --dry-run lists a dead-lettered window and moves nothing; redrive moves it back", async () => {
    await cam1BackedUp(); // the queues
    const from = Math.floor(Date.now() / 1000 / 600) * 600 - 3600;
    await aws.sqs.send(windowMessage(await queueUrl("flussonic-backup-cams-dlq"), from));
    const dry = await cli(["redrive", "-c", full, "--source", "cams", "--dry-run"], { cwd: dir, env });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain("1 dead-lettered window(s) of source cams (left in place, --dry-run)");
    expect(dry.stdout).toContain(
      `"cam1" ${new Date(from * 1000).toISOString().replace(".000Z", "Z")} +600s: HTTP 403 from the source`,
    );
    expect(await queueCounts(aws.sqs)).toEqual({
      "flussonic-backup-cams": 0,
      "flussonic-backup-cams-dlq": 1,
    });
    // The dry run received the message to read it and made it visible again 1 s later (redrive.ts);
    // only a receive shows that (the emulator updates its counts lazily): redrive until it moves it.
    const moves: string[] = [];
    await expect
      .poll(
        async () => {
          const r = await cli(["redrive", "-c", full, "--source", "cams"], { cwd: dir, env });
          expect(r.code, r.stderr).toBe(0);
          moves.push(r.stdout.trim());
          return r.stdout;
        },
        { timeout: 20_000, interval: 100 },
      )
      .toContain("Moved 1 dead-lettered window(s) of source cams back to its copy queue.");
    expect(moves.slice(0, -1).every((m) => m.startsWith("Moved 0 "))).toBe(true);
    expect(await queueCounts(aws.sqs)).toEqual({
      "flussonic-backup-cams": 1,
      "flussonic-backup-cams-dlq": 0,
    });
    await drainCopyQueue();
  }, 60_000);

  it("pause: status shows it, run --once copies nothing; resume lifts it", async () => {
    await cam1BackedUp(); // the queues
    // A window waiting in the copy queue, which the paused source leaves there.
    const from = Math.floor(Date.now() / 1000 / 600) * 600 - 3600;
    await aws.sqs.send(windowMessage(await queueUrl("flussonic-backup-cams"), from));
    const p = await cli(["pause", "-c", full, "--source", "cams", "--reason", "disk swap"], {
      cwd: dir,
      env,
    });
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toContain("Source cams paused (disk swap)");
    const before = await bucketSnapshot(aws.s3, bucket);
    const [status, run] = await Promise.all([
      cli(["status", "-c", full], { cwd: dir, env }),
      cli(["run", "-c", full, "--once"], { cwd: dir, env }),
    ]);
    expect(status.stdout).toMatch(/^source\s+stream\s+archive\s+due\s+backed up\s+coverage/m);
    expect(status.stdout).toContain("cams (paused: disk swap): 1 window(s) queued");
    expect(run.stdout).toMatch(/^Copied 0 window\(s\)/m);
    expect(run.stdout).toContain("Source cams did not copy");
    expect(await bucketSnapshot(aws.s3, bucket)).toEqual(before);
    const r = await cli(["resume", "-c", full, "--source", "cams"], { cwd: dir, env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("Source cams resumed");
    const again = await cli(["resume", "-c", full, "--source", "cams"], { cwd: dir, env });
    expect(again.stdout).toContain("Source cams was not paused by the operator.");
    await drainCopyQueue();
  }, 120_000);
});
