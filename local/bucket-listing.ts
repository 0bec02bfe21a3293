/**
 * Listing stored objects under a prefix. Only operator commands list (verify reads every object
 * of a stream anyway, status lists the small manifests folder); the planner never does.
 */
import { ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { storeError } from "../functions/adapters/backup-store.ts";

export interface ListedObject {
  key: string;
  size: number;
}

/** Every object under `prefix`, page by page (1000 keys at a time in memory). */
export async function* listObjects(
  s3: S3Client,
  bucket: string,
  prefix: string,
): AsyncGenerator<ListedObject> {
  let token: string | undefined;
  const seen = new Set<string>();
  do {
    const page = await s3
      .send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }))
      .catch((error: unknown) => {
        throw storeError(error, `list ${prefix}`);
      });
    for (const o of page.Contents ?? []) {
      if (!o.Key || seen.has(o.Key)) continue;
      seen.add(o.Key);
      yield { key: o.Key, size: o.Size ?? 0 };
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}
