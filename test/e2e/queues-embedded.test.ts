/**
 * The operator commands on an S3-only store backed up with `run --queues embedded --state-dir dir`:
 * the backup is at an S3 endpoint in a process of its own (reached only through the AWS variables,
 * as MinIO, Ceph, R2... would be), no queue service (AWS_ENDPOINT_URL_SQS points where nothing
 * listens), the copy queues in the state directory. `status`, `redrive` and `pause` take the same
 * `--queues embedded --state-dir dir` and work on those queues.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetQueueUrlCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  awayFromWindowEdge,
  awsClients,
  bucketSnapshot,
  type CliResult,
  cli,
  queueCounts,
} from "../../dev/kit/cli-process.ts";
import { type EmulatorProcess, startEmulatorProcess } from "../../dev/kit/emulator-process.ts";
import { startEmbedded } from "../../local/embedded.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";

describe("operator commands with --queues embedded --state-dir (S3 endpoint in its own process, no queue service)", () => {
  let dir: string;
  let sim: FlussonicSimulator;
  let store: EmulatorProcess;
  let env: Record<string, string>;
  let config: string;
  const bucket = "s3only-backup";
  const state = "queues";
  const queueArgs = ["--queues", "embedded", "--state-dir", state];

  /** The queues the CLI left in the state directory, opened in this process (no CLI runs meanwhile). */
  async function embeddedQueues<T>(fn: (c: ReturnType<typeof awsClients>) => Promise<T>): Promise<T> {
    const emulator = await startEmbedded(join(dir, state));
    const c = awsClients(emulator.endpoints.sqsEndpoint!);
    try {
      return await fn(c);
    } finally {
      c.close();
      await emulator.stop();
    }
  }

  /**
   * `run --once` with the queues in the state directory: done once, by whichever test needs the
   * state directory first, so that each test runs alone or in any order.
   */
  let firstRun: Promise<CliResult> | undefined;
  function backedUp(): Promise<CliResult> {
    firstRun ??= (async () => {
      await awayFromWindowEdge(600, 120, 40);
      return cli(["run", "-c", config, "--once", ...queueArgs], { cwd: dir, env });
    })();
    return firstRun;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fb-cli-queues-embedded-"));
    [sim, store] = await Promise.all([
      FlussonicSimulator.start({ streams: 1, days: 0.03, bitrateBps: 8000, seed: 5 }),
      startEmulatorProcess({ dir: join(dir, "store") }),
    ]);
    // Nothing listens on the discard port: a command that used SQS would fail.
    env = { ...store.env, AWS_ENDPOINT_URL_SQS: "http://127.0.0.1:9" };
    config = join(dir, "s3only.json");
    writeFileSync(
      config,
      JSON.stringify({
        bucket,
        sources: [
          {
            name: "cams",
            url: sim.url,
            streams: ["cam1"],
            retentionDays: 0.02,
            maxConcurrentCopies: 2,
            maxBandwidthMbps: 100,
          },
        ],
      }),
    );
  });

  afterAll(async () => {
    await store?.stop();
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("status --json shows the queue counts of the state directory; redrive --dry-run lists a dead-lettered window from it, redrive moves it back", async () => {
    const run = await backedUp();
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^Copied [1-9]\d* window\(s\)/m);

    // A window the copier gave up on, in the dead-letter queue of the state directory.
    const from = Math.floor(Date.now() / 1000 / 600) * 600 - 3600;
    await embeddedQueues(async ({ sqs }) => {
      const dlq = (await sqs.send(new GetQueueUrlCommand({ QueueName: "flussonic-backup-cams-dlq" })))
        .QueueUrl!;
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: dlq,
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
        }),
      );
    });

    const status = await cli(["status", "-c", config, "--json", ...queueArgs], { cwd: dir, env });
    // Exit 1: something is dead-lettered.
    expect(status.code, status.stdout + status.stderr).toBe(1);
    const s = JSON.parse(status.stdout).sources[0];
    expect(s.errors).toEqual([]);
    expect(s.queue).toEqual({ queued: 0, inFlight: 0, deadLettered: 1 });
    expect(s.streams[0].coverage.missing).toEqual([]);

    const dry = await cli(["redrive", "-c", config, "--source", "cams", "--dry-run", ...queueArgs], {
      cwd: dir,
      env,
    });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain("1 dead-lettered window(s) of source cams (left in place, --dry-run)");
    expect(dry.stdout).toContain(
      `"cam1" ${new Date(from * 1000).toISOString().replace(".000Z", "Z")} +600s: HTTP 403 from the source`,
    );
    // The dry run made the message visible again 1 s after reading it (redrive.ts); the counts
    // of the state directory cannot show that without receiving it: redrive until it moves it.
    const moves: string[] = [];
    await expect
      .poll(
        async () => {
          const moved = await cli(["redrive", "-c", config, "--source", "cams", ...queueArgs], {
            cwd: dir,
            env,
          });
          expect(moved.code, moved.stderr).toBe(0);
          moves.push(moved.stdout.trim());
          return moved.stdout;
        },
        { timeout: 20_000, interval: 100 },
      )
      .toContain("Moved 1 dead-lettered window(s) of source cams back to its copy queue.");
    expect(moves.slice(0, -1).every((m) => m.startsWith("Moved 0 "))).toBe(true);
    expect(await embeddedQueues(({ sqs }) => queueCounts(sqs))).toEqual({
      "flussonic-backup-cams": 1,
      "flussonic-backup-cams-dlq": 0,
    });

    // No queue was ever made at the S3 endpoint: the queues are only in the state directory.
    const c = awsClients(store.url);
    try {
      expect(await queueCounts(c.sqs)).toEqual({});
      expect((await bucketSnapshot(c.s3, bucket))?.size).toBeGreaterThan(0);
    } finally {
      c.close();
    }
  }, 120_000);

  it("pause, resume and run --dry-run take the same flags; status names the pause; a state directory that is not there, or --state-dir without --queues embedded, is a usage error", async () => {
    await backedUp(); // the state directory
    const p = await cli(["pause", "-c", config, "--source", "cams", "--reason", "disk swap", ...queueArgs], {
      cwd: dir,
      env,
    });
    expect(p.code, p.stderr).toBe(0);
    const status = await cli(["status", "-c", config, ...queueArgs], { cwd: dir, env });
    expect(status.stdout, status.stderr).toMatch(/^cams \(paused: disk swap\): \d+ window\(s\) queued/m);
    const r = await cli(["resume", "-c", config, "--source", "cams", ...queueArgs], { cwd: dir, env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("Source cams resumed");

    const missing = await cli(["status", "-c", config, "--queues", "embedded", "--state-dir", "nowhere"], {
      cwd: dir,
      env,
    });
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim()).toBe(
      "--state-dir nowhere: no such directory; give the --state-dir that `run --queues embedded` keeps its queues in",
    );
    const both = await cli(["status", "-c", config, "--embedded", "x", ...queueArgs], { cwd: dir, env });
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/^--queues embedded and --embedded: /);
    // run --dry-run takes the same flags (it queues nothing) and checks them like run does.
    const dry = await cli(["run", "-c", config, "--dry-run", ...queueArgs], { cwd: dir, env });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^Dry run: nothing queued, leased or written\.$/m);
    const stray = await cli(["run", "-c", config, "--dry-run", "--state-dir", state], { cwd: dir, env });
    expect(stray.code).toBe(2);
    expect(stray.stderr).toMatch(/^--state-dir is the state of --queues embedded; add --queues embedded/);
  }, 120_000);
});
