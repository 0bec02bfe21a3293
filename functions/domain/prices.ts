/**
 * List prices the cost figures are computed at (us-east-1, December 2026; check your region's):
 * one table, which a configuration may override field by field. And what a request is billed as:
 * S3 bills PUT, COPY, POST and LIST requests at one rate, GET and HEAD (and all others) at another;
 * DELETE and AbortMultipartUpload are free.
 */

export interface Prices {
  /** Where these prices are from (shown next to every projection). */
  region: string;
  /** S3 Standard, USD per GB-month. */
  standardGbMonth: number;
  /** S3 Glacier Instant Retrieval, USD per GB-month. */
  glacierIrGbMonth: number;
  /** Days a GLACIER_IR object is billed for at least, even when deleted sooner. */
  glacierIrMinimumDays: number;
  /** S3 lifecycle transition requests, USD per 1,000 (into GLACIER_IR). */
  transitionPer1000: number;
  /** S3 PUT, COPY, POST, LIST requests, USD per 1,000. */
  putPer1000: number;
  /** S3 GET, HEAD and other requests, USD per 1,000. */
  getPer1000: number;
  /** Lambda (arm64) compute, USD per GB-second. */
  lambdaGbSecond: number;
  /** Lambda invocations, USD per million. */
  lambdaPerMillion: number;
  /** SQS standard queue requests, USD per million. */
  sqsPerMillion: number;
}

export const LIST_PRICES: Prices = {
  region: "us-east-1",
  standardGbMonth: 0.023,
  glacierIrGbMonth: 0.004,
  glacierIrMinimumDays: 90,
  transitionPer1000: 0.02,
  putPer1000: 0.005,
  getPer1000: 0.0004,
  lambdaGbSecond: 0.0000133334,
  lambdaPerMillion: 0.2,
  sqsPerMillion: 0.4,
};

/** How S3 bills a request of this operation (SDK command name without "Command"). */
export function requestClass(operation: string): "put" | "get" | "free" {
  if (/^(Delete|AbortMultipartUpload)/.test(operation)) return "free";
  if (/^(Put|Copy|Post|List|Create|Complete|Upload|Restore)/.test(operation)) return "put";
  return "get";
}

/** Requests by billing class, as counted. */
export interface RequestCounts {
  put: number;
  get: number;
  sqs: number;
}

/** Counts by operation, folded into billing classes (SQS operations are named `sqs:<Action>`). */
export function byClass(operations: Record<string, number>): RequestCounts {
  const counts: RequestCounts = { put: 0, get: 0, sqs: 0 };
  for (const [op, n] of Object.entries(operations)) {
    if (op.startsWith("sqs:")) counts.sqs += n;
    else {
      const c = requestClass(op);
      if (c !== "free") counts[c] += n;
    }
  }
  return counts;
}

/** USD of these requests at these prices. */
export function requestsCost(r: RequestCounts, p: Prices): number {
  return (r.put / 1000) * p.putPer1000 + (r.get / 1000) * p.getPer1000 + (r.sqs / 1e6) * p.sqsPerMillion;
}

/** USD of this Lambda compute and these invocations. */
export function lambdaCost(gbSeconds: number, invocations: number, p: Prices): number {
  return gbSeconds * p.lambdaGbSecond + (invocations / 1e6) * p.lambdaPerMillion;
}

/**
 * USD a month of storing `gb` that is kept `days` in all: in S3 Standard, or moved to GLACIER_IR
 * after `transitionDays`, where it is billed for at least the minimum storage duration (an object
 * deleted sooner is charged the rest). Steady state: what is stored at any time is the month's
 * data x days / 30. The transition requests (one per object) are the caller's: transitionPer1000.
 */
export function storageCostPerMonth(
  gbPerMonth: number,
  days: number,
  p: Prices,
  transitionDays?: number,
): { usd: number; standardGb: number; glacierIrGb: number } {
  if (transitionDays === undefined || transitionDays >= days) {
    const standardGb = (gbPerMonth * days) / 30;
    return { usd: standardGb * p.standardGbMonth, standardGb, glacierIrGb: 0 };
  }
  const standardGb = (gbPerMonth * transitionDays) / 30;
  // Billed days in GLACIER_IR: what it stays, or the minimum when it is deleted sooner.
  const glacierIrGb = (gbPerMonth * Math.max(days - transitionDays, p.glacierIrMinimumDays)) / 30;
  return {
    usd: standardGb * p.standardGbMonth + glacierIrGb * p.glacierIrGbMonth,
    standardGb,
    glacierIrGb,
  };
}
