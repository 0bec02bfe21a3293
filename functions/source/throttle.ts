/**
 * Bandwidth throttle: a token bucket applied before each chunk is pulled from the socket, so the
 * source sees the capped rate (not just the uploader). One bucket is shared by all copiers of a
 * source in one process; in AWS each copier gets its share of the source's cap.
 */
export interface Throttle {
  /** Waits until `bytes` may be read. */
  take(bytes: number, signal?: AbortSignal): Promise<void>;
  /** Changes the rate (a bandwidth schedule's period begins). */
  setRate?(bytesPerSecond: number): void;
  /** Gives back bytes paid for that never came (a body shorter than what was paid up front). */
  refund?(bytes: number): void;
  /** The rate in force (bytes per second); absent: no cap (nothing to pace). */
  readonly bytesPerSecond?: number;
}

export const unlimited: Throttle = { take: async () => undefined };

export class TokenBucket implements Throttle {
  bytesPerSecond: number;
  burstBytes: number;
  #tokens: number;
  #last: number;
  /** Serialises waiters so that concurrent copiers share the rate fairly (first come, first served). */
  #queue: Promise<void> = Promise.resolve();
  readonly #now: () => number;

  constructor(bytesPerSecond: number, options: { burstBytes?: number; nowMs?: () => number } = {}) {
    this.bytesPerSecond = bytesPerSecond;
    // A small burst (50 ms worth, at least one 16 KiB read) keeps the rate smooth at every start.
    this.burstBytes = options.burstBytes ?? Math.max(16 * 1024, Math.round(bytesPerSecond / 20));
    this.#now = options.nowMs ?? (() => performance.now());
    this.#tokens = 0;
    this.#last = this.#now();
  }

  setRate(bytesPerSecond: number): void {
    if (bytesPerSecond === this.bytesPerSecond || bytesPerSecond <= 0) return;
    this.#refill();
    this.bytesPerSecond = bytesPerSecond;
    this.burstBytes = Math.max(16 * 1024, Math.round(bytesPerSecond / 20));
    this.#tokens = Math.min(this.#tokens, this.burstBytes);
  }

  refund(bytes: number): void {
    if (bytes <= 0) return;
    this.#refill();
    this.#tokens = Math.min(this.burstBytes, this.#tokens + bytes);
  }

  take(bytes: number, signal?: AbortSignal): Promise<void> {
    const turn = this.#queue.then(() => this.#wait(bytes, signal));
    this.#queue = turn.catch(() => undefined);
    return turn;
  }

  async #wait(bytes: number, signal?: AbortSignal): Promise<void> {
    this.#refill();
    this.#tokens -= bytes;
    if (this.#tokens >= 0) return;
    // Debt: wait until it is paid back at the configured rate.
    const waitMs = (-this.#tokens / this.bytesPerSecond) * 1000;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, waitMs);
      signal?.addEventListener(
        "abort",
        () => {
          clearTimeout(timer);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }

  #refill(): void {
    const now = this.#now();
    this.#tokens = Math.min(
      this.burstBytes,
      this.#tokens + ((now - this.#last) / 1000) * this.bytesPerSecond,
    );
    this.#last = now;
  }
}
