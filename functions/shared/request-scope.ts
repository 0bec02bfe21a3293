/**
 * Requests counted per piece of work: the planner runs a source inside `countRequests`, and every
 * S3 and SQS request made in that async context (by the store's counter and the queue) is added to
 * the run's tally as well, even when the copier shares the same store in one process (the local
 * runtime): its copies run in other async contexts. The `cost` report reads what the planner kept of
 * these tallies in the bucket (functions/planner/compact-records.ts).
 */
import { AsyncLocalStorage } from "node:async_hooks";

/** Requests by operation (S3 command names without "Command"; SQS ones as `sqs:<Action>`). */
export class RequestTally {
  readonly ops = new Map<string, number>();

  add(op: string, n = 1): void {
    this.ops.set(op, (this.ops.get(op) ?? 0) + n);
  }

  /** The counts as a plain record (for domain/prices.ts byClass). */
  record(): Record<string, number> {
    return Object.fromEntries(this.ops);
  }

  /** Takes away counts already kept elsewhere (what remains is kept next time). */
  subtract(taken: Record<string, number>): void {
    for (const [op, n] of Object.entries(taken)) {
      const left = (this.ops.get(op) ?? 0) - n;
      if (left > 0) this.ops.set(op, left);
      else this.ops.delete(op);
    }
  }
}

const scope = new AsyncLocalStorage<RequestTally>();

/** Runs `fn` with every request it makes (and the calls it starts) counted into `tally` too. */
export function countRequests<T>(tally: RequestTally, fn: () => Promise<T>): Promise<T> {
  return scope.run(tally, fn);
}

/** Notes `n` requests of `op` in the tally of the current context, if any. */
export function noteRequest(op: string, n = 1): void {
  if (n !== 0) scope.getStore()?.add(op, n);
}

/**
 * A counter by operation (the store's `requests`) that also notes every change in the current
 * context's tally: the store's own counting sites (and the fragment index store's) feed both.
 */
export class ScopedCounter extends Map<string, number> {
  override set(op: string, n: number): this {
    noteRequest(op, n - (this.get(op) ?? 0));
    return super.set(op, n);
  }
}
