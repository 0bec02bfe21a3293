/**
 * The backup bucket: private, TLS only, encrypted, versioned, with lifecycle rules that keep each
 * stream's archive exactly as long as the config says (plus a margin) and clean up what the
 * pipeline leaves behind (old versions, incomplete multipart uploads).
 */
import { Annotations, Duration, RemovalPolicy, Stack, Validations } from "aws-cdk-lib";
import * as kms from "aws-cdk-lib/aws-kms";
import * as s3 from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";
import {
  type BackupConfig,
  ConfigError,
  type DeploymentConfig,
  listedStreams,
} from "../functions/config/config.ts";
import { encodeKeySegment } from "../functions/domain/names.ts";
import type { RecordedObjectLock } from "./lifecycle-record.ts";

/** Days an old version of a bookkeeping object is kept (windows: `noncurrentVersionDays`). */
const BOOKKEEPING_VERSION_DAYS = 3;

/** S3 accepts at most this many rules in one lifecycle configuration. */
const MAX_LIFECYCLE_RULES = 1000;

/**
 * Lifecycle expiry in days for a retention: whole days, plus one. A window is stored whole and its
 * last seconds stay inside the retention up to maxWindowSeconds after its first; S3 counts from the
 * object's creation, rounds to the next midnight UTC and expires asynchronously. One spare day
 * means a window is never removed while any of its seconds is still inside the retention.
 */
export function expiryDays(retentionDays: number): number {
  return Math.ceil(retentionDays) + 1;
}

/** One retention rule, before it becomes an S3 lifecycle rule (pure: tested on its own). */
export interface RetentionRule {
  id: string;
  prefix: string;
  expirationDays: number;
  /** Archive windows may move to a cheaper class; bookkeeping (catalogs) stays where it is. */
  archive: boolean;
}

/**
 * Expiry rules from the config's retentionDays. S3 applies every matching rule and the earliest
 * expiry wins, so a rule for a whole source must never be shorter than one of its streams:
 * - streams "all": one rule for the source's folder (every stream there uses the source retention);
 * - a list of streams: one rule for the source's folder with the longest retention of the source
 *   (a backstop for streams removed from the list later), and one rule per stream whose own
 *   retention is shorter than that.
 * The same rules apply to the per-day catalogs under `.backup/catalog/` and fragment indexes under
 * `.backup/index/`, which describe those windows and are written after them, so they never expire
 * before their windows (and never list, for long, windows that have).
 */
export function retentionRules(config: BackupConfig): RetentionRule[] {
  const rules: RetentionRule[] = [];
  for (const source of config.sources) {
    const src = encodeKeySegment(source.name);
    const streams = listedStreams(source);
    const sourceDays = Math.max(
      expiryDays(source.retentionDays),
      ...(streams ?? []).map((s) => expiryDays(s.retentionDays)),
    );
    const folders = [
      { kind: "windows", prefix: `${config.prefix}${src}/`, archive: true },
      { kind: "catalog", prefix: `${config.prefix}.backup/catalog/${src}/`, archive: false },
      { kind: "index", prefix: `${config.prefix}.backup/index/${src}/`, archive: false },
    ];
    for (const f of folders) {
      rules.push({
        id: `${f.kind}-${source.name}`,
        prefix: f.prefix,
        expirationDays: sourceDays,
        archive: f.archive,
      });
      for (const [n, stream] of (streams ?? []).entries()) {
        const days = expiryDays(stream.retentionDays);
        if (days >= sourceDays) continue;
        // Rule ids are at most 255 characters and unique: long names are cut and numbered.
        const id = `${f.kind}-${source.name}-${encodeKeySegment(stream.name)}`;
        rules.push({
          id: id.length <= 255 ? id : `${id.slice(0, 240)}-${n}`,
          prefix: `${f.prefix}${encodeKeySegment(stream.name)}/`,
          expirationDays: days,
          archive: f.archive,
        });
      }
    }
  }
  return rules;
}

/** Days until objects under `prefix` expire: the earliest of the rules that match it (S3's way). */
export function effectiveExpiryDays(rules: readonly RetentionRule[], prefix: string): number | undefined {
  const matching = rules.filter((r) => prefix.startsWith(r.prefix)).map((r) => r.expirationDays);
  return matching.length > 0 ? Math.min(...matching) : undefined;
}

/** What the last synth set (the lifecycle record, infra/lifecycle-record.ts) and what may change. */
export interface PreviousExpiries {
  /** Expiry in days per key prefix, as the last synthesized stack set it. */
  expirationDays: Record<string, number>;
  /** Where the record is kept (named in messages). */
  recordFile: string;
  /** Prefixes whose expiry may become shorter (`-c allowShorterRetention=<prefix,...>`). */
  allowShorter: readonly string[];
}

/**
 * Retention rules that never shorten an expiry silently. For every prefix the last synth gave an
 * expiry: when no rule covers it any more (its source removed or renamed, or the key prefix
 * changed), its rule is kept, so what is stored there still expires as it would have (not never);
 * when the new rules would expire it sooner (a long-retention stream removed from the list, a
 * source switched to "all", a retention lowered), the synth stops with the prefix and the days,
 * unless `allowShorter` names the prefix. A longer expiry needs no confirmation.
 */
export function guardedRetentionRules(
  config: BackupConfig,
  configFile: string,
  previous: PreviousExpiries | undefined,
): RetentionRule[] {
  const rules = retentionRules(config);
  if (!previous) return rules;
  const kept: RetentionRule[] = [];
  const refused: string[] = [];
  for (const [prefix, days] of Object.entries(previous.expirationDays)) {
    const now = effectiveExpiryDays(rules, prefix);
    if (now === undefined) {
      const id = `kept-${prefix}`;
      kept.push({
        id: id.length <= 255 ? id : `${id.slice(0, 240)}-${kept.length}`,
        prefix,
        expirationDays: days,
        archive: !/(^|\/)\.backup\/(catalog|index)\//.test(prefix),
      });
    } else if (now < days && !previous.allowShorter.includes(prefix)) {
      refused.push(prefix);
    }
  }
  if (refused.length > 0) {
    throw new ConfigError([
      ...refused.map(
        (prefix) =>
          `${configFile}: this config expires s3://${config.bucket}/${prefix} after ${effectiveExpiryDays(rules, prefix)} days instead of ${previous.expirationDays[prefix]} (recorded in ${previous.recordFile}): the deploy would delete the objects there that are between those ages; keep the longer retentionDays (a stream removed from the list or a switch to "all" takes its retention away), or confirm the shorter expiry with -c allowShorterRetention=${prefix}`,
      ),
      ...(refused.length > 1
        ? [`To confirm all of them: cdk deploy -c allowShorterRetention=${refused.join(",")}`]
        : []),
    ]);
  }
  return [...rules, ...kept];
}

/** What a previous synth made of the bucket (the lifecycle record). */
export interface ExistingBucket {
  /** Its Object Lock default retention; null: made without Object Lock (or before it was recorded). */
  objectLock: RecordedObjectLock;
}

/**
 * Default Object Lock retention in days: the shortest retention of any stream, rounded up. A
 * longer one would keep every expired window of that stream as a locked old version until then.
 */
export function defaultObjectLockDays(config: BackupConfig): number {
  const days = config.sources.flatMap((s) => [
    s.retentionDays,
    ...(listedStreams(s) ?? []).map((st) => st.retentionDays),
  ]);
  return Math.max(1, Math.ceil(Math.min(...days)));
}

/**
 * The bucket's Object Lock: as the config says; by default GOVERNANCE for a new bucket and, for a
 * bucket made before, what it was made with. CloudFormation replaces a bucket whose
 * ObjectLockEnabled changes (the fixed bucket name makes that update fail), so a bucket made
 * without Object Lock keeps none unless the config asks for it.
 */
export function objectLockOf(config: BackupConfig, existing: ExistingBucket | undefined): RecordedObjectLock {
  const asked = config.deployment.objectLock;
  if (asked?.mode === "NONE") return null;
  const days = asked?.days ?? defaultObjectLockDays(config);
  if (asked) return { mode: asked.mode, days };
  if (!existing) return { mode: "GOVERNANCE", days };
  return existing.objectLock ? { mode: existing.objectLock.mode, days } : null;
}

export interface BackupBucketProps {
  config: BackupConfig;
  /** The config file, named in messages. */
  configFile?: string;
  /** The expiries of the last synth; without them (a first synth, tests) nothing is compared. */
  previousExpiries?: PreviousExpiries | undefined;
  /** The bucket as a previous synth made it; undefined: a new bucket. */
  existingBucket?: ExistingBucket | undefined;
}

/** The bucket of the backup, with its access-log bucket. */
export class BackupBucket extends Construct {
  readonly bucket: s3.IBucket;
  /** The log bucket: S3 server access logs, and CloudFront's standard logs with playback. */
  readonly accessLogs: s3.Bucket;
  readonly encryptionKey: kms.IKey | undefined;
  /** The expiry in days of every prefix with a retention rule (what the lifecycle record keeps). */
  readonly expirationDays: Record<string, number>;
  /** The Object Lock default retention the bucket has (what the lifecycle record keeps). */
  readonly objectLock: RecordedObjectLock;

  constructor(scope: Construct, id: string, props: BackupBucketProps) {
    super(scope, id);
    const { config } = props;
    const deployment = config.deployment;

    // Log delivery is allowed by a bucket policy rather than the legacy LogDeliveryWrite ACL, so
    // both buckets keep ACLs disabled (bucket owner enforced).
    this.node.setContext("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", true);
    // Who read or wrote which key, for a security review or an incident: S3 server access logs.
    // The log bucket takes S3-managed keys only (S3 log delivery cannot use KMS keys).
    const accessLogs = new s3.Bucket(this, "AccessLogs", {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ id: "expire-access-logs", expiration: Duration.days(365) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.accessLogs = accessLogs;
    Validations.of(accessLogs).acknowledge({
      id: "AwsSolutions-S1",
      reason: "This is the access-log bucket itself: logging it into itself would loop.",
    });

    this.encryptionKey = deployment.kmsKeyArn
      ? kms.Key.fromKeyArn(this, "Key", deployment.kmsKeyArn)
      : undefined;
    const retention = guardedRetentionRules(config, props.configFile ?? "config", props.previousExpiries);
    this.expirationDays = Object.fromEntries(
      retention.map((r) => [r.prefix, effectiveExpiryDays(retention, r.prefix)!]),
    );
    const rules = lifecycleRules(retention, config, deployment);
    if (rules.length > MAX_LIFECYCLE_RULES) {
      throw new Error(
        `the config needs ${rules.length} S3 lifecycle rules (one per source and per stream with its own retentionDays), more than the ${MAX_LIFECYCLE_RULES} S3 allows: give fewer streams their own retentionDays`,
      );
    }

    this.objectLock = objectLockOf(config, props.existingBucket);
    if (!this.objectLock && !deployment.objectLock) {
      Annotations.of(this).addWarning(
        `s3://${config.bucket} was deployed without Object Lock and keeps none (CloudFormation would replace the bucket to turn it on): docs/aws.md ("Object Lock") says how to opt in`,
      );
    }
    this.bucket = new s3.Bucket(this, "Bucket", {
      bucketName: config.bucket,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      ...(this.encryptionKey
        ? { encryption: s3.BucketEncryption.KMS, encryptionKey: this.encryptionKey, bucketKeyEnabled: true }
        : { encryption: s3.BucketEncryption.S3_MANAGED }),
      versioned: true,
      ...(this.objectLock
        ? {
            objectLockEnabled: true,
            objectLockDefaultRetention:
              this.objectLock.mode === "COMPLIANCE"
                ? s3.ObjectLockRetention.compliance(Duration.days(this.objectLock.days))
                : s3.ObjectLockRetention.governance(Duration.days(this.objectLock.days)),
          }
        : {}),
      lifecycleRules: rules,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: `${config.bucket}/`,
      // The backup outlives the stack: deleting the stack leaves the bucket and its objects.
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }
}

const STORAGE_CLASSES: Record<
  NonNullable<DeploymentConfig["storageClassTransition"]>["storageClass"],
  s3.StorageClass
> = {
  STANDARD_IA: s3.StorageClass.INFREQUENT_ACCESS,
  ONEZONE_IA: s3.StorageClass.ONE_ZONE_INFREQUENT_ACCESS,
  INTELLIGENT_TIERING: s3.StorageClass.INTELLIGENT_TIERING,
  GLACIER_IR: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
  GLACIER: s3.StorageClass.GLACIER,
  DEEP_ARCHIVE: s3.StorageClass.DEEP_ARCHIVE,
};

function lifecycleRules(
  retention: readonly RetentionRule[],
  config: BackupConfig,
  deployment: DeploymentConfig,
): s3.LifecycleRule[] {
  const transition = deployment.storageClassTransition;
  const rules: s3.LifecycleRule[] = retention.map((r) => ({
    id: r.id,
    prefix: r.prefix,
    expiration: Duration.days(r.expirationDays),
    // S3 refuses a transition that is not before the expiry; a window that expires first stays put.
    ...(r.archive && transition && transition.afterDays < r.expirationDays
      ? {
          transitions: [
            {
              storageClass: STORAGE_CLASSES[transition.storageClass],
              transitionAfter: Duration.days(transition.afterDays),
            },
          ],
        }
      : {}),
  }));
  // Decoded preview pictures (`.backup/previews/`, a cache the playback function fills on request)
  // go with the longest-kept windows: playback never serves one of an expired window, and one
  // removed too early is decoded again on the next request.
  if (retention.length > 0) {
    rules.push({
      id: "previews-cache",
      prefix: `${config.prefix}.backup/previews/`,
      expiration: Duration.days(Math.max(...retention.map((r) => r.expirationDays))),
    });
  }
  rules.push({
    id: "housekeeping",
    ...(config.prefix ? { prefix: config.prefix } : {}),
    // Expired windows, rewritten manifests and compacted records leave old versions behind: they are
    // kept for a while (an undo window) and then removed, with the delete markers left over.
    noncurrentVersionExpiration: Duration.days(deployment.noncurrentVersionDays),
    expiredObjectDeleteMarker: true,
    // The copier aborts a failed upload itself; this is the safety net for a copier killed mid-way.
    abortIncompleteMultipartUploadAfter: Duration.days(1),
  });
  // Bookkeeping (manifests, catalogs, indexes, records) is rewritten many times a day and can be
  // rebuilt from the windows (`rebuild`, `reindex`): its old versions go sooner. S3 applies the
  // shorter of two overlapping noncurrent expirations.
  if (deployment.noncurrentVersionDays > BOOKKEEPING_VERSION_DAYS) {
    rules.push({
      id: "bookkeeping-versions",
      prefix: `${config.prefix}.backup/`,
      noncurrentVersionExpiration: Duration.days(BOOKKEEPING_VERSION_DAYS),
    });
  }
  // The manifest snapshots are a cache of the manifests (rewritten by every planner run, ~15 MB at
  // 10,000 streams): an old version is worth nothing, so it goes after a day, S3's shortest.
  rules.push({
    id: "manifest-snapshot-versions",
    prefix: `${config.prefix}.backup/manifest-snapshots/`,
    noncurrentVersionExpiration: Duration.days(1),
  });
  return rules;
}

/** The `kms:ViaService` value of S3 in the stack's region: the key is used only through S3. */
export function s3ViaService(scope: Construct): string {
  return `s3.${Stack.of(scope).region}.amazonaws.com`;
}
