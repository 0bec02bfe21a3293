/**
 * An S3 or SQS endpoint that accepts connections and never answers must not hang a command: the
 * clients' sockets time out when idle (local/aws-clients.ts) and the call fails with an error.
 */
import { createServer, type Server, type Socket } from "node:net";
import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { GetQueueUrlCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createS3Client, createSqsClient, type Endpoints } from "../../local/aws-clients.ts";

let server: Server;
const sockets: Socket[] = [];
let endpoints: Endpoints;
/** What the SDK's request handler says when a socket stays idle past `socketIdleMs`. */
const IDLE_TIMEOUT = /TimeoutError|ETIMEDOUT|socket.*time|timed? ?out/i;

beforeAll(async () => {
  // Accepts, reads the request, never answers.
  server = createServer((socket) => {
    sockets.push(socket);
    socket.on("data", () => undefined);
    socket.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const url = `http://127.0.0.1:${port}`;
  endpoints = {
    region: "us-east-1",
    s3Endpoint: url,
    sqsEndpoint: url,
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    socketIdleMs: 300,
  };
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const describeError = (e: unknown) =>
  e instanceof Error
    ? `${e.name} ${(e as { code?: string }).code ?? ""} ${e.message}`
    : `not an error: ${String(e)}`;

describe("a silent endpoint", () => {
  it("fails an S3 call once its socket stays idle (after the SDK's retries), instead of waiting for ever", async () => {
    const s3 = createS3Client(endpoints);
    try {
      const before = sockets.length;
      const started = performance.now();
      const error = await s3.send(new HeadObjectCommand({ Bucket: "b", Key: "k" })).catch((e: unknown) => e);
      // Three attempts of 300 ms idle each plus the SDK's back-off: seconds, not the test timeout.
      expect(performance.now() - started).toBeLessThan(20_000);
      expect(describeError(error)).toMatch(IDLE_TIMEOUT);
      expect(sockets.length - before, "the SDK retried on new connections").toBeGreaterThan(1);
    } finally {
      s3.destroy();
    }
  });

  it("fails an SQS call the same way", async () => {
    const sqs = createSqsClient(endpoints);
    try {
      const started = performance.now();
      const error = await sqs.send(new GetQueueUrlCommand({ QueueName: "q" })).catch((e: unknown) => e);
      expect(performance.now() - started).toBeLessThan(20_000);
      expect(describeError(error)).toMatch(IDLE_TIMEOUT);
    } finally {
      sqs.destroy();
    }
  });
});
