/**
 * What the stack grants each function, read from the synthesized template: every Allow statement
 * of every role, action by action and resource by resource, must be on the list of what that
 * function calls (README "Deploy to AWS": what the stack grants each function). A grant broader
 * than the list (another prefix, another action, a wildcard, a KMS grant usable outside S3) fails.
 * The stack under test has everything on: two sources with secrets, KMS, Object Lock, playback.
 */
// biome-ignore-all lint/suspicious/noExplicitAny: CloudFormation template JSON is walked untyped here
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../functions/config/config.ts";
import { BackupStack } from "../../infra/backup-stack.ts";

const KMS = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555";
const raw = {
  bucket: "dvr-backup-test",
  prefix: "flussonic/",
  schedule: "rate(5 minutes)",
  sources: [
    {
      name: "s1",
      url: "https://s1.example",
      auth: { type: "basic", username: "backup", passwordSecret: "flussonic-backup/s1" },
      retentionDays: 7,
    },
    {
      name: "s2",
      url: "https://s2.example",
      auth: { type: "bearer", tokenSecret: "flussonic-backup/s2" },
      streams: ["cam1"],
      retentionDays: 3,
      maxConcurrentCopies: 1,
    },
  ],
  deployment: { kmsKeyArn: KMS, objectLock: { mode: "GOVERNANCE", days: 7 }, playback: {} },
};

type Resources = Record<string, { Type: string; Properties: Record<string, any> }>;
const synth = (config: unknown): Resources =>
  Template.fromStack(
    new BackupStack(new App(), "Test", {
      config: parseConfig(JSON.stringify(config), "test.json"),
      configFile: "test.json",
      functionCode: "stub",
    }),
  ).toJSON().Resources as Resources;
const template = synth(raw);

/** A template value as text: `<Id.Attr>` for GetAtt, `[Id]` for Ref (logical ids without their hash). */
function text(v: any): string {
  const id = (s: string) => s.replace(/[0-9A-F]{8}$/, "");
  if (typeof v === "string") return v;
  if (v?.Ref) return `[${id(v.Ref)}]`;
  if (v?.["Fn::GetAtt"]) return `<${id(v["Fn::GetAtt"][0])}.${v["Fn::GetAtt"][1]}>`;
  if (v?.["Fn::Join"]) return v["Fn::Join"][1].map(text).join(v["Fn::Join"][0]);
  return JSON.stringify(v);
}

const list = (v: any): any[] => (Array.isArray(v) ? v : [v]);

/** Every allowed action on every resource of each role: `action resource [condition]`, by role. */
function grantsByRole(resources: Resources = template): Record<string, string[]> {
  const template = resources;
  const out: Record<string, string[]> = {};
  for (const [, r] of Object.entries(template)) {
    if (r.Type === "AWS::IAM::Role") {
      expect(r.Properties.Policies, "inline policies").toBeUndefined();
      expect(r.Properties.ManagedPolicyArns, "managed policies").toBeUndefined();
      continue;
    }
    if (r.Type !== "AWS::IAM::Policy") continue;
    for (const role of r.Properties.Roles) {
      const name = text(role);
      for (const s of r.Properties.PolicyDocument.Statement) {
        expect(s.Effect).toBe("Allow");
        expect(s.NotAction ?? s.NotResource).toBeUndefined();
        const condition = s.Condition
          ? ` if ${JSON.stringify(s.Condition, (_k, v) => (v?.Ref || v?.["Fn::Join"] ? text(v) : v))}`
          : "";
        for (const action of list(s.Action)) {
          for (const resource of list(s.Resource)) {
            out[name] = [...(out[name] ?? []), `${action} ${text(resource)}${condition}`];
          }
        }
      }
    }
  }
  return out;
}

const B = "<BackupBucket.Arn>";
const VIA_S3 = ' if {"StringEquals":{"kms:ViaService":"s3.[AWS::Region].amazonaws.com"}}';
const secret = (name: string) =>
  `arn:[AWS::Partition]:secretsmanager:[AWS::Region]:[AWS::AccountId]:secret:${name}-??????`;
const readSecret = (arn: string) => [
  `secretsmanager:GetSecretValue ${arn}`,
  `secretsmanager:DescribeSecret ${arn}`,
];
const sendTo = (queue: string) =>
  ["SendMessage", "GetQueueAttributes", "GetQueueUrl"].map((a) => `sqs:${a} <${queue}.Arn>`);
const receiveFrom = (queue: string) =>
  ["ReceiveMessage", "ChangeMessageVisibility", "GetQueueUrl", "DeleteMessage", "GetQueueAttributes"].map(
    (a) => `sqs:${a} <${queue}.Arn>`,
  );
const logs = (fn: string) => [`logs:CreateLogStream <${fn}Logs.Arn>`, `logs:PutLogEvents <${fn}Logs.Arn>`];
const sourceSecrets = [
  ...readSecret(secret("flussonic-backup/s1")),
  ...readSecret(secret("flussonic-backup/s2")),
];

/** What each function calls, and so all its role may allow. */
const ALLOWED: Record<string, string[]> = {
  "[PlannerRole]": [
    ...logs("Planner"),
    ...sendTo("Queuess1Queue"),
    ...sendTo("Queuess2Queue"),
    `s3:ListBucket ${B}`,
    ...["manifests", "manifest-snapshots", "catalog", "index", "records", "control"].map(
      (p) => `s3:GetObject ${B}/flussonic/.backup/${p}/*`,
    ),
    ...["manifests", "manifest-snapshots", "catalog", "index"].map(
      (p) => `s3:PutObject ${B}/flussonic/.backup/${p}/*`,
    ),
    `s3:DeleteObject ${B}/flussonic/.backup/records/*`,
    `kms:Decrypt ${KMS}${VIA_S3}`,
    `kms:GenerateDataKey ${KMS}${VIA_S3}`,
    ...sourceSecrets,
  ],
  // One copier per source: its own queue, prefixes, pause switch and secret, nothing of the other.
  ...Object.fromEntries(
    (["s1", "s2"] as const).map((src) => [
      `[Copier${src}Role]`,
      [
        ...logs(`Copier${src}`),
        ...receiveFrom(`Queues${src}Queue`),
        // A paused source's window goes back on its queue; a failed one to the dead-letter queue.
        ...sendTo(`Queues${src}Queue`),
        ...sendTo(`Queues${src}DeadLetterQueue`),
        ...["GetObject", "PutObject", "AbortMultipartUpload"].flatMap((a) => [
          `s3:${a} ${B}/flussonic/${src}/*`,
          `s3:${a} ${B}/flussonic/.backup/records/${src}/*`,
        ]),
        `s3:GetObject ${B}/flussonic/.backup/control/${src}.json`,
        // Holds: the source's holds, and held copies of its windows stored inside one.
        `s3:GetObject ${B}/flussonic/.backup/holds/${src}.json`,
        ...["GetObject", "PutObject", "PutObjectLegalHold"].map(
          (a) => `s3:${a} ${B}/flussonic/.backup/held/${src}/*`,
        ),
        `s3:ListBucket ${B}`,
        `s3:ListBucketMultipartUploads ${B}`,
        `kms:Decrypt ${KMS}${VIA_S3}`,
        `kms:GenerateDataKey ${KMS}${VIA_S3}`,
        ...readSecret(secret(`flussonic-backup/${src}`)),
      ],
    ]),
  ),
  "[PlaybackSigningKeyMakerRole]": [
    ...logs("PlaybackSigningKeyMaker"),
    "secretsmanager:GetSecretValue [PlaybackMediaSigningKey]",
    "secretsmanager:PutSecretValue [PlaybackMediaSigningKey]",
  ],
  "[PlaybackHandlerRole]": [
    ...logs("PlaybackHandler"),
    `s3:ListBucket ${B}`,
    ...[
      "flussonic/.backup/index/",
      "flussonic/.backup/records/",
      "flussonic/.backup/manifests/",
      "flussonic/s1/",
      "flussonic/s2/",
    ].map((p) => `s3:GetObject ${B}/${p}*`),
    // The cache of decoded key frames ({from}-preview.jpg, thumbnails): its one write.
    `s3:GetObject ${B}/flussonic/.backup/previews/*`,
    `s3:PutObject ${B}/flussonic/.backup/previews/*`,
    ...readSecret("[PlaybackTokenKeys]"),
    ...readSecret("[PlaybackMediaSigningKey]"),
    `kms:Decrypt ${KMS}${VIA_S3}`,
    `kms:GenerateDataKey ${KMS}${VIA_S3}`,
  ],
};

describe("what the stack grants each function", () => {
  const granted = grantsByRole();

  it("has a role for each function and no other", () => {
    expect(Object.keys(granted).sort()).toEqual(Object.keys(ALLOWED).sort());
  });

  for (const [role, allowed] of Object.entries(ALLOWED)) {
    it(`${role} is allowed nothing beyond the list of what it calls`, () => {
      expect((granted[role] ?? []).filter((g) => !allowed.includes(g))).toEqual([]);
    });
  }

  it("the planner deletes only records, writes no window, and reads no window", () => {
    const planner = granted["[PlannerRole]"]!;
    expect(planner.filter((g) => g.startsWith("s3:DeleteObject"))).toEqual([
      `s3:DeleteObject ${B}/flussonic/.backup/records/*`,
    ]);
    expect(planner.filter((g) => g.includes("/flussonic/s1/") || g.includes("/.backup/*"))).toEqual([]);
  });

  it("the playback key maker may not update the secret or move its version stages", () => {
    expect(granted["[PlaybackSigningKeyMakerRole]"]!.filter((g) => /UpdateSecret/.test(g))).toEqual([]);
  });

  it("every KMS grant holds only through S3 (kms:ViaService)", () => {
    const kms = Object.values(granted)
      .flat()
      .filter((g) => g.startsWith("kms:"));
    expect(kms.length).toBeGreaterThan(0);
    for (const g of kms) expect(g).toMatch(/kms:ViaService/);
  });
});

describe("holds from episodes (sources[].episodes)", () => {
  it("the planner gets what holding a source's episodes needs, for that source only", () => {
    const withEpisodes = structuredClone(raw) as typeof raw & { sources: Record<string, unknown>[] };
    withEpisodes.sources[0]!.episodes = { url: "https://episodes.example/config-external/episodes" };
    const before = new Set(grantsByRole()["[PlannerRole]"]);
    const added = grantsByRole(synth(withEpisodes))["[PlannerRole]"]!.filter((g) => !before.has(g));
    expect([...new Set(added)].sort()).toEqual(
      [
        `s3:GetObject ${B}/flussonic/.backup/holds/s1.json`,
        `s3:PutObject ${B}/flussonic/.backup/holds/s1.json`,
        `s3:GetObject ${B}/flussonic/s1/*`,
        ...["GetObject", "PutObject", "PutObjectLegalHold"].map(
          (a) => `s3:${a} ${B}/flussonic/.backup/held/s1/*`,
        ),
        `s3:PutObject ${B}/flussonic/.backup/audit/*`,
        `s3:GetBucketObjectLockConfiguration ${B}`,
      ].sort(),
    );
  });
});

describe("day proofs signed by the planner (deployment.exportSigningKey)", () => {
  it("the planner may sign with the stack's key and write its day proofs; no other function may sign", () => {
    const signing = { ...raw, deployment: { ...raw.deployment, exportSigningKey: true } };
    const granted = grantsByRole(synth(signing));
    const before = new Set(grantsByRole()["[PlannerRole]"]);
    const added = granted["[PlannerRole]"]!.filter((g) => !before.has(g));
    expect([...new Set(added)].sort()).toEqual(
      [
        "kms:Sign <ExportSigningKey.Arn>",
        "kms:GetPublicKey <ExportSigningKey.Arn>",
        ...["s1", "s2"].flatMap((s) => [
          `s3:GetObject ${B}/flussonic/.backup/proofs/${s}/*`,
          `s3:PutObject ${B}/flussonic/.backup/proofs/${s}/*`,
          `s3:GetObject ${B}/flussonic/.backup/proofs/${s}.json`,
          `s3:PutObject ${B}/flussonic/.backup/proofs/${s}.json`,
        ]),
      ].sort(),
    );
    const signers = Object.entries(granted).filter(([, g]) => g.some((x) => x.startsWith("kms:Sign ")));
    expect(signers.map(([role]) => role)).toEqual(["[PlannerRole]"]);
  });
});
