/**
 * What the source sees: archive downloads running at once and bytes written to the sockets over
 * time, so caps can be checked from the media server's side (not from the copier's).
 */

const BUCKET_MS = 10;

export class DownloadMeter {
  active = 0;
  peakActive = 0;
  downloads = 0;
  bytesServed = 0;
  readonly #buckets = new Map<number, number>();
  #firstAt: number | undefined;
  #lastAt: number | undefined;

  readonly #clock: () => number;

  constructor(clock: () => number = () => performance.now()) {
    this.#clock = clock;
  }

  started(): void {
    this.active++;
    this.downloads++;
    this.peakActive = Math.max(this.peakActive, this.active);
  }

  ended(): void {
    this.active--;
  }

  sent(bytes: number): void {
    const at = this.#clock();
    this.bytesServed += bytes;
    const b = Math.floor(at / BUCKET_MS);
    this.#buckets.set(b, (this.#buckets.get(b) ?? 0) + bytes);
    this.#firstAt ??= at;
    this.#lastAt = at;
  }

  /** Highest bytes per second over any window of `windowMs` (10 ms resolution). */
  maxRate(windowMs: number): number {
    if (this.#buckets.size === 0) return 0;
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

  /** Average bytes per second from the first to the last byte sent. */
  averageRate(): number {
    if (this.#firstAt === undefined || this.#lastAt === undefined || this.#lastAt <= this.#firstAt) return 0;
    return this.bytesServed / ((this.#lastAt - this.#firstAt) / 1000);
  }

  /** Starts a new measurement (keeps `active`). */
  reset(): void {
    this.peakActive = this.active;
    this.downloads = 0;
    this.bytesServed = 0;
    this.#buckets.clear();
    this.#firstAt = undefined;
    this.#lastAt = undefined;
  }
}
