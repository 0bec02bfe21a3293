import { PutObjectCommand, type PutObjectCommandInput } from "@aws-sdk/client-s3";

/**
 * The PutObject of every bookkeeping object (manifests, records, catalogs, index days, controls,
 * holds): JSON, with a CRC32 checksum, since S3 refuses an upload without one into a bucket with
 * Object Lock retention.
 */
export function jsonPut(
  input: Omit<PutObjectCommandInput, "ContentType" | "ChecksumAlgorithm">,
): PutObjectCommand {
  return new PutObjectCommand({ ...input, ContentType: "application/json", ChecksumAlgorithm: "CRC32" });
}
