import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App } from "aws-cdk-lib";
import { Annotations, Match, Template } from "aws-cdk-lib/assertions";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { AwsSolutionsChecks } from "cdk-nag";
import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../../functions/config/config.ts";
import type { ExistingBucket } from "../../infra/backup-bucket.ts";
import { BackupStack } from "../../infra/backup-stack.ts";

const basic = (name: string) => ({
  type: "basic",
  username: "backup",
  passwordEnv: `${name.toUpperCase()}_PASSWORD`,
  passwordSecret: `flussonic-backup/${name}`,
});

const baseConfig = {
  bucket: "dvr-backup-test",
  prefix: "flussonic/",
  schedule: "rate(5 minutes)",
  sources: [
    {
      name: "s1",
      url: "https://s1.example",
      auth: basic("s1"),
      retentionDays: 7.5,
      maxConcurrentCopies: 3,
    },
    {
      name: "s2",
      url: "https://s2.example",
      auth: {
        type: "bearer",
        tokenSecret: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:s2-token-AbCdEf",
      },
      streams: ["cam1", { name: "live/cam2", retentionDays: 3 }, { name: "cam3", retentionDays: 30 }],
      retentionDays: 10,
      maxConcurrentCopies: 10,
    },
  ],
};

type RawConfig = Record<string, unknown> & { sources: Record<string, unknown>[] };

function stackFor(raw: RawConfig, existingBucket?: ExistingBucket) {
  const app = new App();
  const stack = new BackupStack(app, "Test", {
    config: parseConfig(JSON.stringify(raw), "test.json"),
    configFile: "test.json",
    functionCode: "stub",
    existingBucket,
  });
  return stack;
}

function templateFor(raw: RawConfig = baseConfig) {
  return Template.fromStack(stackFor(raw));
}

function byType(t: Template, type: string) {
  return Object.values(t.findResources(type)) as { Properties: Record<string, unknown> }[];
}

function lifecycle(t: Template) {
  const bucket = byType(t, "AWS::S3::Bucket").find((b) => b.Properties.BucketName === "dvr-backup-test")!;
  return (bucket.Properties.LifecycleConfiguration as { Rules: Record<string, unknown>[] }).Rules;
}

function expirations(t: Template): Record<string, number> {
  return Object.fromEntries(
    lifecycle(t)
      .filter((r) => r.ExpirationInDays !== undefined)
      .map((r) => [r.Prefix as string, r.ExpirationInDays as number]),
  );
}

describe("the stack from the config: queues and copier mappings", () => {
  const t = templateFor();

  it("gives every source a copy queue and a DLQ named like the local runtime's, with redrive at 6", () => {
    t.resourceCountIs("AWS::SQS::Queue", 4);
    for (const s of ["s1", "s2"]) {
      t.hasResourceProperties("AWS::SQS::Queue", {
        QueueName: `flussonic-backup-${s}-dlq`,
        SqsManagedSseEnabled: true,
      });
      t.hasResourceProperties("AWS::SQS::Queue", {
        QueueName: `flussonic-backup-${s}`,
        SqsManagedSseEnabled: true,
        RedrivePolicy: { maxReceiveCount: 6, deadLetterTargetArn: Match.anyValue() },
      });
    }
  });

  it("sets the visibility timeout to 6x the copier's 900 s timeout", () => {
    t.hasResourceProperties("AWS::Lambda::Function", {
      Description: Match.stringLikeRegexp("copier"),
      Timeout: 900,
    });
    for (const q of byType(t, "AWS::SQS::Queue").filter(
      (q) => !String(q.Properties.QueueName).endsWith("-dlq"),
    )) {
      expect(q.Properties.VisibilityTimeout).toBe(5400);
    }
  });

  it("feeds the copier from each queue one window at a time, capped at the source's maxConcurrentCopies", () => {
    const mappings = byType(t, "AWS::Lambda::EventSourceMapping");
    expect(mappings).toHaveLength(2);
    for (const m of mappings) {
      expect(m.Properties).toMatchObject({
        BatchSize: 1,
        FunctionResponseTypes: ["ReportBatchItemFailures"],
        Enabled: true,
      });
    }
    expect(
      mappings
        .map((m) => (m.Properties.ScalingConfig as { MaximumConcurrency: number }).MaximumConcurrency)
        .sort((a, b) => a - b),
    ).toEqual([3, 10]);
  });

  it("caps a source of maxConcurrentCopies 1 with a FIFO queue (one message group), as the mapping cannot go below 2", () => {
    const serial = templateFor({
      ...baseConfig,
      sources: [{ ...baseConfig.sources[0]!, maxConcurrentCopies: 1 }],
    });
    serial.hasResourceProperties("AWS::SQS::Queue", {
      QueueName: "flussonic-backup-s1.fifo",
      FifoQueue: true,
      ContentBasedDeduplication: true,
      VisibilityTimeout: 5400,
    });
    serial.hasResourceProperties("AWS::SQS::Queue", {
      QueueName: "flussonic-backup-s1-dlq.fifo",
      FifoQueue: true,
    });
    serial.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      BatchSize: 1,
      ScalingConfig: { MaximumConcurrency: 2 },
    });
  });

  it("gives a central source a FIFO queue (its servers' message groups), a server source a standard one", () => {
    const fleet = templateFor({
      ...baseConfig,
      sources: [
        baseConfig.sources[0]!,
        {
          name: "fleet",
          kind: "central",
          url: "https://central.example",
          auth: { type: "bearer", tokenSecret: "flussonic-backup/fleet" },
          retentionDays: 7,
          maxConcurrentCopies: 20,
          eachServer: { maxConcurrentCopies: 2 },
        },
      ],
    });
    fleet.hasResourceProperties("AWS::SQS::Queue", {
      QueueName: "flussonic-backup-fleet.fifo",
      FifoQueue: true,
      ContentBasedDeduplication: true,
      VisibilityTimeout: 5400,
    });
    fleet.hasResourceProperties("AWS::SQS::Queue", {
      QueueName: "flussonic-backup-fleet-dlq.fifo",
      FifoQueue: true,
    });
    // The mapping runs the fleet's cap; each server's is the groups'.
    fleet.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      BatchSize: 1,
      ScalingConfig: { MaximumConcurrency: 20 },
    });
    const s1 = byType(fleet, "AWS::SQS::Queue").filter((q) =>
      String(q.Properties.QueueName).startsWith("flussonic-backup-s1"),
    );
    expect(s1.map((q) => q.Properties.QueueName).sort()).toEqual([
      "flussonic-backup-s1",
      "flussonic-backup-s1-dlq",
    ]);
    for (const q of s1) expect(q.Properties.FifoQueue).toBeUndefined();
  });

  it("disables the mapping of a paused source (its queued windows wait)", () => {
    const paused = templateFor({ ...baseConfig, sources: [{ ...baseConfig.sources[0]!, paused: true }] });
    paused.hasResourceProperties("AWS::Lambda::EventSourceMapping", { Enabled: false });
  });
});

describe("the stack from the config: functions and schedule", () => {
  const t = templateFor();

  it("runs the planner and a copier per source on nodejs24.x, arm64, with the chosen memory and timeouts", () => {
    const fns = byType(t, "AWS::Lambda::Function");
    expect(fns).toHaveLength(3);
    for (const f of fns)
      expect(f.Properties).toMatchObject({ Runtime: "nodejs24.x", Architectures: ["arm64"] });
    t.hasResourceProperties("AWS::Lambda::Function", {
      Description: Match.stringLikeRegexp("planner"),
      MemorySize: 256,
      Timeout: 300,
    });
    t.hasResourceProperties("AWS::Lambda::Function", {
      Description: Match.stringLikeRegexp("copier"),
      MemorySize: 256,
      Timeout: 900,
    });
  });

  it("runs the planner on an EventBridge rule with the config's schedule, without retries", () => {
    t.hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(5 minutes)",
      Targets: [Match.objectLike({ RetryPolicy: { MaximumRetryAttempts: 0 } })],
    });
    const hourly = templateFor({ ...baseConfig, schedule: "rate(1 hour)" });
    hourly.hasResourceProperties("AWS::Events::Rule", { ScheduleExpression: "rate(1 hour)" });
    hourly.hasResourceProperties("AWS::Lambda::Function", {
      Description: Match.stringLikeRegexp("planner"),
      Timeout: 900,
    });
  });

  it("puts only the config (secret names, no secret) and the queue URLs in the environment", () => {
    for (const f of byType(t, "AWS::Lambda::Function")) {
      const vars = (f.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(Object.keys(vars).sort()).toEqual(["BACKUP_CONFIG", "NODE_OPTIONS", "QUEUE_URLS"]);
      const config = JSON.parse(vars.BACKUP_CONFIG as string);
      // The planner has every source; a copier only its own.
      const s2Copier = String(f.Properties.Description).includes("copier of source s2");
      expect(config.sources[0].auth).toEqual(s2Copier ? baseConfig.sources[1]!.auth : basic("s1"));
      expect(config.deployment).toBeUndefined();
    }
  });

  it("runs the copiers with a young generation of 1 MiB semi-spaces, the planner without", () => {
    const functions = byType(t, "AWS::Lambda::Function");
    const options = (f: (typeof functions)[number]) =>
      (f.Properties.Environment as { Variables: Record<string, string> }).Variables.NODE_OPTIONS;
    const copiers = functions.filter((f) => String(f.Properties.Description).includes("copier of source"));
    expect(copiers.length).toBe(2);
    for (const f of copiers) expect(options(f)).toBe("--enable-source-maps --max-semi-space-size=1");
    const planner = functions.find((f) => String(f.Properties.Description).includes("planner"))!;
    expect(options(planner)).toBe("--enable-source-maps");
  });

  it("refuses to deploy a source whose credentials are only in an environment variable, naming file and field", () => {
    const envOnly = {
      ...baseConfig,
      sources: [{ ...baseConfig.sources[0]!, auth: { type: "basic", username: "u", passwordEnv: "P" } }],
    };
    expect(() => stackFor(envOnly)).toThrow(ConfigError);
    expect(() => stackFor(envOnly)).toThrow(
      /^test\.json: sources\[0\]\.auth\.passwordSecret: is required to deploy to AWS/,
    );
  });
});

describe("the stack from the config: bucket", () => {
  const t = templateFor();

  it("blocks public access, refuses plain HTTP, encrypts with S3-managed keys, keeps versions and outlives the stack", () => {
    t.hasResource("AWS::S3::Bucket", {
      Properties: {
        BucketName: "dvr-backup-test",
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }],
        },
        VersioningConfiguration: { Status: "Enabled" },
        LoggingConfiguration: Match.objectLike({ LogFilePrefix: "dvr-backup-test/" }),
      },
      DeletionPolicy: "Retain",
    });
    t.hasResourceProperties("AWS::S3::BucketPolicy", {
      Bucket: { Ref: Match.stringLikeRegexp("BackupBucket") },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: "Deny",
            Action: "s3:*",
            Condition: { Bool: { "aws:SecureTransport": "false" } },
          }),
        ]),
      },
    });
  });

  it("uses the configured KMS key (bucket key on) and lets the functions use it", () => {
    const kmsKeyArn = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555";
    const k = templateFor({ ...baseConfig, deployment: { kmsKeyArn } });
    k.hasResourceProperties("AWS::S3::Bucket", {
      BucketName: "dvr-backup-test",
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            BucketKeyEnabled: true,
            ServerSideEncryptionByDefault: { SSEAlgorithm: "aws:kms", KMSMasterKeyID: kmsKeyArn },
          },
        ],
      },
    });
    const kmsGrants = byType(k, "AWS::IAM::Policy").filter((p) =>
      JSON.stringify(p.Properties.PolicyDocument).includes(
        `"kms:Decrypt","kms:GenerateDataKey"],"Condition":{"StringEquals":{"kms:ViaService":`,
      ),
    );
    // The planner and the copier of each source.
    expect(kmsGrants).toHaveLength(3);
    for (const p of kmsGrants) expect(JSON.stringify(p)).toContain(`"Resource":"${kmsKeyArn}"`);
  });

  it("expires windows, catalogs and fragment indexes per source and per stream after ceil(retentionDays) + 1 days", () => {
    expect(expirations(t)).toEqual({
      // s1: streams "all", 7.5 days -> 9
      "flussonic/s1/": 9,
      "flussonic/.backup/catalog/s1/": 9,
      "flussonic/.backup/index/s1/": 9,
      // s2: the source rule is the longest retention of the source (cam3: 30 -> 31), so that no
      // stream loses days; streams with shorter retention get their own rules (encoded names).
      "flussonic/s2/": 31,
      "flussonic/s2/cam1/": 11,
      "flussonic/s2/live%2Fcam2/": 4,
      "flussonic/.backup/catalog/s2/": 31,
      "flussonic/.backup/catalog/s2/cam1/": 11,
      "flussonic/.backup/catalog/s2/live%2Fcam2/": 4,
      "flussonic/.backup/index/s2/": 31,
      "flussonic/.backup/index/s2/cam1/": 11,
      "flussonic/.backup/index/s2/live%2Fcam2/": 4,
      // Decoded previews (a cache): with the longest-kept windows of any source.
      "flussonic/.backup/previews/": 31,
    });
  });

  it("keeps old versions 30 days, then removes them, leftover delete markers and incomplete multipart uploads", () => {
    expect(lifecycle(t).find((r) => r.Id === "housekeeping")).toEqual({
      Id: "housekeeping",
      Prefix: "flussonic/",
      Status: "Enabled",
      NoncurrentVersionExpiration: { NoncurrentDays: 30 },
      ExpiredObjectDeleteMarker: true,
      AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
    });
    // Bookkeeping, rewritten every run and rebuildable from the windows, keeps old versions 3 days.
    expect(lifecycle(t).find((r) => r.Id === "bookkeeping-versions")).toEqual({
      Id: "bookkeeping-versions",
      Prefix: "flussonic/.backup/",
      Status: "Enabled",
      NoncurrentVersionExpiration: { NoncurrentDays: 3 },
    });
    // The manifest snapshots (a cache rewritten every run) keep old versions a day.
    expect(lifecycle(t).find((r) => r.Id === "manifest-snapshot-versions")).toEqual({
      Id: "manifest-snapshot-versions",
      Prefix: "flussonic/.backup/manifest-snapshots/",
      Status: "Enabled",
      NoncurrentVersionExpiration: { NoncurrentDays: 1 },
    });
  });

  it("turns on Object Lock and a storage class transition when the deployment options ask", () => {
    const locked = templateFor({
      ...baseConfig,
      deployment: {
        objectLock: { mode: "COMPLIANCE", days: 10 },
        storageClassTransition: { storageClass: "GLACIER_IR", afterDays: 8 },
      },
    });
    locked.hasResourceProperties("AWS::S3::Bucket", {
      BucketName: "dvr-backup-test",
      ObjectLockEnabled: true,
      ObjectLockConfiguration: {
        ObjectLockEnabled: "Enabled",
        Rule: { DefaultRetention: { Mode: "COMPLIANCE", Days: 10 } },
      },
    });
    const transitions = Object.fromEntries(
      lifecycle(locked).map((r) => [
        r.Prefix,
        (r.Transitions as { StorageClass: string; TransitionInDays: number }[] | undefined) ?? [],
      ]),
    );
    // Windows that live longer than 8 days move; those that expire first, and catalogs, stay.
    expect(transitions["flussonic/s1/"]).toEqual([{ StorageClass: "GLACIER_IR", TransitionInDays: 8 }]);
    expect(transitions["flussonic/s2/cam1/"]).toEqual([{ StorageClass: "GLACIER_IR", TransitionInDays: 8 }]);
    expect(transitions["flussonic/s2/live%2Fcam2/"]).toEqual([]);
    expect(transitions["flussonic/.backup/catalog/s1/"]).toEqual([]);
  });
});

describe("the stack from the config: windows that cannot be replaced", () => {
  const bucketOf = (tt: Template) =>
    byType(tt, "AWS::S3::Bucket").find((b) => b.Properties.BucketName === "dvr-backup-test")!.Properties;

  it("gives a new bucket GOVERNANCE Object Lock, retained as long as the shortest stream retention", () => {
    // baseConfig: s1 7.5 days; s2 10 days with cam1 10, live/cam2 3, cam3 30: the shortest is 3.
    expect(bucketOf(templateFor())).toMatchObject({
      ObjectLockEnabled: true,
      ObjectLockConfiguration: {
        ObjectLockEnabled: "Enabled",
        Rule: { DefaultRetention: { Mode: "GOVERNANCE", Days: 3 } },
      },
      VersioningConfiguration: { Status: "Enabled" },
    });
    const s = stackFor(baseConfig);
    expect(s.backupBucket.objectLock).toEqual({ mode: "GOVERNANCE", days: 3 });
  });

  it("leaves a bucket deployed without Object Lock as it is (CloudFormation would replace it), with a warning", () => {
    const existing = stackFor(baseConfig, { objectLock: null });
    const bucket = bucketOf(Template.fromStack(existing));
    expect(bucket.ObjectLockEnabled).toBeUndefined();
    expect(bucket.ObjectLockConfiguration).toBeUndefined();
    const warnings = Annotations.fromStack(existing).findWarning("*", Match.stringLikeRegexp("Object Lock"));
    expect(warnings.length).toBe(1);
    // One deployed with it keeps it; its retention follows the streams.
    const locked = stackFor(baseConfig, { objectLock: { mode: "GOVERNANCE", days: 9 } });
    expect(bucketOf(Template.fromStack(locked)).ObjectLockConfiguration).toEqual({
      ObjectLockEnabled: "Enabled",
      Rule: { DefaultRetention: { Mode: "GOVERNANCE", Days: 3 } },
    });
  });

  it('turns Object Lock off with mode "NONE" and takes the configured days', () => {
    const off = bucketOf(templateFor({ ...baseConfig, deployment: { objectLock: { mode: "NONE" } } }));
    expect(off.ObjectLockEnabled).toBeUndefined();
    const days = bucketOf(
      templateFor({ ...baseConfig, deployment: { objectLock: { mode: "GOVERNANCE", days: 20 } } }),
    );
    expect((days.ObjectLockConfiguration as { Rule: unknown }).Rule).toEqual({
      DefaultRetention: { Mode: "GOVERNANCE", Days: 20 },
    });
  });

  it("gives each source its own copier, whose role writes only that source's windows and records", () => {
    const tt = templateFor();
    const copiers = byType(tt, "AWS::Lambda::Function").filter((f) =>
      String(f.Properties.Description).includes("copier"),
    );
    expect(copiers.map((f) => f.Properties.Description)).toEqual([
      expect.stringContaining("copier of source s1"),
      expect.stringContaining("copier of source s2"),
    ]);
    for (const [name, other] of [
      ["s1", "s2"],
      ["s2", "s1"],
    ]) {
      const policies = Object.entries(tt.findResources("AWS::IAM::Policy"))
        .filter(([id]) => id.startsWith(`Copier${name}Role`))
        .map(([, p]) => JSON.stringify(p));
      expect(policies).toHaveLength(1);
      expect(policies[0]).toContain(`/flussonic/${name}/*`);
      expect(policies[0]).toContain(`/flussonic/.backup/records/${name}/*`);
      expect(policies[0]).not.toContain(`/flussonic/${other}/`);
      expect(policies[0]).not.toContain(`/records/${other}/`);
      expect(policies[0]).not.toContain(`Queues${other}`);
    }
  });
});

describe("the stack from the config: least privilege", () => {
  const t = templateFor();
  // The planner's policy, or the copiers' (one per source) together.
  const policy = (fn: "Planner" | "Copier") =>
    JSON.stringify(
      Object.entries(t.findResources("AWS::IAM::Policy")).filter(([id]) =>
        new RegExp(`^${fn}(s\\d)?Role`).test(id),
      ),
    );

  it("lets the planner touch only the bookkeeping under .backup/ and send to the copy queues", () => {
    const p = policy("Planner");
    expect(p).toContain('"Action":"s3:DeleteObject"');
    for (const part of ["manifests", "catalog", "index", "records", "control"]) {
      expect(p).toContain(`/flussonic/.backup/${part}/*`);
    }
    expect(p).not.toContain("/flussonic/.backup/*");
    expect(p).not.toContain("/flussonic/s1/*");
    expect(p).not.toContain("sqs:ReceiveMessage");
    expect(p.match(/sqs:SendMessage/g)).toHaveLength(2);
  });

  it("lets the copier write only its sources' windows and records, and never delete", () => {
    const p = policy("Copier");
    for (const prefix of [
      "/flussonic/s1/*",
      "/flussonic/s2/*",
      "/flussonic/.backup/records/s1/*",
      "/flussonic/.backup/records/s2/*",
    ]) {
      expect(p).toContain(prefix);
    }
    expect(p).not.toContain("/flussonic/.backup/*");
    expect(p).not.toContain("s3:DeleteObject");
    expect(p).toContain("sqs:ReceiveMessage");
  });

  it("lets each function read exactly the secrets the config names", () => {
    for (const fn of ["Planner", "Copier"] as const) {
      const p = policy(fn);
      expect(p.match(/secretsmanager:GetSecretValue/g)).toHaveLength(2);
      expect(p).toContain(":secret:flussonic-backup/s1-??????");
      expect(p).toContain("arn:aws:secretsmanager:eu-west-1:123456789012:secret:s2-token-AbCdEf");
    }
  });

  it("gives the functions no AWS managed policy", () => {
    for (const role of byType(t, "AWS::IAM::Role")) expect(role.Properties.ManagedPolicyArns).toBeUndefined();
  });
});

describe("the stack from the config: observability", () => {
  it("alarms per source on DLQ depth, oldest queued window and backup lag, and on failing functions, into one SNS topic", () => {
    const t = templateFor({
      ...baseConfig,
      deployment: { alarmEmail: "ops@example.com", lagAlarmSeconds: 1800 },
    });
    const alarms = byType(t, "AWS::CloudWatch::Alarm").map((a) => a.Properties);
    expect(alarms.map((a) => a.AlarmName).sort()).toEqual([
      "flussonic-backup-copier-errors",
      "flussonic-backup-planner-errors",
      "flussonic-backup-s1-dead-letters",
      "flussonic-backup-s1-lag",
      "flussonic-backup-s1-margin",
      "flussonic-backup-s1-oldest-window",
      "flussonic-backup-s1-planning-errors",
      "flussonic-backup-s1-windows-gone",
      "flussonic-backup-s2-dead-letters",
      "flussonic-backup-s2-lag",
      "flussonic-backup-s2-margin",
      "flussonic-backup-s2-oldest-window",
      "flussonic-backup-s2-planning-errors",
      "flussonic-backup-s2-windows-gone",
    ]);
    const named = (n: string) => alarms.find((a) => a.AlarmName === n)!;
    expect(named("flussonic-backup-s1-dead-letters")).toMatchObject({
      MetricName: "ApproximateNumberOfMessagesVisible",
      Threshold: 1,
      ComparisonOperator: "GreaterThanOrEqualToThreshold",
    });
    expect(named("flussonic-backup-s1-oldest-window")).toMatchObject({
      MetricName: "ApproximateAgeOfOldestMessage",
      Threshold: 3600,
    });
    expect(named("flussonic-backup-s1-lag")).toMatchObject({
      Namespace: "FlussonicBackup",
      MetricName: "BackupLagSeconds",
      Dimensions: [
        { Name: "service", Value: "planner" },
        { Name: "source", Value: "s1" },
      ],
      Threshold: 1800,
      TreatMissingData: "breaching",
    });
    const topic = Object.keys(t.findResources("AWS::SNS::Topic"));
    expect(topic).toHaveLength(1);
    for (const a of alarms) expect(a.AlarmActions).toEqual([{ Ref: topic[0] }]);
    t.hasResourceProperties("AWS::SNS::Subscription", { Protocol: "email", Endpoint: "ops@example.com" });
    t.resourceCountIs("AWS::CloudWatch::Dashboard", 1);
  });
});

describe("a config change changes the template as expected", () => {
  it("a new source adds its queue, DLQ, mapping, alarms and lifecycle rules; a new retention moves its expiry", () => {
    const before = templateFor();
    const changed: RawConfig = {
      ...baseConfig,
      sources: [
        { ...baseConfig.sources[0]!, retentionDays: 14 },
        baseConfig.sources[1]!,
        { name: "s3", url: "https://s3.example", maxConcurrentCopies: 4, retentionDays: 2 },
      ],
    };
    const after = templateFor(changed);
    before.resourceCountIs("AWS::SQS::Queue", 4);
    after.resourceCountIs("AWS::SQS::Queue", 6);
    before.resourceCountIs("AWS::Lambda::EventSourceMapping", 2);
    after.resourceCountIs("AWS::Lambda::EventSourceMapping", 3);
    after.hasResourceProperties("AWS::SQS::Queue", { QueueName: "flussonic-backup-s3" });
    after.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      ScalingConfig: { MaximumConcurrency: 4 },
    });
    after.resourceCountIs("AWS::CloudWatch::Alarm", 20);
    expect(expirations(before)["flussonic/s1/"]).toBe(9);
    expect(expirations(after)["flussonic/s1/"]).toBe(15);
    expect(expirations(after)["flussonic/s3/"]).toBe(3);
    expect(expirations(before)["flussonic/s3/"]).toBeUndefined();
    expect(expirations(after)["flussonic/s2/"]).toBe(expirations(before)["flussonic/s2/"]);
  });
});

describe("cdk-nag AwsSolutions checks", () => {
  const errorsOf = (stack: BackupStack) =>
    new AwsSolutionsChecks()
      .validateScope(stack)
      .violations.filter((v) => v.severity === "error")
      .map((v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.resourceLogicalId).join(", ")}`);

  it("finds no error in the stack (every acknowledged finding has its reason in the code)", () => {
    expect(errorsOf(stackFor(baseConfig))).toEqual([]);
    const everything = stackFor({
      ...baseConfig,
      sources: [
        { ...baseConfig.sources[0]!, maxConcurrentCopies: 1 },
        baseConfig.sources[1]!,
        {
          name: "fleet",
          kind: "central",
          url: "https://central.example",
          auth: { type: "bearer", tokenSecret: "flussonic-backup/fleet" },
          retentionDays: 7,
        },
      ],
      deployment: {
        kmsKeyArn: "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555",
        objectLock: { mode: "GOVERNANCE", days: 3 },
        storageClassTransition: { storageClass: "STANDARD_IA", afterDays: 30 },
        alarmEmail: "ops@example.com",
      },
    });
    expect(errorsOf(everything)).toEqual([]);
  });

  it("does report an error when something insecure is added (the check is not vacuous)", () => {
    const stack = stackFor(baseConfig);
    new sqs.Queue(stack, "Plain", { encryption: sqs.QueueEncryption.UNENCRYPTED });
    expect(errorsOf(stack).some((e) => e.startsWith("AwsSolutions-SQS"))).toBe(true);
  });
});

describe("the CDK app (infra/app.ts)", () => {
  const runApp = (config: string) =>
    spawnSync(process.execPath, ["infra/app.ts"], {
      encoding: "utf8",
      env: {
        ...process.env,
        CDK_CONTEXT_JSON: JSON.stringify({ config }),
        CDK_OUTDIR: mkdtempSync(join(tmpdir(), "cdk-out-")),
      },
    });

  it("names the file when the config is missing", () => {
    const r = runApp("config/nope.jsonc");
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("config/nope.jsonc: cannot read the config file: no such file");
  });

  it("names the file and the field when the config is invalid", () => {
    const file = join(mkdtempSync(join(tmpdir(), "cfg-")), "bad.json");
    writeFileSync(
      file,
      JSON.stringify({ ...baseConfig, sources: [{ ...baseConfig.sources[0]!, retentionDays: -1 }] }),
    );
    const r = runApp(file);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      `${file}: sources[0].retentionDays: expected a number of days greater than 0 (got -1)`,
    );
  });
});

describe("evidence in the stack (docs/evidence.md)", () => {
  const bucketOf = (tt: Template) =>
    byType(tt, "AWS::S3::Bucket").find((b) => b.Properties.BucketName === "dvr-backup-test")!.Properties;
  it("no lifecycle rule expires held copies, holds, audit records or proofs, with or without Object Lock", () => {
    for (const deployment of [{}, { objectLock: { mode: "GOVERNANCE", days: 3 } }]) {
      const lifecycle = bucketOf(templateFor({ ...baseConfig, deployment })).LifecycleConfiguration as {
        Rules: { Prefix?: string; ExpirationInDays?: number }[];
      };
      const rules = lifecycle.Rules;
      const expiring = rules.filter((r) => r.ExpirationInDays !== undefined);
      expect(expiring.length).toBeGreaterThan(0);
      for (const part of ["held", "holds", "audit", "proofs"]) {
        const key = `${baseConfig.prefix}.backup/${part}/x`;
        expect(
          expiring.filter((r) => key.startsWith(r.Prefix ?? "")).map((r) => r.Prefix),
          part,
        ).toEqual([]);
      }
    }
  });

  it("deployment.exportSigningKey: an Ed25519 KMS signing key, retained, its ARN an output; none by default; cdk-nag clean", () => {
    expect(Object.keys(templateFor().findResources("AWS::KMS::Key"))).toEqual([]);
    const stack = stackFor({ ...baseConfig, deployment: { exportSigningKey: true } });
    const t = Template.fromStack(stack);
    t.hasResource("AWS::KMS::Key", {
      Properties: { KeySpec: "ECC_NIST_EDWARDS25519", KeyUsage: "SIGN_VERIFY" },
      DeletionPolicy: "Retain",
      UpdateReplacePolicy: "Retain",
    });
    expect(Object.keys(t.findOutputs("ExportSigningKeyArn"))).toEqual(["ExportSigningKeyArn"]);
    const errors = new AwsSolutionsChecks()
      .validateScope(stack)
      .violations.filter((v) => v.severity === "error")
      .map((v) => v.ruleName);
    expect(errors).toEqual([]);
  });
});
