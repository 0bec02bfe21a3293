/**
 * S3 and SQS clients for the local runtime and the CLI: the standard AWS variables select the
 * endpoints (LocalStack, any S3/SQS endpoint, or AWS itself), or an embedded emulator is used.
 */
import { createHash } from "node:crypto";
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";

export interface Endpoints {
  region: string;
  s3Endpoint: string | undefined;
  sqsEndpoint: string | undefined;
  /** Static credentials for emulators; undefined: the SDK's default chain. */
  credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
  /** SQS only: other static credentials (the embedded queues beside a real S3 endpoint). */
  sqsCredentials?: { accessKeyId: string; secretAccessKey: string } | undefined;
  /** S3 features an S3-compatible store may lack, switched off (`run --no-s3-checksums` ...). */
  s3Without?: { checksums?: boolean; conditionalWrites?: boolean } | undefined;
  /** Milliseconds a socket may stay silent before the attempt fails (default SOCKET_IDLE_MS). */
  socketIdleMs?: number | undefined;
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

/**
 * The SDK waits for ever by default: an endpoint that accepts a connection and never answers would
 * hang a planner read or a HEAD. A socket idle for 2 minutes (longer than any SQS long poll, 20 s)
 * fails the attempt, and the SDK's retries take over.
 */
export const SOCKET_IDLE_MS = 120_000;

function socketTimeouts(e: Endpoints): { connectionTimeout: number; socketTimeout: number } {
  return { connectionTimeout: 10_000, socketTimeout: e.socketIdleMs ?? SOCKET_IDLE_MS };
}

export function createS3Client(e: Endpoints): S3Client {
  const client = new S3Client({
    region: e.region,
    ...(e.s3Endpoint ? { endpoint: e.s3Endpoint, forcePathStyle: true } : {}),
    ...(e.credentials ? { credentials: e.credentials } : {}),
    // Checksums only when asked for (the copier asks for SHA-256 on every part).
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    requestHandler: socketTimeouts(e),
  });
  const without = e.s3Without ?? {};
  if (without.checksums || without.conditionalWrites) {
    // For stores that refuse these: the copier's own SHA-256 of each window is still computed and
    // recorded (verify checks it); without conditional writes one planner per bucket is safe.
    client.middlewareStack.add(
      (next) => (args) => {
        const input = args.input as Record<string, unknown>;
        if (without.checksums) {
          // The copier's parts carry their SHA-256 computed already (functions/store/part-upload.ts).
          delete input.ChecksumAlgorithm;
          delete input.ChecksumSHA256;
          const parts = (input.MultipartUpload as { Parts?: Record<string, unknown>[] } | undefined)?.Parts;
          for (const p of parts ?? []) delete p.ChecksumSHA256;
        }
        if (without.conditionalWrites) {
          delete input.IfMatch;
          delete input.IfNoneMatch;
        }
        return next(args);
      },
      { step: "initialize", priority: "high", name: "flussonicBackupS3Without" },
    );
  }
  if (without.checksums) {
    // Operations that must carry a checksum (DeleteObjects) get the SDK's CRC32 header; stores
    // without the newer checksums take the Content-MD5 these operations had before instead.
    client.middlewareStack.add(
      (next) => (args) => {
        const request = args.request as { headers?: Record<string, string>; body?: unknown };
        const names = Object.keys(request.headers ?? {}).filter((h) =>
          /^x-amz-(checksum-|sdk-checksum-algorithm$)/i.test(h),
        );
        if (request.headers && names.length > 0) {
          for (const n of names) delete request.headers[n];
          const body = request.body;
          if (typeof body === "string" || body instanceof Uint8Array) {
            request.headers["content-md5"] = createHash("md5").update(body).digest("base64");
          }
        }
        return next(args);
      },
      { step: "build", priority: "low", name: "flussonicBackupContentMd5" },
    );
  }
  return client;
}

export function createSqsClient(e: Endpoints): SQSClient {
  return new SQSClient({
    region: e.region,
    // Emulators answer queue URLs with hosts that do not resolve (sqs.<region>.localhost):
    // with an explicit endpoint, send to it rather than to the queue URL's host.
    ...(e.sqsEndpoint ? { endpoint: e.sqsEndpoint, useQueueUrlAsEndpoint: false } : {}),
    ...((e.sqsCredentials ?? e.credentials) ? { credentials: e.sqsCredentials ?? e.credentials } : {}),
    requestHandler: socketTimeouts(e),
  });
}
