/**
 * For the operator-command tests: the harness's configuration written to a file, and the AWS
 * endpoint variables pointed at the harness's emulator, so the commands open the backup the way an
 * operator does against LocalStack or any S3/SQS endpoint (vitest runs each file in its own process).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Harness } from "./harness.ts";

/** Collects what a command writes. */
export class TextSink {
  text = "";
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}

/** Writes the harness config to a file, points the AWS variables at its emulator; returns the file. */
export function operatorTarget(h: Harness): string {
  const file = join(h.dir, "config.json");
  writeFileSync(file, JSON.stringify(h.config));
  const e = h.emulator.endpoints;
  process.env.AWS_ENDPOINT_URL_S3 = e.s3Endpoint;
  process.env.AWS_ENDPOINT_URL_SQS = e.sqsEndpoint;
  process.env.AWS_REGION = e.region;
  process.env.AWS_ACCESS_KEY_ID = e.credentials?.accessKeyId ?? "embedded";
  process.env.AWS_SECRET_ACCESS_KEY = e.credentials?.secretAccessKey ?? "embedded";
  return file;
}
