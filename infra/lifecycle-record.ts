/**
 * The lifecycle record: the S3 expiry (days) of every prefix as the last synthesized stack set it,
 * kept in a file next to the config and committed with it. A synth cannot see the deployed bucket;
 * with this record it can tell when a config change would shorten an expiry (a 90-day stream
 * removed from the list, a source switched to "all") and refuse unless the operator confirms, and
 * it can keep the rule of a prefix no source covers any more (a source removed or renamed).
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { ConfigError } from "../functions/config/config.ts";

/** `config/prod.jsonc` → `config/prod.lifecycle.json`. */
export function lifecycleRecordFile(configFile: string): string {
  return `${configFile.replace(/\.jsonc?$/, "")}.lifecycle.json`;
}

/**
 * The expiries recorded for `bucket`, or undefined when there is no record (a first synth) or it
 * is of another bucket (the old bucket is retained with its own rules; this stack no longer
 * manages it).
 */
export function readLifecycleRecord(file: string, bucket: string): Record<string, number> | undefined {
  if (!existsSync(file)) return undefined;
  let data: { bucket?: unknown; expirationDays?: unknown };
  try {
    data = JSON.parse(readFileSync(file, "utf8")) as typeof data;
  } catch (error) {
    throw new ConfigError([
      `${file}: the lifecycle record is not valid JSON (${(error as Error).message}): restore it from version control, or delete it to record anew`,
    ]);
  }
  if (data.bucket !== bucket) return undefined;
  const days = data.expirationDays;
  if (
    typeof days !== "object" ||
    days === null ||
    Object.values(days).some((d) => typeof d !== "number" || !(d > 0))
  ) {
    throw new ConfigError([
      `${file}: expirationDays: expected an object of key prefixes and days: restore it from version control, or delete it to record anew`,
    ]);
  }
  return days as Record<string, number>;
}

/** The Object Lock default retention a bucket was synthesized with; null: none. */
export type RecordedObjectLock = { mode: "GOVERNANCE" | "COMPLIANCE"; days: number } | null;

/**
 * The Object Lock setting recorded for `bucket`: undefined when there is no record or the record
 * predates this field (a bucket deployed before Object Lock became the default: treated as without).
 */
export function readRecordedObjectLock(file: string, bucket: string): RecordedObjectLock | undefined {
  if (readLifecycleRecord(file, bucket) === undefined) return undefined;
  const data = JSON.parse(readFileSync(file, "utf8")) as { objectLock?: RecordedObjectLock };
  return data.objectLock;
}

/** Writes the record of a synthesized stack. */
export function writeLifecycleRecord(
  file: string,
  bucket: string,
  expirationDays: Record<string, number>,
  objectLock: RecordedObjectLock = null,
): void {
  const sorted = Object.fromEntries(
    Object.entries(expirationDays).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  const record = {
    "//": "Written by `cdk synth`/`cdk deploy` (infra/app.ts): the S3 expiry of each key prefix in the last synthesized stack. Commit it with the config: a synth that would shorten one of these expiries stops unless -c allowShorterRetention=<prefix,...> confirms it, and a prefix no source covers any more keeps its rule.",
    bucket,
    expirationDays: sorted,
    // CloudFormation replaces a bucket whose ObjectLockEnabled changes: a later synth keeps this.
    objectLock,
  };
  writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
}
