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

describe("a silent endpoint", () => {
  it("fails an S3 call once its socket stays idle (after the SDK's retries), instead of waiting for ever", async () => {
    const s3 = createS3Client(endpoints);
    try {
      const started = performance.now();
      await expect(s3.send(new HeadObjectCommand({ Bucket: "b", Key: "k" }))).rejects.toThrow();
      // Three attempts of 300 ms idle each plus the SDK's back-off: seconds, not the test timeout.
      expect(performance.now() - started).toBeLessThan(20_000);
      expect(sockets.length).toBeGreaterThan(0);
    } finally {
      s3.destroy();
    }
  });

  it("fails an SQS call the same way", async () => {
    const sqs = createSqsClient(endpoints);
    try {
      await expect(sqs.send(new GetQueueUrlCommand({ QueueName: "q" }))).rejects.toThrow();
    } finally {
      sqs.destroy();
    }
  });
});
