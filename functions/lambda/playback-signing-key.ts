/**
 * CloudFormation custom resource of the playback stack (infra/playback-distribution.ts): the
 * CloudFront key pair that signs media URLs, made at deploy time so that the private key is never
 * in the template or the cloud assembly. On Create (and on an Update, when the secret holds no
 * key yet) it generates an RSA-2048 key pair and stores the private key (PEM) in the secret
 * `SecretId`; it returns the public key (PEM) as `PublicKey` for the CloudFront public key. An
 * Update keeps the stored key (its public key is derived again). Delete leaves the secret to its
 * own resource.
 */
import { createPublicKey, generateKeyPairSync } from "node:crypto";
import {
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import type { CloudFormationCustomResourceEvent } from "aws-lambda";

const sm = new SecretsManagerClient({});

/** The public key (PEM) of the key stored in `secretId`, generating and storing one when there is none. */
export async function ensureSigningKey(client: SecretsManagerClient, secretId: string): Promise<string> {
  let stored: string | undefined;
  try {
    stored = (await client.send(new GetSecretValueCommand({ SecretId: secretId }))).SecretString;
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
  }
  if (stored?.includes("PRIVATE KEY")) {
    return createPublicKey(stored).export({ type: "spki", format: "pem" }).toString();
  }
  const pair = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  await client.send(new PutSecretValueCommand({ SecretId: secretId, SecretString: pair.privateKey }));
  return pair.publicKey;
}

export const handler = async (event: CloudFormationCustomResourceEvent): Promise<void> => {
  const secretId = String(event.ResourceProperties.SecretId);
  let response: Record<string, unknown>;
  try {
    const publicKey = event.RequestType === "Delete" ? "" : await ensureSigningKey(sm, secretId);
    response = {
      Status: "SUCCESS",
      PhysicalResourceId: `playback-signing-key-${event.LogicalResourceId}`,
      Data: { PublicKey: publicKey },
    };
  } catch (error) {
    response = {
      Status: "FAILED",
      Reason: `the playback signing key could not be made in ${secretId}: ${error instanceof Error ? `${error.name}: ${error.message}` : "unknown error"}`,
      PhysicalResourceId:
        "PhysicalResourceId" in event
          ? event.PhysicalResourceId
          : `playback-signing-key-${event.LogicalResourceId}`,
    };
  }
  const body = Buffer.from(
    JSON.stringify({
      ...response,
      StackId: event.StackId,
      RequestId: event.RequestId,
      LogicalResourceId: event.LogicalResourceId,
    }),
  );
  // CloudFormation's response URL is a presigned S3 PUT: a body with no content type.
  const res = await fetch(event.ResponseURL, { method: "PUT", body, headers: { "Content-Type": "" } });
  if (!res.ok) throw new Error(`the answer to CloudFormation was refused: HTTP ${res.status}`);
};
