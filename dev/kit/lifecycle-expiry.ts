/**
 * A simulated lifecycle expiry: the retention rules the stack deploys (infra/backup-bucket.ts
 * `retentionRules`) applied to a bucket as if every object had aged past its rule, so a test sees
 * what the real rules would remove and what they leave (held copies, bookkeeping). S3's lifecycle
 * never removes an object under a legal hold; the embedded emulator refuses such a delete too.
 */
import {
  DeleteObjectCommand,
  ListObjectsV2Command,
  type S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import type { BackupConfig } from "../../functions/config/config.ts";
import { retentionRules } from "../../infra/backup-bucket.ts";

/** Deletes every object some retention rule covers; returns the keys it deleted. */
export async function expireAsLifecycle(s3: S3Client, config: BackupConfig): Promise<string[]> {
  const prefixes = retentionRules(config).map((r) => r.prefix);
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: config.bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? [])
      if (o.Key && prefixes.some((p) => o.Key!.startsWith(p))) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const deleted: string[] = [];
  for (const Key of keys) {
    try {
      await s3.send(new DeleteObjectCommand({ Bucket: config.bucket, Key }));
      deleted.push(Key);
    } catch (error) {
      // A legal hold: lifecycle leaves the object where it is.
      if (!(error instanceof S3ServiceException && error.$metadata.httpStatusCode === 403)) throw error;
    }
  }
  return deleted;
}
