import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig, resolveAllCredentials } from "../../functions/config/config.ts";

const source = { name: "s1", url: "https://s1.example" };

function problems(data: unknown): string[] {
  try {
    parseConfig(JSON.stringify(data), "cfg.json");
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe("config for AWS: credentials in Secrets Manager", () => {
  it("accepts a secret, an environment variable, or both", () => {
    for (const auth of [
      { type: "basic", username: "u", passwordSecret: "flussonic-backup/s1" },
      { type: "basic", username: "u", passwordEnv: "S1_PASSWORD" },
      {
        type: "bearer",
        tokenEnv: "T",
        tokenSecret: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:t-AbCdEf",
      },
    ]) {
      expect(problems({ bucket: "b-1", sources: [{ ...source, auth }] })).toEqual([]);
    }
  });

  it("refuses auth that names neither, and a secret reference that is not a name or ARN", () => {
    expect(
      problems({ bucket: "b-1", sources: [{ ...source, auth: { type: "basic", username: "u" } }] }),
    ).toEqual([
      "cfg.json: sources[0].auth: expected passwordEnv (an environment variable, for local runs) or passwordSecret (a Secrets Manager secret, for AWS), or both",
    ]);
    expect(
      problems({
        bucket: "b-1",
        sources: [{ ...source, auth: { type: "bearer", tokenSecret: "has space" } }],
      }),
    ).toEqual([
      "cfg.json: sources[0].auth.tokenSecret: expected the name or ARN of a Secrets Manager secret, like flussonic/streamer1",
    ]);
  });

  it("tells a local run that names only a secret that it reads environment variables", () => {
    const cfg = parseConfig(
      JSON.stringify({
        bucket: "b-1",
        sources: [{ ...source, auth: { type: "basic", username: "u", passwordSecret: "x" } }],
      }),
      "cfg.json",
    );
    expect(() => resolveAllCredentials(cfg, "cfg.json", {})).toThrow(
      "cfg.json: sources[0].auth.passwordEnv: is required here: this runtime reads secrets from environment variables (passwordSecret is read in AWS only)",
    );
  });
});

describe("config for AWS: deployment options", () => {
  it("defaults the alarm and version settings and leaves the rest off", () => {
    expect(parseConfig(JSON.stringify({ bucket: "b-1", sources: [source] }), "cfg.json").deployment).toEqual({
      exportSigningKey: false,
      lagAlarmSeconds: 3600,
      noncurrentVersionDays: 30,
    });
  });

  it("names the field of each bad option", () => {
    expect(
      problems({
        bucket: "b-1",
        sources: [source],
        deployment: {
          kmsKeyArn: "alias/backup",
          objectLock: { mode: "LEGAL", days: 0 },
          storageClassTransition: { storageClass: "STANDARD_IA", afterDays: 5 },
          alarmEmail: "nobody",
          extra: 1,
        },
      }),
    ).toEqual([
      "cfg.json: deployment.kmsKeyArn: expected a KMS key ARN, like arn:aws:kms:eu-west-1:123456789012:key/<key id>",
      'cfg.json: deployment.objectLock.mode: expected "GOVERNANCE", "COMPLIANCE" or "NONE"',
      "cfg.json: deployment.objectLock.days: expected at least 1 day (got 0)",
      "cfg.json: deployment.storageClassTransition.afterDays: S3 moves objects to STANDARD_IA only 30 days or more after they are written",
      "cfg.json: deployment.alarmEmail: expected an email address",
      'cfg.json: deployment.extra: unknown key "extra"',
    ]);
  });
});
