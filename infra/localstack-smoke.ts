/**
 * `npm run smoke:local`: deploys the real stack to LocalStack and waits until archive windows land
 * in its S3. Needs Docker and a LocalStack auth token (LOCALSTACK_AUTH_TOKEN); not run by CI.
 *
 * 1. starts LocalStack in Docker (unless one already answers on localhost:4566);
 * 2. starts the Flussonic simulator on this machine (basic auth), reachable from LocalStack's Lambda
 *    containers as host.docker.internal;
 * 3. stores the simulator's password in LocalStack's Secrets Manager;
 * 4. `cdklocal bootstrap` and `cdklocal deploy` with a config for the simulator (planner every minute);
 * 5. polls the bucket until window objects appear, prints them and exits 0 (1 after the timeout).
 * The LocalStack container is left running for a look around; `docker stop flussonic-backup-localstack`.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import { FlussonicSimulator } from "../simulator/simulator.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8089" },
    "timeout-minutes": { type: "string", default: "10" },
    image: { type: "string", default: process.env.LOCALSTACK_IMAGE ?? "localstack/localstack" },
  },
});
const endpoint = "http://localhost:4566";
const region = "us-east-1";
const bucket = "flussonic-backup-smoke";
const secretName = "flussonic-backup/smoke-sim";
const localstack = { region, endpoint, credentials: { accessKeyId: "test", secretAccessKey: "test" } };

function say(line: string): void {
  process.stdout.write(`smoke: ${line}\n`);
}

async function localstackAnswers(): Promise<boolean> {
  try {
    return (await fetch(`${endpoint}/_localstack/health`)).ok;
  } catch {
    return false;
  }
}

async function startLocalstack(): Promise<void> {
  if (await localstackAnswers()) {
    say(`using the LocalStack that answers on ${endpoint}`);
    return;
  }
  if (!process.env.LOCALSTACK_AUTH_TOKEN) {
    throw new Error(
      "LOCALSTACK_AUTH_TOKEN is not set: LocalStack's images need an auth token (app.localstack.cloud)",
    );
  }
  if (spawnSync("docker", ["version"], { stdio: "ignore" }).status !== 0) {
    throw new Error("docker does not answer: LocalStack runs in Docker");
  }
  say(`starting ${values.image} in Docker`);
  execFileSync(
    "docker",
    [
      "run",
      "-d",
      "--rm",
      "--name",
      "flussonic-backup-localstack",
      "-p",
      "4566:4566",
      "-e",
      "LOCALSTACK_AUTH_TOKEN",
      // The handlers are plain JavaScript: run the arm64 functions on the host's architecture.
      "-e",
      "LAMBDA_IGNORE_ARCHITECTURE=1",
      // Lambda containers reach the simulator on this machine.
      "-e",
      "LAMBDA_DOCKER_FLAGS=--add-host=host.docker.internal:host-gateway",
      "-v",
      "/var/run/docker.sock:/var/run/docker.sock",
      values.image,
    ],
    { stdio: "inherit" },
  );
  for (let i = 0; i < 60 && !(await localstackAnswers()); i++) await sleep(2000);
  if (!(await localstackAnswers())) throw new Error("LocalStack did not come up within 2 minutes");
}

async function storeSecret(password: string): Promise<void> {
  const sm = new SecretsManagerClient(localstack);
  try {
    await sm.send(new CreateSecretCommand({ Name: secretName, SecretString: password }));
  } catch (error) {
    if (!(error instanceof ResourceExistsException)) throw error;
    await sm.send(new PutSecretValueCommand({ SecretId: secretName, SecretString: password }));
  }
}

function cdklocal(args: string[], configFile: string): void {
  // cdklocal points the CDK CLI at localhost:4566 itself.
  const r = spawnSync("cdklocal", [...args, "-c", `config=${configFile}`], { stdio: "inherit" });
  if (r.status !== 0) throw new Error(`cdklocal ${args[0]} failed (exit ${r.status})`);
}

async function windowsInBucket(): Promise<string[]> {
  const s3 = new S3Client({ ...localstack, forcePathStyle: true });
  try {
    const res = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "flussonic/sim/" }));
    return (res.Contents ?? []).map((o) => `${o.Key} (${o.Size} bytes)`);
  } catch {
    return [];
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

const password = randomBytes(12).toString("hex");
const sim = await FlussonicSimulator.start({
  host: "0.0.0.0",
  port: Number(values.port),
  streams: 2,
  days: 1,
  auth: { basic: { username: "backup", password } },
});
try {
  say(`Flussonic simulator on ${sim.url} (basic auth)`);
  await startLocalstack();
  await storeSecret(password);
  const configFile = join(mkdtempSync(join(tmpdir(), "flussonic-backup-smoke-")), "smoke.json");
  writeFileSync(
    configFile,
    JSON.stringify(
      {
        bucket,
        schedule: "rate(1 minute)",
        sources: [
          {
            name: "sim",
            url: `http://host.docker.internal:${values.port}`,
            auth: { type: "basic", username: "backup", passwordSecret: secretName },
            // About an hour of archive: enough to see windows land, quick to copy.
            retentionDays: 0.05,
            maxConcurrentCopies: 2,
          },
        ],
      },
      null,
      2,
    ),
  );
  say(`config ${configFile}`);
  cdklocal(["bootstrap"], configFile);
  cdklocal(["deploy", "--require-approval", "never"], configFile);
  say("deployed; the planner runs every minute (EventBridge rule); waiting for windows in S3");
  const deadline = Date.now() + Number(values["timeout-minutes"]) * 60_000;
  let keys: string[] = [];
  while (Date.now() < deadline) {
    keys = await windowsInBucket();
    if (keys.length > 0) break;
    await sleep(10_000);
  }
  if (keys.length === 0) {
    say(`no window in s3://${bucket}/flussonic/sim/ after ${values["timeout-minutes"]} minutes`);
    say("look at the function logs: awslocal logs tail <log group> (see the stack's resources)");
    process.exitCode = 1;
  } else {
    say(`${keys.length} window object(s) in s3://${bucket}/flussonic/sim/, for example:`);
    for (const k of keys.slice(0, 10)) process.stdout.write(`  ${k}\n`);
  }
} finally {
  await sim.close();
}
