/**
 * issue 15 item 4: a stream the planner cannot plan (404 at the source, a malformed answer) drops
 * out of the lag metric, and windows lost at the source (gone before they were copied) were only
 * graphed. Both alarm, into the one alarm topic.
 */
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../functions/config/config.ts";
import { BackupStack } from "../../infra/backup-stack.ts";

function alarmsFor(schedule: string) {
  const config = parseConfig(
    JSON.stringify({
      bucket: "dvr-backup-test",
      schedule,
      sources: [{ name: "s1", url: "https://s1.example" }],
    }),
    "test.json",
  );
  const t = Template.fromStack(
    new BackupStack(new App(), "Test", { config, configFile: "test.json", functionCode: "stub" }),
  );
  const topics = Object.keys(t.findResources("AWS::SNS::Topic"));
  const alarms = Object.values(t.findResources("AWS::CloudWatch::Alarm")).map(
    (a) => a.Properties as Record<string, unknown>,
  );
  return { topics, named: (n: string) => alarms.find((a) => a.AlarmName === n) };
}

describe("alarms on planning errors and on windows lost at the source", () => {
  it("alarms on the planner's PlanningErrors of a source in two runs in a row, into the alarm topic", () => {
    const { topics, named } = alarmsFor("rate(5 minutes)");
    expect(named("flussonic-backup-s1-planning-errors")).toMatchObject({
      Namespace: "FlussonicBackup",
      MetricName: "PlanningErrors",
      Dimensions: [
        { Name: "service", Value: "planner" },
        { Name: "source", Value: "s1" },
      ],
      Statistic: "Sum",
      Period: 300,
      Threshold: 1,
      ComparisonOperator: "GreaterThanOrEqualToThreshold",
      EvaluationPeriods: 2,
      DatapointsToAlarm: 2,
      TreatMissingData: "notBreaching",
      AlarmActions: [{ Ref: topics[0] }],
    });
    expect(String(named("flussonic-backup-s1-planning-errors")!.AlarmDescription)).toContain(
      "flussonic-backup status",
    );
  });

  it("evaluates planning errors over periods as long as the planner's schedule, so two runs fit", () => {
    const { named } = alarmsFor("rate(2 hours)");
    expect(named("flussonic-backup-s1-planning-errors")).toMatchObject({
      Period: 7200,
      EvaluationPeriods: 2,
    });
  });

  it("alarms on the first window a source deleted before it was copied (WindowsGone), into the alarm topic", () => {
    const { topics, named } = alarmsFor("rate(5 minutes)");
    expect(named("flussonic-backup-s1-windows-gone")).toMatchObject({
      Namespace: "FlussonicBackup",
      MetricName: "WindowsGone",
      Dimensions: [
        { Name: "service", Value: "copier" },
        { Name: "source", Value: "s1" },
      ],
      Statistic: "Sum",
      Threshold: 1,
      ComparisonOperator: "GreaterThanOrEqualToThreshold",
      EvaluationPeriods: 1,
      TreatMissingData: "notBreaching",
      AlarmActions: [{ Ref: topics[0] }],
    });
  });
});
