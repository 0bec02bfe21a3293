/**
 * S3-compatible stores (MinIO, Ceph, Wasabi, Backblaze B2, Cloudflare R2, ...) may lack newer S3
 * features the backup uses: SHA-256 checksums of uploaded parts (`x-amz-checksum-sha256`) and
 * conditional writes of manifests (`If-Match` / `If-None-Match`). Before `run` starts against an
 * S3 endpoint other than AWS, it asks the store once, leaving nothing behind:
 * - a multipart upload with a SHA-256 checksummed part, aborted;
 * - a PutObject `If-Match` a tag no object has, on a key that does not exist: a store with
 *   conditional writes answers 404 or 412 and writes nothing; one that ignores the header writes the
 *   probe, which is deleted again and noted.
 * A refusal stops the run with one sentence naming the flag that turns the feature off.
 */
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  PutObjectCommand,
  type S3Client,
  S3ServiceException,
  UploadPartCommand,
} from "@aws-sdk/client-s3";

/** The store refused a feature: the message says which and the flag that turns it off. */
export class S3FeatureError extends Error {
  readonly code = "FB_S3_FEATURE";
}

export interface FeatureCheck {
  s3: S3Client;
  bucket: string;
  prefix: string;
  endpoint: string;
  /** Features already switched off by the user (not probed). */
  without: { checksums?: boolean | undefined; conditionalWrites?: boolean | undefined };
}

/** Notes for the user (features ignored by the store); throws an S3FeatureError on a refusal. */
export async function checkS3Features(c: FeatureCheck): Promise<string[]> {
  const notes: string[] = [];
  const key = `${c.prefix}.flussonic-backup-probe`;
  const where = `S3 endpoint ${c.endpoint}, bucket ${c.bucket}`;
  if (!c.without.checksums) {
    let uploadId: string | undefined;
    try {
      const created = await c.s3.send(
        new CreateMultipartUploadCommand({ Bucket: c.bucket, Key: key, ChecksumAlgorithm: "SHA256" }),
      );
      uploadId = created.UploadId;
      await c.s3.send(
        new UploadPartCommand({
          Bucket: c.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: 1,
          Body: "flussonic-backup probe",
          ChecksumAlgorithm: "SHA256",
        }),
      );
    } catch (error) {
      if (refused(error)) {
        throw new S3FeatureError(
          `${where}: refused SHA-256 upload checksums (x-amz-checksum-sha256: ${describe(error)}); run with --no-s3-checksums (each window's own SHA-256 is still recorded and checked by \`verify\`)`,
        );
      }
      throw error;
    } finally {
      if (uploadId) {
        await c.s3
          .send(new AbortMultipartUploadCommand({ Bucket: c.bucket, Key: key, UploadId: uploadId }))
          .catch(() => undefined);
      }
    }
  }
  if (!c.without.conditionalWrites) {
    try {
      await c.s3.send(
        new PutObjectCommand({
          Bucket: c.bucket,
          Key: key,
          // Not empty: for an empty string the SDK sends no Content-Length and prints "Are you
          // using a Stream of unknown length ...?" on stderr (test/e2e/endpoints.test.ts).
          Body: "flussonic-backup probe",
          IfMatch: '"00000000000000000000000000000000"',
        }),
      );
      // Written although no object had that tag: the store ignores conditional writes.
      await c.s3.send(new DeleteObjectCommand({ Bucket: c.bucket, Key: key }));
      notes.push(
        `${where}: ignores conditional writes (If-Match); manifests are written unconditionally, so run only one \`run\` against this bucket at a time (--no-conditional-writes silences this note)`,
      );
    } catch (error) {
      const status = error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
      if (status === 404 || status === 412) return notes;
      if (refused(error)) {
        throw new S3FeatureError(
          `${where}: refused conditional writes (If-Match: ${describe(error)}); run with --no-conditional-writes and run only one \`run\` against this bucket at a time`,
        );
      }
      throw error;
    }
  }
  return notes;
}

/** 501 Not Implemented, or 400 that a store answers for a header it does not know. */
function refused(error: unknown): boolean {
  if (!(error instanceof S3ServiceException)) return false;
  const status = error.$metadata.httpStatusCode;
  return status === 501 || (status === 400 && error.name !== "NoSuchBucket");
}

function describe(error: unknown): string {
  const e = error as S3ServiceException;
  return `HTTP ${e.$metadata?.httpStatusCode ?? "?"} ${e.name}`;
}
