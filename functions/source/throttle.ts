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
  /**
   * Waits until `bytes` that will arrive at once (paid already: a whole window the kernels take in
   * one piece, from a source without Range) can land without a second second's worth in one second.
   * Resolves to `landed`, to call once the answer came (or the request failed): the next burst is
   * spaced from then.
   */
  spaceBurst?(bytes: number, signal?: AbortSignal): Promise<() => void>;
  /** The rate in force (bytes per second); absent: no cap (nothing to pace). */
  readonly bytesPerSecond?: number;
}

/**
 * Bursts are spaced over this span (plus a little for the request to land): the shortest span a
 * source's operator watches (1 s graphs), and the cap's own measure in bench figure 6.
 */
export const BURST_SPAN_MS = 1000;
/**
 * Bursts of a span may come to this many seconds' worth of the rate: above 1 so that the spacing
 * never holds back what the rate allows (small bursts, each paid, jitter around it), below 1.5 (the
 * worst second's goal), so that two bursts of nearly a second's worth each never share a span.
 */
const BURST_ALLOWANCE = 1.25;
/** A burst takes a few 10 ms ticks to be acknowledged whole (the source's meter counts in those). */
const BURST_LANDING_MS = 30;

interface Burst {
  /** When it landed (ms); undefined while its request is on its way. */
  at: number | undefined;
  bytes: number;
  landing: Promise<void>;
}

export const unlimited: Throttle = { take: async () => undefined };

export class TokenBucket implements Throttle {
  bytesPerSecond: number;
  burstBytes: number;
  #tokens: number;
  #last: number;
  /** Serialises waiters so that concurrent copiers share the rate fairly (first come, first served). */
  #queue: Promise<void> = Promise.resolve();
  /** Bursts let through (when, bytes), the last BURST_SPAN_MS of them; serialised like the payments. */
  #bursts: Burst[] = [];
  #burstQueue: Promise<void> = Promise.resolve();
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

  /**
   * Paid bursts each arrive at once: two paid back to back (two copies' windows of about a second's
   * worth each, `bytesPerSecond / bytes` apart) would land within one second, twice the cap in it.
   * So a burst waits until the bursts of the last second and it come to at most 1.25 seconds'
   * worth (or it is alone there, when it is bigger than that). Over ten seconds that also keeps the bytes
   * at the rate: no burst lands on the previous one's second.
   */
  spaceBurst(bytes: number, signal?: AbortSignal): Promise<() => void> {
    const turn = this.#burstQueue.then(async () => {
      const span = BURST_SPAN_MS + BURST_LANDING_MS;
      for (;;) {
        const now = this.#now();
        // Bursts still on their way count as landing now.
        this.#bursts = this.#bursts.filter((b) => b.at === undefined || b.at > now - span);
        const recent = this.#bursts.reduce((n, b) => n + b.bytes, 0);
        if (recent === 0 || recent + bytes <= BURST_ALLOWANCE * this.bytesPerSecond) break;
        // One on its way lands at a time not known yet: wait for it. Else the oldest leaves the
        // span first: wait for that, then look again.
        const flying = this.#bursts.find((b) => b.at === undefined);
        if (flying) await flying.landing;
        else await sleep(Math.min(...this.#bursts.map((b) => b.at!)) + span - now, signal);
      }
      let landed = (): void => undefined;
      const burst: Burst = {
        at: undefined,
        bytes,
        landing: new Promise<void>((resolve) => {
          landed = () => {
            burst.at ??= this.#now();
            resolve();
          };
        }),
      };
      this.#bursts.push(burst);
      // A request that never answers is not waited for beyond its burst's share of a span.
      setTimeout(landed, BURST_SPAN_MS).unref?.();
      return landed;
    });
    this.#burstQueue = turn.then(
      () => undefined,
      () => undefined,
    );
    return turn;
  }

  async #wait(bytes: number, signal?: AbortSignal): Promise<void> {
    this.#refill();
    this.#tokens -= bytes;
    if (this.#tokens >= 0) return;
    // Debt: wait until it is paid back at the configured rate.
    await sleep((-this.#tokens / this.bytesPerSecond) * 1000, signal);
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

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
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
