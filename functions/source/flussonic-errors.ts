/**
 * Error mapping of the Flussonic client: what an HTTP status or a network failure of a source means,
 * as one of the BackupError classes (retryable, configuration, ...), in one sentence naming the
 * source, the request and the status.
 */
import undiciErrors from "undici/lib/core/errors.js";
import type { SourceCredentials } from "../config/config.ts";
import { BackupError, RetryableError, SetupError } from "../domain/errors.ts";

/** Which side of Flussonic a request went to: the admin API or a playback URL (exports, indexes). */
export type RequestKind = "api" | "playback";

/** The error an HTTP status other than 200 (and 404, which the callers read) means. */
export function statusError(
  sourceName: string,
  auth: SourceCredentials["type"],
  status: number,
  headers: Record<string, string | string[] | undefined>,
  what: string,
  kind: RequestKind,
): BackupError {
  const where = `source ${sourceName}: ${what}: HTTP ${status}`;
  if (status === 403 && kind === "playback" && (auth === "basic" || auth === "bearer")) {
    // The admin login (edit_auth) is what the spec describes for the admin API; a stream
    // protected by play auth (view_auth, an auth backend) may refuse it on playback URLs.
    return new SetupError(
      `${where}, refused by the stream's play auth (view_auth or an auth backend), which the admin login (auth.type "${auth}") does not pass: give this source a play token (auth.type "token") or let the backup's address through the play auth`,
    );
  }
  if (status === 403 && kind === "playback" && auth === "token") {
    return new SetupError(
      `${where}, the play token was refused by the stream's play auth: check the source's auth.tokenEnv / auth.tokenSecret`,
    );
  }
  if (status === 401 || status === 403) {
    return new SetupError(`${where}, access refused: check the source's auth settings and secret`);
  }
  if (status === 429 || status >= 500) {
    const retryAfterSeconds = parseRetryAfter(headers["retry-after"]);
    return new RetryableError(
      `${where}${retryAfterSeconds === undefined ? "" : `, retry after ${retryAfterSeconds}s`}`,
      {
        status,
        retryAfterSeconds,
      },
    );
  }
  return new SetupError(`${where}, request refused`);
}

/** A failure before or while an answer came (refused, reset, timeout, abort): retryable. */
export function networkError(sourceName: string, error: unknown, what: string): BackupError {
  if (error instanceof BackupError) return error;
  if (error instanceof Error && error.name === "AbortError") {
    return new RetryableError(`source ${sourceName}: ${what}: aborted`, { cause: error });
  }
  return new RetryableError(`source ${sourceName}: ${what}: ${describeNetworkError(error)}`, {
    cause: error,
  });
}

/** `Retry-After` in seconds: delta-seconds or an HTTP date. */
export function parseRetryAfter(
  value: string | string[] | undefined,
  nowMs = Date.now(),
): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === "") return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim());
  const date = Date.parse(v);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - nowMs) / 1000));
}

function describeNetworkError(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  if (error instanceof undiciErrors.ConnectTimeoutError) return "connect timeout";
  if (error instanceof undiciErrors.HeadersTimeoutError)
    return "no response headers in time (headers timeout)";
  if (error instanceof undiciErrors.BodyTimeoutError) return "body stalled (idle timeout)";
  if (code === "ECONNREFUSED") return "connection refused (ECONNREFUSED)";
  if (code === "ECONNRESET") return "connection reset (ECONNRESET)";
  if (code === "ENOTFOUND") return "host not found (ENOTFOUND)";
  const message = error instanceof Error ? error.message : String(error);
  return typeof code === "string" ? `${message} (${code})` : message;
}
