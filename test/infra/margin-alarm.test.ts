/**
 * issue 22 item 3: the margin (time left until the source deletes the oldest second the backup
 * lacks) alarms before anything is lost, at `marginWarningSeconds`, into the alarm topic.
 */
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../functions/config/config.ts";
import { BackupStack } from "../../infra/backup-stack.ts";

function stack(extra: Record<string, unknown> = {}) {
  const config = parseConfig(
    JSON.stringify({
      bucket: "dvr-backup-test",
      sources: [{ name: "s1", url: "https://s1.example" }],
      ...extra,
    }),
    "test.json",
  );
  return new BackupStack(new App(), "Test", { config, configFile: "test.json", functionCode: "stub" });
}

function marginAlarm(extra: Record<string, unknown> = {}) {
  const t = Template.fromStack(stack(extra));
  const topics = Object.keys(t.findResources("AWS::SNS::Topic"));
  const alarm = Object.values(t.findResources("AWS::CloudWatch::Alarm"))
    .map((a) => a.Properties as Record<string, unknown>)
    .find((a) => a.AlarmName === "flussonic-backup-s1-margin");
  return { topics, alarm };
}

describe("the margin alarm", () => {
  it("fires when the planner's shortest margin of a source drops below the default six hours", () => {
    const { topics, alarm } = marginAlarm();
    expect(alarm).toMatchObject({
      Namespace: "FlussonicBackup",
      MetricName: "MarginSeconds",
      Dimensions: [
        { Name: "service", Value: "planner" },
        { Name: "source", Value: "s1" },
      ],
      Statistic: "Minimum",
      Threshold: 6 * 3600,
      ComparisonOperator: "LessThanThreshold",
    });
    expect(JSON.stringify(alarm?.AlarmActions)).toContain(topics[0]);
  });

  it("takes its threshold from marginWarningSeconds", () => {
    expect(marginAlarm({ marginWarningSeconds: 1800 }).alarm?.Threshold).toBe(1800);
  });
});
