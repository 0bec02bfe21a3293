/**
 * Bytes per second as the copier reads them from the socket (after the throttle), in 10 ms buckets:
 * the client-side view, printed beside the source's own meter to separate what the throttle does
 * from what the kernel's receive buffer takes before anyone reads.
 */
const BUCKET_MS = 10;

export class ReadRate {
  bytes = 0;
  readonly #buckets = new Map<number, number>();

  add(bytes: number, atMs = performance.now()): void {
    this.bytes += bytes;
    const b = Math.floor(atMs / BUCKET_MS);
    this.#buckets.set(b, (this.#buckets.get(b) ?? 0) + bytes);
  }

  /** Highest bytes per second over any window of `windowMs`. */
  maxRate(windowMs: number): number {
    const keys = [...this.#buckets.keys()].sort((a, b) => a - b);
    const width = Math.max(1, Math.round(windowMs / BUCKET_MS));
    let best = 0;
    let sum = 0;
    let tail = 0;
    for (const k of keys) {
      sum += this.#buckets.get(k)!;
      while (keys[tail]! <= k - width) {
        sum -= this.#buckets.get(keys[tail]!)!;
        tail++;
      }
      best = Math.max(best, sum);
    }
    return best / ((width * BUCKET_MS) / 1000);
  }
}
