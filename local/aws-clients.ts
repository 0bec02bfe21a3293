/**
 * S3 and SQS clients for the local runtime and the CLI: the standard AWS variables select the
 * endpoints (LocalStack, any S3/SQS endpoint, or AWS itself), or an embedded emulator is used.
 */
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";

export interface Endpoints {
  region: string;
  s3Endpoint: string | undefined;
  sqsEndpoint: string | undefined;
  /** Static credentials for emulators; undefined: the SDK's default chain. */
  credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
}

/** Endpoints from the standard AWS variables (read once here, at the edge). */
export function endpointsFromEnv(env: NodeJS.ProcessEnv): Endpoints {
  const common = env.AWS_ENDPOINT_URL;
  return {
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? "us-east-1",
    s3Endpoint: env.AWS_ENDPOINT_URL_S3 ?? common,
    sqsEndpoint: env.AWS_ENDPOINT_URL_SQS ?? common,
    credentials: undefined,
  };
}

export function createS3Client(e: Endpoints): S3Client {
  return new S3Client({
    region: e.region,
    ...(e.s3Endpoint ? { endpoint: e.s3Endpoint, forcePathStyle: true } : {}),
    ...(e.credentials ? { credentials: e.credentials } : {}),
    // Checksums only when asked for (the copier asks for SHA-256 on every part).
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}

export function createSqsClient(e: Endpoints): SQSClient {
  return new SQSClient({
    region: e.region,
    // Emulators answer queue URLs with hosts that do not resolve (sqs.<region>.localhost):
    // with an explicit endpoint, send to it rather than to the queue URL's host.
    ...(e.sqsEndpoint ? { endpoint: e.sqsEndpoint, useQueueUrlAsEndpoint: false } : {}),
    ...(e.credentials ? { credentials: e.credentials } : {}),
  });
}
