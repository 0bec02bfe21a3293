/**
 * Decoded key frames kept in the bucket (playback's `ImageCache`, keys.ts `previewKey`): one
 * small JPEG object per key frame and size asked for, written once after its first decode and
 * read by every later request. A cache: an object missing or unreadable means decode again.
 */
import { GetObjectCommand, PutObjectCommand, type S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { previewKey } from "../domain/keys.ts";

export interface ImageSize {
  width: number;
  height: number;
}

export class S3ImageCache {
  readonly #s3: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;

  constructor(s3: S3Client, bucket: string, prefix: string) {
    this.#s3 = s3;
    this.#bucket = bucket;
    this.#prefix = prefix;
  }

  async get(source: string, stream: string, ms: number, size: ImageSize): Promise<Uint8Array | undefined> {
    try {
      const r = await this.#s3.send(
        new GetObjectCommand({
          Bucket: this.#bucket,
          Key: previewKey(this.#prefix, source, stream, ms, size),
        }),
      );
      return r.Body ? await r.Body.transformToByteArray() : undefined;
    } catch (error) {
      if (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404) return undefined;
      throw error;
    }
  }

  async put(source: string, stream: string, ms: number, size: ImageSize, jpeg: Uint8Array): Promise<void> {
    await this.#s3.send(
      new PutObjectCommand({
        Bucket: this.#bucket,
        Key: previewKey(this.#prefix, source, stream, ms, size),
        Body: jpeg,
        ContentType: "image/jpeg",
      }),
    );
  }
}
