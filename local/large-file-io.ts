/**
 * Whole-file reads and writes of any size, for the embedded emulator's file store. Node's
 * `writeFileSync` refuses a buffer of 2 GiB or more (ERR_OUT_OF_RANGE) and `readFileSync` a file of
 * 2 GiB or more (ERR_FS_FILE_TOO_LARGE), so a window of that size (a 30 Mbit/s stream's 600 s, or a
 * 5 Mbit/s stream's hour) could not be stored: the emulator failed CompleteMultipartUpload after it
 * had dropped the parts, and the SDK's retry got InvalidPart. These go through the file in slices.
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from "node:fs";

/** Bytes per read or write call: well below the 2 GiB the calls take. */
export const FILE_SLICE_BYTES = 1024 * 1024 * 1024;

/** Writes `body` as the whole content of `path` (created or truncated). */
export function writeWholeFile(path: string, body: Uint8Array, slice = FILE_SLICE_BYTES): void {
  const fd = openSync(path, "w");
  try {
    let at = 0;
    while (at < body.length) at += writeSync(fd, body, at, Math.min(slice, body.length - at));
  } finally {
    closeSync(fd);
  }
}

/** The whole content of `path`. */
export function readWholeFile(path: string, slice = FILE_SLICE_BYTES): Buffer {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    const body = Buffer.allocUnsafe(size);
    let at = 0;
    while (at < size) {
      const n = readSync(fd, body, at, Math.min(slice, size - at), at);
      if (n === 0) throw new Error(`${path} ended at byte ${at} of ${size} while it was read`);
      at += n;
    }
    return body;
  } finally {
    closeSync(fd);
  }
}
