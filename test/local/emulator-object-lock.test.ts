/**
 * The embedded emulator's Object Lock (local/emulator-fixes.ts), answered as S3 answers: a bucket
 * made without Object Lock has no configuration (404) and refuses legal holds (400); one made with
 * it reports it, keeps an object's legal hold set by PutObjectLegalHold or by the header of a copy,
 * refuses to delete a held object (403, one by one or in a batch) and deletes it once lifted.
 */
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectLegalHoldCommand,
  GetObjectLockConfigurationCommand,
  PutObjectCommand,
  PutObjectLegalHoldCommand,
  type S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createS3Client } from "../../local/aws-clients.ts";
import { type EmbeddedEmulator, startEmbedded } from "../../local/embedded.ts";

let emulator: EmbeddedEmulator;
let s3: S3Client;
beforeAll(async () => {
  emulator = await startEmbedded(undefined);
  s3 = createS3Client(emulator.endpoints);
  await s3.send(new CreateBucketCommand({ Bucket: "plain-bucket" }));
  await s3.send(new CreateBucketCommand({ Bucket: "locked-bucket", ObjectLockEnabledForBucket: true }));
  for (const Bucket of ["plain-bucket", "locked-bucket"]) {
    await s3.send(new PutObjectCommand({ Bucket, Key: "a/window.mp4", Body: "bytes" }));
  }
});
afterAll(async () => {
  s3?.destroy();
  await emulator?.stop();
});

const status = (p: Promise<unknown>) =>
  p.then(
    () => 200,
    (e: unknown) => (e instanceof S3ServiceException ? `${e.$metadata.httpStatusCode} ${e.name}` : String(e)),
  );

describe("embedded emulator: Object Lock and legal holds", () => {
  it("a bucket without Object Lock: no configuration (404), legal holds refused (400)", async () => {
    expect(await status(s3.send(new GetObjectLockConfigurationCommand({ Bucket: "plain-bucket" })))).toBe(
      "404 ObjectLockConfigurationNotFoundError",
    );
    expect(
      await status(
        s3.send(
          new PutObjectLegalHoldCommand({
            Bucket: "plain-bucket",
            Key: "a/window.mp4",
            LegalHold: { Status: "ON" },
          }),
        ),
      ),
    ).toBe("400 InvalidRequest");
  });

  it("a bucket with Object Lock: held objects are kept from deletion until the hold is lifted", async () => {
    const got = await s3.send(new GetObjectLockConfigurationCommand({ Bucket: "locked-bucket" }));
    expect(got.ObjectLockConfiguration?.ObjectLockEnabled).toBe("Enabled");
    const Bucket = "locked-bucket";
    await s3.send(
      new PutObjectLegalHoldCommand({ Bucket, Key: "a/window.mp4", LegalHold: { Status: "ON" } }),
    );
    await s3.send(
      new CopyObjectCommand({
        Bucket,
        Key: "held/window.mp4",
        CopySource: `${Bucket}/a/window.mp4`,
        ObjectLockLegalHoldStatus: "ON",
      }),
    );
    for (const Key of ["a/window.mp4", "held/window.mp4"]) {
      expect((await s3.send(new GetObjectLegalHoldCommand({ Bucket, Key }))).LegalHold?.Status).toBe("ON");
      expect(await status(s3.send(new DeleteObjectCommand({ Bucket, Key })))).toBe("403 AccessDenied");
    }
    expect(
      await status(
        s3.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: [{ Key: "held/window.mp4" }] } })),
      ),
    ).toBe("403 AccessDenied");
    await s3.send(
      new PutObjectLegalHoldCommand({ Bucket, Key: "held/window.mp4", LegalHold: { Status: "OFF" } }),
    );
    expect(await status(s3.send(new GetObjectLegalHoldCommand({ Bucket, Key: "held/window.mp4" })))).toBe(
      "404 NoSuchObjectLockConfiguration",
    );
    expect(await status(s3.send(new DeleteObjectCommand({ Bucket, Key: "held/window.mp4" })))).toBe(200);
    expect(
      await status(
        s3.send(new PutObjectLegalHoldCommand({ Bucket, Key: "missing.mp4", LegalHold: { Status: "ON" } })),
      ),
    ).toBe("404 NoSuchKey");
  });
});
