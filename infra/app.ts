#!/usr/bin/env node
/**
 * The CDK app: `cdk synth|deploy -c config=<file>` (default config/example.jsonc). The stack is
 * built from the same config file as the local runtime; cdk-nag's AwsSolutions checks run on it.
 * The S3 expiry of every prefix is recorded next to the config (`<config>.lifecycle.json`, or
 * `-c lifecycleRecord=<file>`); a later synth that would shorten one stops unless
 * `-c allowShorterRetention=<prefix,...>` confirms it (infra/lifecycle-record.ts).
 */
import { App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { ConfigError, loadConfigFile } from "../functions/config/config.ts";
import { BackupStack } from "./backup-stack.ts";
import {
  lifecycleRecordFile,
  readLifecycleRecord,
  readRecordedObjectLock,
  writeLifecycleRecord,
} from "./lifecycle-record.ts";

const app = new App();
const configFile = String(app.node.tryGetContext("config") ?? "config/example.jsonc");
const stackName = String(app.node.tryGetContext("stackName") ?? "flussonic-backup");

const recordFile = String(app.node.tryGetContext("lifecycleRecord") ?? lifecycleRecordFile(configFile));
const allowShorter = String(app.node.tryGetContext("allowShorterRetention") ?? "")
  .split(",")
  .map((p) => p.trim())
  .filter(Boolean);

let record: (() => void) | undefined;
try {
  const config = loadConfigFile(configFile);
  const previous = readLifecycleRecord(recordFile, config.bucket);
  const stack = new BackupStack(app, "FlussonicBackup", {
    stackName,
    config,
    configFile,
    description: `flussonic-backup: Flussonic DVR archives into s3://${config.bucket}/${config.prefix}`,
    // With credentials the CLI sets these and the stack is bound to that account and region;
    // without (a fresh clone, CI) it stays environment-agnostic and still synthesizes.
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
    previousExpiries: previous && { expirationDays: previous, recordFile, allowShorter },
    // A record of this bucket means it was synthesized (and likely deployed) before.
    existingBucket: previous && { objectLock: readRecordedObjectLock(recordFile, config.bucket) ?? null },
  });
  record = () =>
    writeLifecycleRecord(
      recordFile,
      config.bucket,
      stack.backupBucket.expirationDays,
      stack.backupBucket.objectLock,
    );
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(
      `Cannot build the stack from ${configFile}:\n${error.problems.map((p) => `  ${p}`).join("\n")}\n`,
    );
    process.exit(1);
  }
  throw error;
}
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
app.synth();
// Recorded once the stack is synthesized: the next synth compares its expiries with these.
record?.();
