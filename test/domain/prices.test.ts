/** List prices and what a request is billed as (functions/domain/prices.ts). */
import { expect, test } from "vitest";
import {
  byClass,
  LIST_PRICES,
  lambdaCost,
  requestClass,
  requestsCost,
  storageCostPerMonth,
} from "../../functions/domain/prices.ts";

test("S3 bills PUT, COPY, POST and LIST at one rate, GET and HEAD at another; DELETE and aborts are free", () => {
  for (const op of [
    "PutObject",
    "CopyObject",
    "UploadPart",
    "CreateMultipartUpload",
    "CompleteMultipartUpload",
    "ListObjectsV2",
    "ListMultipartUploads",
  ]) {
    expect(requestClass(op), op).toBe("put");
  }
  for (const op of ["GetObject", "HeadObject"]) expect(requestClass(op), op).toBe("get");
  for (const op of ["DeleteObject", "DeleteObjects", "AbortMultipartUpload"])
    expect(requestClass(op), op).toBe("free");
  expect(byClass({ PutObject: 3, GetObject: 2, DeleteObject: 9, "sqs:ReceiveMessage": 4 })).toEqual({
    put: 3,
    get: 2,
    sqs: 4,
  });
});

test("requests, Lambda and storage at list prices", () => {
  expect(requestsCost({ put: 1000, get: 1000, sqs: 1_000_000 }, LIST_PRICES)).toBeCloseTo(
    0.005 + 0.0004 + 0.4,
    10,
  );
  expect(lambdaCost(1, 1_000_000, LIST_PRICES)).toBeCloseTo(0.0000133334 + 0.2, 10);
  // 648 GB a month kept 8 days: 172.8 GB stored at any time.
  const standard = storageCostPerMonth(648, 8, LIST_PRICES);
  expect(standard.standardGb).toBeCloseTo(172.8, 6);
  expect(standard.usd).toBeCloseTo(172.8 * 0.023, 6);
});

test("GLACIER_IR after N days: billed for its 90-day minimum even when deleted sooner", () => {
  // Kept 30 days, moved after 7: 23 days in GLACIER_IR, billed 90.
  const moved = storageCostPerMonth(30, 30, LIST_PRICES, 7);
  expect(moved.standardGb).toBeCloseTo(7, 6);
  expect(moved.glacierIrGb).toBeCloseTo(90, 6);
  expect(moved.usd).toBeCloseTo(7 * 0.023 + 90 * 0.004, 6);
  // Kept a year: 358 days in GLACIER_IR, past the minimum.
  expect(storageCostPerMonth(30, 365, LIST_PRICES, 7).glacierIrGb).toBeCloseTo(358, 6);
  // A transition at or after the expiry never happens.
  expect(storageCostPerMonth(30, 7, LIST_PRICES, 7).glacierIrGb).toBe(0);
});
