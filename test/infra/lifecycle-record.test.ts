/**
 * issue 15 item 6: the source-wide lifecycle rule takes the longest retention in the current list,
 * so removing a 90-day stream (or switching to "all") shortened it and S3 expired months of video
 * after the next deploy. A synth now compares with the expiries it recorded last time.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../../functions/config/config.ts";
import type { PreviousExpiries } from "../../infra/backup-bucket.ts";
import { BackupStack } from "../../infra/backup-stack.ts";
import {
  lifecycleRecordFile,
  readLifecycleRecord,
  readRecordedObjectLock,
  writeLifecycleRecord,
} from "../../infra/lifecycle-record.ts";

const baseConfig = {
  bucket: "dvr-backup-test",
  prefix: "flussonic/",
  sources: [
    { name: "s1", url: "https://s1.example", retentionDays: 7.5 },
    {
      name: "s2",
      url: "https://s2.example",
      streams: ["cam1", { name: "live/cam2", retentionDays: 3 }, { name: "cam3", retentionDays: 30 }],
      retentionDays: 10,
    },
  ],
};
type RawConfig = typeof baseConfig & { sources: Record<string, unknown>[] };

function stackFor(raw: Record<string, unknown>, previousExpiries?: PreviousExpiries) {
  return new BackupStack(new App(), "Test", {
    config: parseConfig(JSON.stringify(raw), "test.json"),
    configFile: "test.json",
    functionCode: "stub",
    previousExpiries,
  });
}

function expirations(stack: BackupStack): Record<string, number> {
  const buckets = Template.fromStack(stack).findResources("AWS::S3::Bucket");
  const bucket = Object.values(buckets).find((b) => b.Properties.BucketName === "dvr-backup-test")!;
  const rules = bucket.Properties.LifecycleConfiguration.Rules as {
    Prefix?: string;
    ExpirationInDays?: number;
  }[];
  return Object.fromEntries(
    rules.filter((r) => r.ExpirationInDays).map((r) => [r.Prefix, r.ExpirationInDays]),
  );
}

const recorded = (allowShorter: string[] = []): PreviousExpiries => ({
  expirationDays: stackFor(baseConfig).backupBucket.expirationDays,
  recordFile: "test.lifecycle.json",
  allowShorter,
});

const withoutCam3: RawConfig = {
  ...baseConfig,
  sources: [
    baseConfig.sources[0]!,
    { ...baseConfig.sources[1]!, streams: ["cam1", { name: "live/cam2", retentionDays: 3 }] },
  ],
};

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe("a deploy never shortens a recorded expiry silently", () => {
  it("records the expiry of every prefix with a retention rule", () => {
    expect(stackFor(baseConfig).backupBucket.expirationDays).toMatchObject({
      "flussonic/s1/": 9,
      "flussonic/s2/": 31,
      "flussonic/s2/live%2Fcam2/": 4,
      "flussonic/.backup/catalog/s2/": 31,
    });
  });

  it("refuses to drop a 30-day stream from the list, naming the prefix, both expiries and the flag that confirms", () => {
    const p = problems(() => stackFor(withoutCam3, recorded()));
    expect(p).toHaveLength(4);
    expect(p[0]).toContain(
      "test.json: this config expires s3://dvr-backup-test/flussonic/s2/ after 11 days instead of 31 (recorded in test.lifecycle.json)",
    );
    expect(p[0]).toContain("confirm the shorter expiry with -c allowShorterRetention=flussonic/s2/");
    expect(p[1]).toContain("s3://dvr-backup-test/flussonic/.backup/catalog/s2/ after 11 days instead of 31");
    expect(p[2]).toContain("s3://dvr-backup-test/flussonic/.backup/index/s2/ after 11 days instead of 31");
    expect(p[3]).toBe(
      "To confirm all of them: cdk deploy -c allowShorterRetention=flussonic/s2/,flussonic/.backup/catalog/s2/,flussonic/.backup/index/s2/",
    );
  });

  it('refuses a switch to streams "all" that takes the longest stream retention away', () => {
    const all = {
      ...baseConfig,
      sources: [baseConfig.sources[0]!, { ...baseConfig.sources[1]!, streams: "all" }],
    };
    expect(problems(() => stackFor(all, recorded()))[0]).toContain(
      "flussonic/s2/ after 11 days instead of 31",
    );
  });

  it("sets the shorter expiry once -c allowShorterRetention names its prefixes", () => {
    const stack = stackFor(
      withoutCam3,
      recorded(["flussonic/s2/", "flussonic/.backup/catalog/s2/", "flussonic/.backup/index/s2/"]),
    );
    expect(expirations(stack)["flussonic/s2/"]).toBe(11);
    expect(expirations(stack)["flussonic/.backup/catalog/s2/"]).toBe(11);
  });

  it("needs no confirmation for a longer expiry", () => {
    const longer = {
      ...baseConfig,
      sources: [{ ...baseConfig.sources[0]!, retentionDays: 30 }, baseConfig.sources[1]!],
    };
    expect(expirations(stackFor(longer, recorded()))["flussonic/s1/"]).toBe(31);
  });

  it("keeps the rule of a prefix no source covers any more (a source renamed), with its recorded expiry", () => {
    const renamed = {
      ...baseConfig,
      sources: [{ ...baseConfig.sources[0]!, name: "s9" }, baseConfig.sources[1]!],
    };
    const e = expirations(stackFor(renamed, recorded()));
    expect(e["flussonic/s1/"]).toBe(9);
    expect(e["flussonic/.backup/catalog/s1/"]).toBe(9);
    expect(e["flussonic/s9/"]).toBe(9);
  });
});

describe("the lifecycle record file", () => {
  it("lives next to the config, round-trips, and is ignored for another bucket", () => {
    expect(lifecycleRecordFile("config/prod.jsonc")).toBe("config/prod.lifecycle.json");
    const file = join(mkdtempSync(join(tmpdir(), "lc-")), "x.lifecycle.json");
    expect(readLifecycleRecord(file, "b1")).toBeUndefined();
    writeLifecycleRecord(file, "b1", { "flussonic/s1/": 9 });
    expect(readLifecycleRecord(file, "b1")).toEqual({ "flussonic/s1/": 9 });
    expect(readLifecycleRecord(file, "b2")).toBeUndefined();
    writeFileSync(file, "{ not json");
    expect(() => readLifecycleRecord(file, "b1")).toThrow(
      /x\.lifecycle\.json: the lifecycle record is not valid JSON/,
    );
  });

  it("makes `cdk synth` (infra/app.ts) stop when the config would shorten a recorded expiry", () => {
    const dir = mkdtempSync(join(tmpdir(), "lc-app-"));
    const config = join(dir, "prod.json");
    writeFileSync(config, JSON.stringify(withoutCam3));
    writeLifecycleRecord(join(dir, "prod.lifecycle.json"), "dvr-backup-test", recorded().expirationDays);
    const r = spawnSync(process.execPath, ["infra/app.ts"], {
      encoding: "utf8",
      env: { ...process.env, CDK_CONTEXT_JSON: JSON.stringify({ config }), CDK_OUTDIR: join(dir, "out") },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      `${config}: this config expires s3://dvr-backup-test/flussonic/s2/ after 11 days instead of 31 (recorded in ${join(dir, "prod.lifecycle.json")})`,
    );
    expect(existsSync(join(dir, "out", "manifest.json"))).toBe(false);
    expect(
      JSON.parse(readFileSync(join(dir, "prod.lifecycle.json"), "utf8")).expirationDays["flussonic/s2/"],
    ).toBe(31);
  });
});

describe("the lifecycle record keeps the bucket's Object Lock", () => {
  it("records what the synth made, and reads a record from before Object Lock was recorded as unknown", () => {
    const dir = mkdtempSync(join(tmpdir(), "lc-lock-"));
    const file = join(dir, "prod.lifecycle.json");
    expect(readRecordedObjectLock(file, "dvr-backup-test")).toBeUndefined();
    writeLifecycleRecord(file, "dvr-backup-test", { "flussonic/s1/": 9 }, { mode: "GOVERNANCE", days: 3 });
    expect(readRecordedObjectLock(file, "dvr-backup-test")).toEqual({ mode: "GOVERNANCE", days: 3 });
    expect(readRecordedObjectLock(file, "other-bucket")).toBeUndefined();
    writeLifecycleRecord(file, "dvr-backup-test", { "flussonic/s1/": 9 }, null);
    expect(readRecordedObjectLock(file, "dvr-backup-test")).toBeNull();
    // A record written before this field: the bucket exists, its Object Lock is not known.
    writeFileSync(
      file,
      JSON.stringify({ bucket: "dvr-backup-test", expirationDays: { "flussonic/s1/": 9 } }),
    );
    expect(readRecordedObjectLock(file, "dvr-backup-test")).toBeUndefined();
    expect(readLifecycleRecord(file, "dvr-backup-test")).toEqual({ "flussonic/s1/": 9 });
  });
});
