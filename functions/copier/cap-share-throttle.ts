/**
 * The throttle of a copier that reads alone (a Lambda invocation: nothing else in its process reads
 * from the source): each copy's rate is its message's share of the source's cap in force, cap /
 * copies while the planner's span for it lasts (domain/cap-share.ts), cap / maxConcurrentCopies
 * otherwise. The rate is looked at again before every payment, so a copy that outlives its span
 * falls back to the default share at once.
 */
import { copiesSharingAt } from "../domain/cap-share.ts";
import { type Throttle, TokenBucket } from "../source/throttle.ts";
import type { CopyMessage } from "./copy-window.ts";

export class CapShareThrottle {
  readonly #bucket: TokenBucket;
  readonly #maxConcurrentCopies: number;
  readonly #now: () => number;
  #capBytesPerSecond: number;

  /** `now`: unix seconds (the clock the planner's spans are in). */
  constructor(capMbps: number, maxConcurrentCopies: number, now: () => number = () => Date.now() / 1000) {
    this.#capBytesPerSecond = (capMbps * 1_000_000) / 8;
    this.#maxConcurrentCopies = maxConcurrentCopies;
    this.#now = now;
    this.#bucket = new TokenBucket(this.#capBytesPerSecond / maxConcurrentCopies);
  }

  /** The source's cap in force changed (a bandwidth schedule's period). */
  setCap(capMbps: number): void {
    this.#capBytesPerSecond = (capMbps * 1_000_000) / 8;
  }

  /** Bytes per second a copy of `m` may read at now. */
  rateOf(m: Pick<CopyMessage, "copies" | "copiesUntil">): number {
    return this.#capBytesPerSecond / copiesSharingAt(m, this.#maxConcurrentCopies, this.#now());
  }

  /** The throttle of one copy of `m`. */
  forMessage(m: Pick<CopyMessage, "copies" | "copiesUntil">): Throttle {
    const bucket = this.#bucket;
    const apply = () => bucket.setRate(this.rateOf(m));
    apply();
    return {
      take: (bytes, signal) => {
        apply();
        return bucket.take(bytes, signal);
      },
      refund: (bytes) => bucket.refund(bytes),
      spaceBurst: (bytes, signal) => {
        apply();
        return bucket.spaceBurst(bytes, signal);
      },
      get bytesPerSecond() {
        return bucket.bytesPerSecond;
      },
    };
  }
}
