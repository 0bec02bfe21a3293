/**
 * The lean SendMessageBatch signs as the AWS SDK's own SigV4 signer does for SQS
 * (@smithy/signature-v4, service "sqs", the JSON protocol's headers): same signature with and
 * without a session token. The emulator does not check signatures; AWS does.
 */
import { SignatureV4 } from "@smithy/signature-v4";
import { describe, expect, it } from "vitest";
import { signSqsRequest, sqsSigningKey } from "../../functions/queue/lean-sqs.ts";
import { createSqsClient } from "../../local/aws-clients.ts";

const sha256 = createSqsClient({
  region: "eu-west-1",
  s3Endpoint: undefined,
  sqsEndpoint: undefined,
  credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" },
}).config.sha256;

describe("signSqsRequest", () => {
  const date = new Date(Date.UTC(2026, 11, 2, 1, 2, 3));
  const amzDate = "20261202T010203Z";
  const body = JSON.stringify({
    QueueUrl: "https://sqs.eu-west-1.amazonaws.com/123456789012/flussonic-backup-src1.fifo",
    Entries: [{ Id: "0", MessageBody: '{"stream":"café"}', MessageGroupId: "copies" }],
  });
  for (const token of [undefined, "FwoGZXIvYXdzEBYaDExampleToken=="]) {
    it(`SendMessageBatch${token ? " with a session token" : ""}: the SDK signer's signature`, async () => {
      const host = "sqs.eu-west-1.amazonaws.com";
      const ours = new Map(
        signSqsRequest({
          path: "/",
          host,
          target: "AmazonSQS.SendMessageBatch",
          body,
          amzDate,
          region: "eu-west-1",
          accessKeyId: "AKIDEXAMPLE",
          sessionToken: token,
          signingKey: sqsSigningKey("secret", amzDate.slice(0, 8), "eu-west-1"),
        }),
      );
      const signer = new SignatureV4({
        credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret", sessionToken: token },
        region: "eu-west-1",
        service: "sqs",
        sha256,
      });
      const signed = await signer.sign(
        {
          method: "POST",
          protocol: "https:",
          hostname: host,
          path: "/",
          query: {},
          headers: {
            host,
            "content-type": "application/x-amz-json-1.0",
            "x-amz-target": "AmazonSQS.SendMessageBatch",
          },
          body,
        },
        { signingDate: date },
      );
      expect(ours.get("x-amz-date")).toBe(signed.headers["x-amz-date"]);
      expect(ours.get("content-type")).toBe("application/x-amz-json-1.0");
      expect(ours.get("x-amz-target")).toBe("AmazonSQS.SendMessageBatch");
      expect(ours.get("authorization")).toBe(signed.headers.authorization);
      if (token) expect(ours.get("x-amz-security-token")).toBe(token);
    });
  }
});
