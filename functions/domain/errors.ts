/**
 * The one error hierarchy of the product. Every error class the product throws on purpose ends in
 * `Error` and carries a stable `code` (`FB_…`, as undici's errors do): match the code, never the
 * message. Here: FB_RETRYABLE, FB_WINDOW_GONE, FB_SETUP, FB_MALFORMED_ANSWER; elsewhere
 * FB_STORE, FB_DAMAGED_OBJECT, FB_DAMAGED_SNAPSHOT, FB_LEAN_UNSUPPORTED (store), FB_CONFIG (config), FB_CONTAINER,
 * FB_MEDIA_SHORT, FB_MP4_JOIN (domain), FB_COPIER_STOPPING (copier), FB_HTTP_PROBLEM (playback),
 * FB_RESTORE (ops), FB_S3_FEATURE (local), FB_USAGE (cli). Adapters translate HTTP and AWS failures into it;
 * handlers decide "retry later" versus "dead-letter / drop" from `retryable` alone.
 */
export type BackupErrorKind = "retryable" | "window-gone" | "configuration" | "malformed-answer";

export class BackupError extends Error {
  readonly kind: BackupErrorKind;
  readonly retryable: boolean;
  /** Stable: FB_ and the kind in capitals (FB_RETRYABLE, FB_WINDOW_GONE, FB_SETUP, FB_MALFORMED_ANSWER). */
  readonly code: string;

  constructor(kind: BackupErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.kind = kind;
    this.retryable = kind === "retryable";
    this.code = kind === "configuration" ? "FB_SETUP" : `FB_${kind.toUpperCase().replace("-", "_")}`;
  }
}

/** Network failure, timeout, 429 or 5xx: the same request may succeed later. */
export class RetryableError extends BackupError {
  /** Seconds the server asked us to wait (`Retry-After`), when it said so. */
  readonly retryAfterSeconds: number | undefined;
  /** HTTP status when there was one. */
  readonly status: number | undefined;

  constructor(
    message: string,
    options?: { cause?: unknown; retryAfterSeconds?: number | undefined; status?: number | undefined },
  ) {
    super("retryable", message, options);
    this.retryAfterSeconds = options?.retryAfterSeconds;
    this.status = options?.status;
  }
}

/** 404 on an archive window: the source's retention already deleted it. A normal race, never retried. */
export class WindowGoneError extends BackupError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("window-gone", message, options);
  }
}

/** 401/403, unknown stream, bad configuration: retrying will not help until a person fixes something. */
export class SetupError extends BackupError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("configuration", message, options);
  }
}

/** The server answered, but not in the documented shape (bad JSON, missing fields, wrong types). */
export class MalformedAnswerError extends BackupError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("malformed-answer", message, options);
  }
}

/** True when `error` says the same request may work later. Unknown errors count as retryable. */
export function isRetryable(error: unknown): boolean {
  return error instanceof BackupError ? error.retryable : true;
}
