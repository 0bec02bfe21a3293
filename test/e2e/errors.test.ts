/**
 * Failures a user can meet, run as the user runs the program: each prints one or two lines naming
 * what failed and the resource (endpoint URL, bucket, queue, source URL, stream, config file and
 * field) and what to do, exits non-zero, shows no stack unless asked, and leaves the bucket as it was.
 * Refusals the emulator cannot produce (credentials, a policy without s3:CreateBucket, a queue
 * attribute refused) come from an HTTP hop in front of it that answers as AWS does.
 */

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AwsPolicyProxy, type PolicyRule } from "../../dev/kit/aws-policy-proxy.ts";
import { awsClients, bucketSnapshot, cli } from "../../dev/kit/cli-process.ts";
import { type EmulatorProcess, startEmulatorProcess } from "../../dev/kit/emulator-process.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** One or two lines, no stack trace. */
function expectShort(text: string): void {
  const lines = text.trimEnd().split("\n");
  expect(lines.length, text).toBeLessThanOrEqual(2);
  expect(text).not.toMatch(/^\s+at /m);
}

describe("errors a user can meet: one or two lines naming the resource, exit non-zero, bucket unchanged", () => {
  let dir: string;
  let sim: FlussonicSimulator;
  let refusing: FlussonicSimulator;
  let emulator: EmulatorProcess;
  let aws: ReturnType<typeof awsClients>;
  let before: Map<string, string> | undefined;
  const proxies: AwsPolicyProxy[] = [];
  const bucket = "err-backup";

  const writeConfig = (name: string, source: Record<string, unknown>, b = bucket) => {
    const file = join(dir, name);
    writeFileSync(
      file,
      JSON.stringify({ bucket: b, sources: [{ name: "cams", url: sim.url, streams: ["cam1"], ...source }] }),
    );
    return file;
  };
  const proxied = async (rule: PolicyRule) => {
    const p = await AwsPolicyProxy.start(emulator.url, rule);
    proxies.push(p);
    return { ...emulator.env, AWS_ENDPOINT_URL_S3: p.url, AWS_ENDPOINT_URL_SQS: p.url };
  };
  const expectBucketUnchanged = async () => {
    const now = await bucketSnapshot(aws.s3, bucket);
    // A `run` of a concurrent test in this file starts with the S3 feature probe
    // (local/s3-features.ts), which writes `.flussonic-backup-probe` on an endpoint that ignores
    // If-Match (the emulator does) and deletes it at once: a transient object, not a change.
    now?.delete("flussonic/.flussonic-backup-probe");
    expect(now).toEqual(before);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fb-cli-errors-"));
    [sim, refusing, emulator] = await Promise.all([
      FlussonicSimulator.start({
        streams: 1,
        days: 0.02,
        bitrateBps: 8000,
        auth: { basic: { username: "backup", password: "right" } },
      }),
      FlussonicSimulator.start({
        streams: 1,
        days: 0.02,
        bitrateBps: 8000,
        faults: { target: "all", errorRate: 1, errorStatus: 403 },
      }),
      startEmulatorProcess({ dir: join(dir, "emulator") }),
    ]);
    aws = awsClients(emulator.url);
    // A backup that exists: every failure below must leave it as it is.
    await aws.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await aws.s3.send(new PutObjectCommand({ Bucket: bucket, Key: "flussonic/existing.json", Body: "{}" }));
    before = await bucketSnapshot(aws.s3, bucket);
  });

  afterAll(async () => {
    for (const p of proxies) await p.close();
    aws?.close();
    await emulator?.stop();
    await Promise.all([sim?.close(), refusing?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  const ok = { type: "basic", username: "backup", passwordEnv: "CAMS_PASSWORD" };

  it.concurrent("S3/SQS endpoint unreachable: names the endpoint URL and the variables; stack only with --verbose", async () => {
    const port = await closedPort();
    const env = {
      ...emulator.env,
      AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`,
      AWS_ENDPOINT_URL_SQS: `http://127.0.0.1:${port}`,
      CAMS_PASSWORD: "right",
    };
    const file = writeConfig("unreachable.json", { auth: ok });
    const [run, verbose] = await Promise.all([
      cli(["run", "-c", file, "--once"], { cwd: dir, env }),
      cli(["status", "-c", file, "--verbose"], { cwd: dir, env }),
    ]);
    for (const r of [run, verbose]) {
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(
        `Cannot reach the S3/SQS endpoint http://127.0.0.1:${port}: connection refused (ECONNREFUSED).`,
      );
      expect(r.stderr).toContain("Check AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL_SQS");
    }
    expectShort(run.stderr);
    // The stack only when asked for.
    expect(verbose.stderr).toMatch(/^\s+at /m);
    await expectBucketUnchanged();
  });

  it.concurrent("endpoint host not found: names the endpoint", async () => {
    const env = {
      ...emulator.env,
      AWS_ENDPOINT_URL_S3: "http://s3.invalid:4566",
      AWS_ENDPOINT_URL_SQS: "http://s3.invalid:4566",
    };
    const file = writeConfig("notfound.json", { auth: ok });
    const r = await cli(["pause", "-c", file, "--source", "cams"], { cwd: dir, env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /Cannot reach the S3\/SQS endpoint http:\/\/s3\.invalid:4566: host (not found|name lookup failed)/,
    );
    expectShort(r.stderr);
    await expectBucketUnchanged();
  });

  it.concurrent("credentials refused (InvalidAccessKeyId): names the bucket, the endpoint and the credential variables", async () => {
    const env = {
      ...(await proxied(() => ({
        status: 403,
        code: "InvalidAccessKeyId",
        message: "The AWS Access Key Id you provided does not exist in our records.",
      }))),
      CAMS_PASSWORD: "right",
    };
    const file = writeConfig("denied.json", { auth: ok });
    const [run, verify] = await Promise.all([
      cli(["run", "-c", file, "--once"], { cwd: dir, env }),
      cli(["verify", "-c", file], { cwd: dir, env }),
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /the S3 endpoint http:\/\/127\.0\.0\.1:\d+ refused access to bucket "err-backup" \(HTTP 403\)\./,
    );
    expect(run.stderr).toContain("AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)");
    expectShort(run.stderr);
    expect(verify.code).toBe(1);
    expect(verify.stderr).toContain('refused access to bucket "err-backup" (InvalidAccessKeyId, HTTP 403)');
    expectShort(verify.stderr);
    await expectBucketUnchanged();
  });

  it.concurrent("bucket missing and not creatable (no s3:CreateBucket): says so, names the bucket and the config field", async () => {
    const env = {
      ...(await proxied(({ method, path }) =>
        method === "PUT" && /^\/[^/]+\/?$/.test(path)
          ? { status: 403, code: "AccessDenied", message: "Access Denied" }
          : undefined,
      )),
      CAMS_PASSWORD: "right",
    };
    const file = writeConfig("nobucket.json", { auth: ok }, "no-such-backup");
    const r = await cli(["run", "-c", file, "--once"], { cwd: dir, env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /bucket "no-such-backup" does not exist at the S3 endpoint http:\/\/127\.0\.0\.1:\d+ and cannot be created \(AccessDenied, HTTP 403\)/,
    );
    expect(r.stderr).toContain(`correct "bucket" in ${file}`);
    expectShort(r.stderr);
    expect(await bucketSnapshot(aws.s3, "no-such-backup")).toBeUndefined();
    // Operator commands on a bucket that is not there.
    const p = await cli(["pause", "-c", file, "--source", "cams"], { cwd: dir, env: { ...emulator.env } });
    expect(p.code).toBe(1);
    expect(p.stderr).toMatch(/bucket "no-such-backup" does not exist at the S3\/?\S* endpoint/);
    expect(p.stderr).toContain("run `flussonic-backup run` first");
    expectShort(p.stderr);
    expect(await bucketSnapshot(aws.s3, "no-such-backup")).toBeUndefined();
    await expectBucketUnchanged();
  });

  it.concurrent("queue attribute refused (InvalidAttributeValue): names the queues and the option", async () => {
    const env = {
      ...(await proxied(({ sqsAction }) =>
        sqsAction === "CreateQueue"
          ? {
              status: 400,
              code: "InvalidAttributeValue",
              message:
                "Invalid value for the parameter VisibilityTimeout. Reason: Must be between 0 and 43200.",
            }
          : undefined,
      )),
      CAMS_PASSWORD: "right",
    };
    const file = writeConfig("queue.json", { auth: ok });
    const r = await cli(["run", "-c", file, "--once"], { cwd: dir, env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /the SQS endpoint http:\/\/127\.0\.0\.1:\d+ refused an attribute of the copy queues flussonic-backup-cams \(and -dlq\): Invalid value for the parameter VisibilityTimeout/,
    );
    expect(r.stderr).toContain("Check --copy-timeout");
    expectShort(r.stderr);
    await expectBucketUnchanged();
  });

  it.concurrent("source unreachable, 401, 403, unknown stream: each names the source URL, the config field and what to do", async () => {
    const port = await closedPort();
    const file = join(dir, "sources.json");
    const base = { streams: ["cam1"], auth: ok };
    writeFileSync(
      file,
      JSON.stringify({
        bucket,
        sources: [
          { ...base, name: "down", url: `http://127.0.0.1:${port}` },
          { ...base, name: "login", url: sim.url, auth: { ...ok, passwordEnv: "LOGIN_PASSWORD" } },
          { name: "refusing", url: refusing.url, streams: ["cam1"] },
          { ...base, name: "nostream", url: sim.url, streams: ["no-such-cam"] },
        ],
      }),
    );
    const env = { ...emulator.env, CAMS_PASSWORD: "right", LOGIN_PASSWORD: "wrong" };
    const [r, status] = await Promise.all([
      cli(["run", "-c", file, "--once"], { cwd: dir, env }),
      cli(["status", "-c", file], { cwd: dir, env }),
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^Copied 0 window\(s\)/m);
    expect(r.stdout).toContain("Planning errors:");
    expect(r.stdout).toContain(
      `source down (http://127.0.0.1:${port}) is unreachable: stream "cam1": connection refused (ECONNREFUSED); check "sources[0].url" in ${file} and that Flussonic is running and reachable from here.`,
    );
    expect(r.stdout).toMatch(
      /source login \(http:\/\/127\.0\.0\.1:\d+\) refused the login: .*HTTP 401.*; check "sources\[1\]\.auth" in \S+sources\.json and the secret in LOGIN_PASSWORD\./,
    );
    expect(r.stdout).toMatch(
      /source refusing \(http:\/\/127\.0\.0\.1:\d+\) refused the login: .*HTTP 403.*; check "sources\[2\]\.auth" in \S+sources\.json\./,
    );
    expect(r.stdout).toMatch(
      /source nostream \(http:\/\/127\.0\.0\.1:\d+\) has no stream "no-such-cam" .*; check "sources\[3\]\.streams" in \S+sources\.json against the stream names in Flussonic\./,
    );
    expect(r.stdout + r.stderr).not.toContain("wrong");
    // status words a source's refusal as run does: the source URL, the config field, the secret.
    expect(status.code, status.stderr).toBe(1);
    expect(status.stdout).toMatch(
      /^ {2}login cam1: archive unknown: source login \(http:\/\/127\.0\.0\.1:\d+\) refused the login: .*HTTP 401.*; check "sources\[1\]\.auth" in \S+sources\.json and the secret in LOGIN_PASSWORD\.$/m,
    );
    expect(status.stdout).toMatch(
      /^ {2}refusing cam1: archive unknown: source refusing \(http:\/\/127\.0\.0\.1:\d+\) refused the login: .*HTTP 403.*; check "sources\[2\]\.auth" in \S+sources\.json\.$/m,
    );
    expect(status.stdout).toContain(`source down (http://127.0.0.1:${port}) is unreachable: `);
    expect(status.stdout + status.stderr).not.toContain("wrong");
    await expectBucketUnchanged();
  });

  it.concurrent("config file that is not JSON, and bad numeric options: one line naming the file or the option, exit 2", async () => {
    const bad = join(dir, "bad.json");
    writeFileSync(bad, '{ "bucket": "x", sources: [ }');
    const env = { ...emulator.env };
    const results = await Promise.all([
      cli(["run", "-c", bad, "--once"], { cwd: dir, env }),
      cli(["status", "-c", bad], { cwd: dir, env }),
      cli(["run", "-c", bad, "--once", "--copy-timeout", "abc"], { cwd: dir, env }),
      cli(["status", "-c", bad, "--copy-timeout", "0"], { cwd: dir, env }),
      cli(["demo", "--streams", "2x"], { cwd: dir, env }),
      cli(["demo", "--hours", "lots"], { cwd: dir, env }),
    ]);
    for (const r of results) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    }
    expect(results[0]!.stderr).toMatch(new RegExp(`^${bad.replace(/[.]/g, "\\.")}:1:\\d+: not valid JSON`));
    expect(results[1]!.stderr).toMatch(/bad\.json:1:\d+: not valid JSON/);
    expect(results[2]!.stderr).toBe(
      '--copy-timeout: expected whole seconds between 1 and 43170, got "abc"\n',
    );
    expect(results[3]!.stderr).toBe('--copy-timeout: expected whole seconds between 1 and 43170, got "0"\n');
    expect(results[4]!.stderr).toBe(
      '--streams: expected a whole number of streams between 1 and 50, got "2x"\n',
    );
    expect(results[5]!.stderr).toBe('--hours: expected hours between 0.1 and 48, got "lots"\n');
    await expectBucketUnchanged();
  });
});
