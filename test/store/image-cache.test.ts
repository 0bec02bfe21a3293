/**
 * The decoded key frames kept in the bucket (store/image-cache.ts) against the embedded emulator:
 * a miss is undefined, a put is read back byte for byte under keys.ts `previewKey`
 * (`.backup/previews/{source}/{stream}/{day}/{ms}-{W}x{H}.jpg`, names encoded as every key is), and
 * another size or key frame is another object.
 */
import { CreateBucketCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3ImageCache } from "../../functions/store/image-cache.ts";
import { createS3Client } from "../../local/aws-clients.ts";
import { type EmbeddedEmulator, startEmbedded } from "../../local/embedded.ts";

let emulator: EmbeddedEmulator;
let s3: ReturnType<typeof createS3Client>;

beforeAll(async () => {
  emulator = await startEmbedded(undefined);
  s3 = createS3Client(emulator.endpoints);
  await s3.send(new CreateBucketCommand({ Bucket: "cache" }));
});

afterAll(async () => {
  s3?.destroy();
  await emulator?.stop();
});

describe("S3ImageCache", () => {
  it("a miss is undefined; a put is read back under .backup/previews/{source}/{stream}/{day}/{ms}-{W}x{H}.jpg; sizes and key frames are apart", async () => {
    const cache = new S3ImageCache(s3, "cache", "flussonic/");
    const ms = 1_764_590_400_000; // 2025-12-01T12:00:00Z
    const jpeg = new Uint8Array([0xff, 0xd8, 1, 2, 3, 0xff, 0xd9]);
    expect(await cache.get("s1", "site/cam 1", ms, { width: 320, height: 180 })).toBeUndefined();
    await cache.put("s1", "site/cam 1", ms, { width: 320, height: 180 }, jpeg);
    expect(await cache.get("s1", "site/cam 1", ms, { width: 320, height: 180 })).toEqual(jpeg);
    expect(await cache.get("s1", "site/cam 1", ms, { width: 160, height: 90 })).toBeUndefined();
    expect(await cache.get("s1", "site/cam 1", ms + 2000, { width: 320, height: 180 })).toBeUndefined();
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: "cache" }));
    expect(listed.Contents?.map((o) => o.Key)).toEqual([
      "flussonic/.backup/previews/s1/site%2Fcam%201/2025-12-01/1764590400000-320x180.jpg",
    ]);
  });
});
