/**
 * The whole backup in one stack, as in the design card: an EventBridge rule runs the planner, the
 * planner fills one copy queue per source, each queue feeds that source's copier with the source's
 * cap, the copier writes into the bucket; alarms and a dashboard watch it.
 */
import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Validations } from "aws-cdk-lib";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kms from "aws-cdk-lib/aws-kms";
import type * as s3 from "aws-cdk-lib/aws-s3";
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import type { Construct } from "constructs";
import { authSecretReference, type BackupConfig, ConfigError } from "../functions/config/config.ts";
import {
  COPIER_NODE_FLAGS,
  COPIER_TIMEOUT_SECONDS,
  STACK_SIGNING_KEY_ENV,
} from "../functions/config/limits.ts";
import { controlKey, holdsKey, provenKey } from "../functions/domain/keys.ts";
import { encodeKeySegment } from "../functions/domain/names.ts";
import { BackupBucket, type ExistingBucket, type PreviousExpiries, s3ViaService } from "./backup-bucket.ts";
import { BackupFunction, type FunctionCode } from "./backup-function.ts";
import { BackupMonitoring } from "./backup-monitoring.ts";
import { CopyQueues } from "./copy-queues.ts";
import { PlaybackDistribution } from "./playback-distribution.ts";

/** The copier's timeout; the handler stops a copy 30 s before it (functions/lambda/copier.ts). */
export const COPIER_TIMEOUT = Duration.seconds(COPIER_TIMEOUT_SECONDS);

/** Lambda allows 4 KB of environment variables per function (names and values together). */
const MAX_ENVIRONMENT_BYTES = 4096;

export interface BackupStackProps extends StackProps {
  config: BackupConfig;
  /** The config file, to name it in errors. */
  configFile: string;
  /** `bundle` (default) builds the handlers with esbuild; `stub` is for fast template tests. */
  functionCode?: FunctionCode;
  /** The S3 expiries of the last synth (the lifecycle record): none is shortened silently. */
  previousExpiries?: PreviousExpiries | undefined;
  /** The bucket as the last synth made it (the lifecycle record); undefined: a new stack. */
  existingBucket?: ExistingBucket | undefined;
}

export class BackupStack extends Stack {
  readonly backupBucket: BackupBucket;
  readonly planner: BackupFunction;
  /**
   * One copier per source, each with its own role limited to that source's queue, prefixes and
   * secret: a compromised copier (a hostile source answer, say) cannot write another source's windows.
   */
  readonly copiers: Map<string, BackupFunction>;
  readonly queues: CopyQueues[];
  readonly monitoring: BackupMonitoring;
  /** With `deployment.playback`: the playback function behind CloudFront. */
  readonly playback: PlaybackDistribution | undefined;

  constructor(scope: Construct, id: string, props: BackupStackProps) {
    super(scope, id, props);
    const { config, configFile } = props;
    const secrets = secretReferences(config, configFile);

    this.backupBucket = new BackupBucket(this, "Backup", {
      config,
      configFile,
      previousExpiries: props.previousExpiries,
      existingBucket: props.existingBucket,
    });
    this.queues = config.sources.map(
      (source) => new CopyQueues(this, `Queues-${source.name}`, { source, copierTimeout: COPIER_TIMEOUT }),
    );

    // What both functions read at cold start (functions/lambda/environment.ts). The config names
    // secrets, never holds them; the deployment options are for this stack only.
    const { deployment: _deployment, $schema: _schema, ...runtimeConfig } = config;
    const environment = {
      BACKUP_CONFIG: JSON.stringify(runtimeConfig),
      QUEUE_URLS: this.toJsonString(
        Object.fromEntries(
          this.queues.map((q) => [
            q.source.name,
            { url: q.queue.queueUrl, deadLetterUrl: q.deadLetterQueue.queueUrl },
          ]),
        ),
      ),
    };
    // Queue URLs are resolved at deploy time: about 120 bytes each.
    const environmentBytes = environment.BACKUP_CONFIG.length + 140 * this.queues.length * 2 + 200;
    if (environmentBytes > MAX_ENVIRONMENT_BYTES) {
      throw new ConfigError([
        `${configFile}: the configuration is too large for Lambda's 4 KB of environment variables (about ${environmentBytes} bytes with the queue URLs): list fewer streams by name (use "all"), or split the sources over two stacks`,
      ]);
    }

    this.planner = new BackupFunction(this, "Planner", {
      name: "planner",
      description: "flussonic-backup planner: queues the archive windows the backup is missing",
      // Manifests and catalogs are small JSON documents; 256 MB also gives the CPU to parse them.
      memorySize: 256,
      // A run never outlasts the interval between two runs (at most Lambda's 900 s): runs do not
      // pile up when Flussonic is slow to answer.
      timeout: Duration.seconds(Math.min(900, Math.max(60, scheduleSeconds(config.schedule)))),
      environment,
      code: props.functionCode ?? "bundle",
    });
    this.copiers = new Map(
      this.queues.map((q) => {
        const { name } = q.source;
        // Its own source only: the config of that source, its queues, its secret.
        const copierConfig = { ...runtimeConfig, sources: [q.source] };
        const copier = new BackupFunction(this, `Copier-${name}`, {
          name: "copier",
          description: `flussonic-backup copier of source ${name}: copies one archive window from Flussonic into S3`,
          roleScope: `only the queues, prefixes and secret of source ${name}`,
          // The esbuild bundle holds 112 MiB once loaded (90 without --enable-source-maps) and peaks at
          // 128-133 MiB copying the 150 MB reference window spooled at the whole cap (152 without the
          // flag below): more than 128 MB's 122 MiB. At 256 MB its CPU share (0.145 vCPU) needs 9-16 s
          // for the copy's 1.3-2.3 s of CPU, about the 12 s the window takes at the cap (functions/
          // config/limits.ts, bench figure 8): 128 MB would run out of memory for little saving.
          memorySize: 256,
          // A young generation of 1 MiB semi-spaces: 20 MiB less at the peak while a window downloads
          // at the cap (functions/config/limits.ts).
          nodeFlags: COPIER_NODE_FLAGS,
          timeout: COPIER_TIMEOUT,
          environment: {
            BACKUP_CONFIG: JSON.stringify(copierConfig),
            QUEUE_URLS: this.toJsonString({
              [name]: { url: q.queue.queueUrl, deadLetterUrl: q.deadLetterQueue.queueUrl },
            }),
          },
          code: props.functionCode ?? "bundle",
        });
        return [name, copier] as const;
      }),
    );

    // The planner: an EventBridge rule with the config's rate. A failed run is not retried: the next
    // scheduled run plans the same windows again.
    new events.Rule(this, "PlannerSchedule", {
      description: "Runs the flussonic-backup planner",
      schedule: events.Schedule.expression(config.schedule),
      targets: [new targets.LambdaFunction(this.planner.function, { retryAttempts: 0 })],
    });
    this.planner.function.configureAsyncInvoke({ retryAttempts: 0 });

    for (const q of this.queues) {
      q.queue.grantSendMessages(this.planner.function);
      q.connect(this.copiers.get(q.source.name)!.function);
    }
    this.grantBucketAccess(config);
    // The planner serves every source and reads every source's secret; a copier reads its source's.
    const secretByRef = new Map<string, secretsmanager.ISecret>();
    for (const [i, ref] of secrets.entries()) {
      const secret = secretOf(this, `Secret${i}`, ref);
      secretByRef.set(ref, secret);
      secret.grantRead(this.planner.role);
    }
    for (const source of config.sources) {
      const ref = authSecretReference(source.auth)?.secret;
      if (ref) secretByRef.get(ref)!.grantRead(this.copiers.get(source.name)!.role);
    }

    this.monitoring = new BackupMonitoring(this, "Monitoring", {
      config,
      planner: this.planner.function,
      copiers: [...this.copiers.values()].map((c) => c.function),
      queues: this.queues,
      plannerIntervalSeconds: scheduleSeconds(config.schedule),
    });

    const playback = config.deployment.playback;
    this.playback = playback
      ? new PlaybackDistribution(this, "Playback", {
          config,
          settings: playback,
          backupBucket: this.backupBucket,
          runtimeConfig: environment.BACKUP_CONFIG,
          monitoring: this.monitoring,
          code: props.functionCode ?? "bundle",
        })
      : undefined;

    // Signed exports and day proofs (docs/evidence.md): an Ed25519 key in KMS, so the same pure
    // Ed25519 check verifies its signatures and a local key's. Asymmetric keys cannot rotate
    // automatically (a new key would need a new public key at every verifier), and the key
    // outlives the stack: exports signed with it must stay checkable.
    if (config.deployment.exportSigningKey) {
      const signingKey = new kms.Key(this, "ExportSigningKey", {
        description: `flussonic-backup: signs exports and day proofs of s3://${config.bucket}`,
        keySpec: kms.KeySpec.ECC_NIST_EDWARDS25519,
        keyUsage: kms.KeyUsage.SIGN_VERIFY,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      new CfnOutput(this, "ExportSigningKeyArn", {
        description:
          "KMS key that signs exports; export its public key once: flussonic-backup export-key public --kms-key <this> --out key.pub.pem",
        value: signingKey.keyArn,
      });
      // The planner signs each stream's day proof with it (unless evidence.kmsKey names another).
      if (!config.evidence.kmsKey) {
        this.planner.function.addEnvironment(STACK_SIGNING_KEY_ENV, signingKey.keyArn);
        this.grantDayProofs(config, signingKey.keyArn);
      }
    }
    // A key the config names (by key ARN: a grant on an alias would need a condition instead).
    const named = config.evidence.kmsKey;
    if (named && /^arn:aws[a-z-]*:kms:[^:]+:\d{12}:key\//.test(named)) this.grantDayProofs(config, named);

    // Where to look after a deploy (docs/monitoring.md, "In AWS").
    new CfnOutput(this, "PlannerFunctionName", {
      description: "Invoke it to plan at once: aws lambda invoke --function-name <this> out.json",
      value: this.planner.function.functionName,
    });
    new CfnOutput(this, "AlarmTopicArn", {
      description: "Subscribe to the alarms here",
      value: this.monitoring.topic.topicArn,
    });
    new CfnOutput(this, "DashboardName", { value: this.monitoring.dashboard.dashboardName });
  }

  /**
   * The planner writes day proofs (functions/planner/day-proofs.ts): signs with the key (its public
   * key read once per run), writes each source's proofs and its note of the days proven, reads them
   * back (a proof `prove` made first stands).
   */
  private grantDayProofs(config: BackupConfig, keyArn: string): void {
    const role = this.planner.role;
    role.addToPolicy(
      new iam.PolicyStatement({ actions: ["kms:Sign", "kms:GetPublicKey"], resources: [keyArn] }),
    );
    const bucket = this.backupBucket.bucket;
    const bucketLogicalId = this.getLogicalId(bucket.node.defaultChild as s3.CfnBucket);
    for (const source of config.sources) {
      const prefix = `${config.prefix}.backup/proofs/${encodeKeySegment(source.name)}/`;
      Validations.of(role).acknowledge({
        id: `AwsSolutions-IAM5[Resource::<${bucketLogicalId}.Arn>/${prefix}*]`,
        reason: `Day proofs are keyed by stream and day, known at run time; the grant is limited to ${prefix}.`,
      });
      role.addToPolicy(
        new iam.PolicyStatement({
          actions: ["s3:GetObject", "s3:PutObject"],
          resources: [
            bucket.arnForObjects(`${prefix}*`),
            bucket.arnForObjects(provenKey(config.prefix, source.name)),
          ],
        }),
      );
    }
  }

  /**
   * Each function may touch only its own keys:
   * - planner: the bookkeeping under `{prefix}.backup/`: writes manifests (and their snapshots),
   *   catalogs and the index, deletes only the completion records it has folded into manifests,
   *   reads those and the pause switches under `control/`;
   * - each source's copier: that source's windows `{prefix}{source}/` and completion records
   *   `{prefix}.backup/records/{source}/`: read (a window already stored is recorded, not copied
   *   again), write, abort its multipart uploads; and read the source's pause switch
   *   `{prefix}.backup/control/{source}.json`.
   * All may list the bucket: S3 answers 404 for a missing key only to a caller allowed to list the
   * bucket, otherwise 403, and the pipeline relies on "not found" (a manifest not yet written, a
   * window not yet copied). S3 documents that 404 for s3:ListBucket on the bucket; a grant narrowed
   * by an s3:prefix condition is not documented to count (GET and HEAD carry no prefix), so the
   * listing is not narrowed. It shows key names only, no content.
   */
  private grantBucketAccess(config: BackupConfig): void {
    const bucket = this.backupBucket.bucket;
    const bucketLogicalId = this.getLogicalId(bucket.node.defaultChild as s3.CfnBucket);
    const objects = (role: iam.Role, prefix: string) => {
      // Object keys are only known at run time (stream names, dates): a key prefix is as narrow as
      // a grant can be. cdk-nag reports each prefix as a wildcard; each is acknowledged here.
      Validations.of(role).acknowledge({
        id: `AwsSolutions-IAM5[Resource::<${bucketLogicalId}.Arn>/${prefix}*]`,
        reason: `Keys under ${prefix} are created at run time (per stream and time); the grant is limited to that prefix.`,
      });
      return bucket.arnForObjects(`${prefix}*`);
    };
    const list = new iam.PolicyStatement({ actions: ["s3:ListBucket"], resources: [bucket.bucketArn] });
    this.planner.role.addToPolicy(list);
    // The planner writes manifests, catalogs and the fragment index, deletes only the completion
    // records it has folded into manifests, and reads those and the pause switches.
    const state = (part: string) => objects(this.planner.role, `${config.prefix}.backup/${part}/`);
    this.planner.role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["s3:GetObject"],
        resources: ["manifests", "manifest-snapshots", "catalog", "index", "records", "control"].map(state),
      }),
    );
    this.planner.role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["s3:PutObject"],
        resources: ["manifests", "manifest-snapshots", "catalog", "index"].map(state),
      }),
    );
    this.planner.role.addToPolicy(
      new iam.PolicyStatement({ actions: ["s3:DeleteObject"], resources: [state("records")] }),
    );
    for (const source of config.sources) {
      const copier = this.copiers.get(source.name)!.role;
      const src = encodeKeySegment(source.name);
      copier.addToPolicy(list);
      // Uploads left by a copier killed mid-copy are found and aborted by the next attempt.
      copier.addToPolicy(
        new iam.PolicyStatement({
          actions: ["s3:ListBucketMultipartUploads"],
          resources: [bucket.bucketArn],
        }),
      );
      copier.addToPolicy(
        new iam.PolicyStatement({
          actions: ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
          resources: [
            objects(copier, `${config.prefix}${src}/`),
            objects(copier, `${config.prefix}.backup/records/${src}/`),
          ],
        }),
      );
      // Holds (`flussonic-backup hold`): the source's holds, read after each window stored, and the
      // held copies of its windows stored inside one (with a legal hold when the hold asks for it).
      copier.addToPolicy(
        new iam.PolicyStatement({
          actions: ["s3:GetObject"],
          resources: [bucket.arnForObjects(holdsKey(config.prefix, source.name))],
        }),
      );
      copier.addToPolicy(
        new iam.PolicyStatement({
          actions: ["s3:GetObject", "s3:PutObject", "s3:PutObjectLegalHold"],
          resources: [objects(copier, `${config.prefix}.backup/held/${src}/`)],
        }),
      );
      // Holds from the source's episodes (sources[].episodes), made by the planner: the source's
      // holds read and written, its stored windows copied (read) to held copies (written, legal
      // hold when the bucket has Object Lock, which it reads), each new hold audited.
      if (source.episodes) {
        const planner = this.planner.role;
        planner.addToPolicy(
          new iam.PolicyStatement({
            actions: ["s3:GetObject", "s3:PutObject"],
            resources: [bucket.arnForObjects(holdsKey(config.prefix, source.name))],
          }),
        );
        planner.addToPolicy(
          new iam.PolicyStatement({
            actions: ["s3:GetObject"],
            resources: [objects(planner, `${config.prefix}${src}/`)],
          }),
        );
        planner.addToPolicy(
          new iam.PolicyStatement({
            actions: ["s3:GetObject", "s3:PutObject", "s3:PutObjectLegalHold"],
            resources: [objects(planner, `${config.prefix}.backup/held/${src}/`)],
          }),
        );
        planner.addToPolicy(
          new iam.PolicyStatement({
            actions: ["s3:PutObject"],
            resources: [objects(planner, `${config.prefix}.backup/audit/`)],
          }),
        );
        planner.addToPolicy(
          new iam.PolicyStatement({
            actions: ["s3:GetBucketObjectLockConfiguration"],
            resources: [bucket.bucketArn],
          }),
        );
      }
      // The operator's pause switch of the source (`flussonic-backup pause`): read only.
      copier.addToPolicy(
        new iam.PolicyStatement({
          actions: ["s3:GetObject"],
          resources: [bucket.arnForObjects(controlKey(config.prefix, source.name))],
        }),
      );
    }
    const key = this.backupBucket.encryptionKey;
    if (key) {
      for (const fn of [this.planner, ...this.copiers.values()]) {
        fn.role.addToPolicy(
          new iam.PolicyStatement({
            actions: ["kms:Decrypt", "kms:GenerateDataKey"],
            resources: [key.keyArn],
            // Only for S3's encryption of the bucket's objects, not for direct use of the key.
            conditions: { StringEquals: { "kms:ViaService": s3ViaService(this) } },
          }),
        );
      }
    }
  }
}

/** Seconds between two runs of a `rate(...)` schedule (the config validates the expression). */
export function scheduleSeconds(schedule: string): number {
  const m = /^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$/.exec(schedule);
  if (!m) throw new Error(`not a rate expression: ${schedule}`);
  const unit = m[2]!.startsWith("minute") ? 60 : m[2]!.startsWith("hour") ? 3600 : 86400;
  return Number(m[1]) * unit;
}

/**
 * The Secrets Manager secrets named by the config. In AWS a source's credentials come only from
 * there: a source whose auth names only an environment variable cannot be deployed.
 */
function secretReferences(config: BackupConfig, configFile: string): string[] {
  const problems: string[] = [];
  const refs = new Set<string>();
  config.sources.forEach((source, i) => {
    const ref = authSecretReference(source.auth);
    if (!ref) return;
    if (!ref.secret) {
      problems.push(
        `${configFile}: sources[${i}].auth.${ref.field}: is required to deploy to AWS: the name or ARN of a Secrets Manager secret that holds the ${ref.field === "passwordSecret" ? "password" : "token"} (environment variables are for local runs only)`,
      );
      return;
    }
    refs.add(ref.secret);
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return [...refs];
}

/** A secret by name or by complete ARN (`...:secret:<name>-<6 characters>`). */
function secretOf(scope: Construct, id: string, ref: string): secretsmanager.ISecret {
  if (!ref.startsWith("arn:")) return secretsmanager.Secret.fromSecretNameV2(scope, id, ref);
  return /-[A-Za-z0-9]{6}$/.test(ref)
    ? secretsmanager.Secret.fromSecretCompleteArn(scope, id, ref)
    : secretsmanager.Secret.fromSecretPartialArn(scope, id, ref);
}
