/**
 * Issue 21: every error class the product throws on purpose ends in `Error` and carries a stable
 * `code`, distinct per class, so scripts and tests match codes, never messages.
 */
import { describe, expect, it } from "vitest";
import { UsageError } from "../../cli/commands/usage-error.ts";
import { ConfigError } from "../../functions/config/config.ts";
import { CopierStoppingError } from "../../functions/copier/copy-messages.ts";
import { ContainerError, MediaShortError } from "../../functions/domain/container-check.ts";
import {
  isRetryable,
  MalformedAnswerError,
  RetryableError,
  SetupError,
  WindowGoneError,
} from "../../functions/domain/errors.ts";
import { Mp4JoinError } from "../../functions/domain/mp4-join.ts";
import { DamagedObjectError, StoreError } from "../../functions/store/backup-store.ts";
import { LeanUnsupportedError } from "../../functions/store/lean-s3.ts";
import { DamagedSnapshotError } from "../../functions/store/manifest-snapshot.ts";
import { S3FeatureError } from "../../local/s3-features.ts";
import { RestoreError } from "../../ops/restore.ts";

const errors: [Error & { code: string }, string][] = [
  [new RetryableError("x"), "FB_RETRYABLE"],
  [new WindowGoneError("x"), "FB_WINDOW_GONE"],
  [new SetupError("x"), "FB_SETUP"],
  [new MalformedAnswerError("x"), "FB_MALFORMED_ANSWER"],
  [new StoreError("x"), "FB_STORE"],
  [new DamagedObjectError("k", undefined, undefined), "FB_DAMAGED_OBJECT"],
  [new DamagedSnapshotError("x"), "FB_DAMAGED_SNAPSHOT"],
  [new LeanUnsupportedError("x"), "FB_LEAN_UNSUPPORTED"],
  [new ConfigError(["x"]), "FB_CONFIG"],
  [new ContainerError("x"), "FB_CONTAINER"],
  [new MediaShortError("x", { from: 0, to: 1 }), "FB_MEDIA_SHORT"],
  [new Mp4JoinError("x"), "FB_MP4_JOIN"],
  [new CopierStoppingError("x"), "FB_COPIER_STOPPING"],
  [new RestoreError("x"), "FB_RESTORE"],
  [new S3FeatureError("x"), "FB_S3_FEATURE"],
  [new UsageError("x"), "FB_USAGE"],
];

describe("error classes", () => {
  it.each(errors.map(([e, code]) => [e.constructor.name, e, code] as const))(
    "%s has code %s",
    (name, e, code) => {
      expect(name).toMatch(/Error$/);
      expect(e.code).toBe(code);
    },
  );

  it("no two classes share a code", () => {
    const codes = errors.map(([e]) => e.code);
    expect(new Set(codes).size).toBe(codes.length);
  });
});

describe("isRetryable", () => {
  it("follows the class's retryable flag, and counts an unknown error as retryable", () => {
    expect(isRetryable(new RetryableError("503 from the source"))).toBe(true);
    expect(isRetryable(new WindowGoneError("404: deleted by the retention"))).toBe(false);
    expect(isRetryable(new SetupError("401"))).toBe(false);
    expect(isRetryable(new Error("socket hang up"))).toBe(true);
  });

  it("each kind has its stable FB_ code, the one scripts match", () => {
    expect(
      [
        new RetryableError("x"),
        new WindowGoneError("x"),
        new SetupError("x"),
        new MalformedAnswerError("x"),
      ].map((e) => [e.name, e.kind, e.code, e.retryable]),
    ).toEqual([
      ["RetryableError", "retryable", "FB_RETRYABLE", true],
      ["WindowGoneError", "window-gone", "FB_WINDOW_GONE", false],
      ["SetupError", "configuration", "FB_SETUP", false],
      ["MalformedAnswerError", "malformed-answer", "FB_MALFORMED_ANSWER", false],
    ]);
  });
});
