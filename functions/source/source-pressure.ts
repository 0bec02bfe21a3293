/**
 * Back-off towards one source: when a media server answers 429/503, refuses or drops connections,
 * or is slow to send its first bytes, the copiers of that source slow down (a pause, honouring
 * Retry-After, and fewer windows in parallel) and recover gradually (one more parallel window per
 * round of successes: additive increase, multiplicative decrease). Other sources keep their speed:
 * there is one gate per source.
 *
 * In the local runtime one gate serves all copiers of a source. In Lambda each container holds
 * its own gate (batch size 1, so only the pause matters there); the per-message retry delays
 * (visibility timeout, Retry-After) slow the whole fleet down.
 */
import { BackupError } from "../domain/errors.ts";
import { StoreError } from "../store/backup-store.ts";

export type CopyResult = "ok" | "overload" | "other";

export interface PressureChange {
  limit: number;
  pausedUntilMs: number;
  reason: string;
}

export interface SourcePressureOptions {
  /** The source's copy cap: the gate never allows more. */
  maxConcurrent: number;
  /** First pause after an overload without Retry-After (doubles while overloads continue). */
  basePauseMs?: number;
  maxPauseMs?: number;
  /** First bytes slower than this count as a sign of load (one fewer parallel window). */
  slowResponseMs?: number;
  nowMs?: () => number;
  onChange?: (change: PressureChange) => void;
}

export class SourcePressure {
  readonly maxConcurrent: number;
  limit: number;
  active = 0;
  pausedUntilMs = 0;
  readonly slowResponseMs: number;
  readonly #o: SourcePressureOptions;
  readonly #now: () => number;
  #successes = 0;
  #overloadStreak = 0;
  readonly #waiters: (() => void)[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(o: SourcePressureOptions) {
    this.#o = o;
    this.maxConcurrent = Math.max(1, o.maxConcurrent);
    this.limit = this.maxConcurrent;
    this.slowResponseMs = o.slowResponseMs ?? 5000;
    this.#now = o.nowMs ?? (() => performance.now());
  }

  /** Waits for a download slot: under the current limit and not paused. */
  async acquire(signal?: AbortSignal): Promise<void> {
    while (!this.#free()) {
      signal?.throwIfAborted();
      await new Promise<void>((resolve, reject) => {
        const wake = () => {
          signal?.removeEventListener("abort", abort);
          resolve();
        };
        const abort = () => {
          const i = this.#waiters.indexOf(wake);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(signal?.reason);
        };
        signal?.addEventListener("abort", abort, { once: true });
        this.#waiters.push(wake);
        this.#armTimer();
      });
    }
    this.active++;
  }

  /** Ends a download with its result; `retryAfterSeconds` from the source when it sent one. */
  release(result: CopyResult, retryAfterSeconds?: number): void {
    this.active--;
    if (result === "overload") {
      this.#successes = 0;
      this.#overloadStreak++;
      const base = this.#o.basePauseMs ?? 1000;
      // Longer delays than maxPauseMs are left to the message's own retry delay (visibility).
      const pause = Math.min(
        this.#o.maxPauseMs ?? 60_000,
        retryAfterSeconds !== undefined ? retryAfterSeconds * 1000 : base * 2 ** (this.#overloadStreak - 1),
      );
      this.pausedUntilMs = Math.max(this.pausedUntilMs, this.#now() + pause);
      this.limit = Math.max(1, Math.floor(this.limit / 2));
      this.#changed(`overload: pause ${Math.round(pause)} ms, ${this.limit} parallel`);
    } else if (result === "ok") {
      this.#overloadStreak = 0;
      if (this.limit < this.maxConcurrent && ++this.#successes >= this.limit) {
        this.#successes = 0;
        this.limit++;
        this.#changed(`recovering: ${this.limit} parallel`);
      }
    }
    this.#wake();
  }

  /** The source took `ms` to answer; a slow answer removes one parallel window. */
  responded(ms: number): void {
    if (ms < this.slowResponseMs || this.limit <= 1) return;
    this.limit--;
    this.#successes = 0;
    this.#changed(`slow first bytes (${Math.round(ms)} ms): ${this.limit} parallel`);
  }

  #free(): boolean {
    return this.active < this.limit && this.#now() >= this.pausedUntilMs;
  }

  #changed(reason: string): void {
    this.#o.onChange?.({ limit: this.limit, pausedUntilMs: this.pausedUntilMs, reason });
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  #armTimer(): void {
    const wait = this.pausedUntilMs - this.#now();
    if (wait <= 0 || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#wake();
    }, wait);
  }
}

/**
 * Whether a copy failure says the source is overloaded or unreachable: any retryable failure but
 * one of S3 (SlowDown, 500, a lost response), which says nothing about the source.
 */
export function isOverload(error: unknown): boolean {
  return error instanceof BackupError && error.retryable && !(error instanceof StoreError);
}
