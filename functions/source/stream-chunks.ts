/**
 * The chunks of a byte stream as they arrive, each once. Iterating a Readable with `for await`
 * reads whatever it has buffered in one piece, copying the chunks waiting into a new buffer
 * whenever the reader is behind (every read of a fast download): a second copy of the body and as
 * much garbage again. Here each chunk is handed on as the stream delivered it, and the stream is
 * paused while `limit` bytes wait (backpressure as with the iterator).
 */
import type { Readable } from "node:stream";
import { finished } from "node:stream/promises";

/** Bytes waiting before the stream is paused (its usual high-water mark). */
const LIMIT = 64 * 1024;

export async function* streamChunks(stream: Readable, limit = LIMIT): AsyncGenerator<Buffer> {
  const queue: Buffer[] = [];
  let head = 0;
  let queued = 0;
  let ended = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const onData = (chunk: Buffer) => {
    queue.push(chunk);
    queued += chunk.length;
    if (queued >= limit) stream.pause();
    wake?.();
  };
  // End, or the error (a premature close included) that stopped the stream.
  finished(stream).then(
    () => {
      ended = true;
      wake?.();
    },
    (error: unknown) => {
      failure = { error };
      wake?.();
    },
  );
  stream.on("data", onData);
  try {
    for (;;) {
      if (head < queue.length) {
        const chunk = queue[head]!;
        queue[head++] = undefined as unknown as Buffer;
        if (head === queue.length) {
          queue.length = 0;
          head = 0;
        }
        queued -= chunk.length;
        if (queued < limit && stream.isPaused()) stream.resume();
        yield chunk;
        continue;
      }
      if (failure) throw failure.error;
      if (ended) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
  } finally {
    stream.off("data", onData);
    stream.destroy();
  }
}
