/**
 * Time arguments of the operator commands (`--from`, `--to`): ISO 8601 or unix seconds, parsed in
 * one place so every command accepts the same forms and names the flag when a value is wrong.
 */

import { UsageError } from "./usage-error.ts";

export { UsageError };

/** 9999-12-31T23:59:59Z: later times cannot be written as ISO 8601 years of four digits. */
const LAST_SECOND = 253_402_300_799;

const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * Unix seconds from `value`: whole unix seconds (`1763641020`), or ISO 8601 (`2026-11-20T12:17:00Z`,
 * `2026-11-20T14:17+02:00`, `2026-11-20`). Without a zone the time is taken as UTC (the key layout
 * and every report are in UTC). Fractions of a second are dropped.
 */
export function parseTimeArg(flag: string, value: string): number {
  const v = value.trim();
  if (/^\d+$/.test(v)) {
    const seconds = Number(v);
    if (seconds <= LAST_SECOND) return seconds;
    throw new UsageError(
      `${flag}: ${v} is past the year 9999; expected a time as ISO 8601 (e.g. 2026-11-20T12:17:00Z) or unix seconds (e.g. 1763641020)`,
    );
  }
  if (ISO_8601.test(v)) {
    const hasZone = /(?:Z|[+-]\d{2}:?\d{2})$/i.test(v) && v.length > 10;
    const text = v.length === 10 ? `${v}T00:00:00Z` : hasZone ? v : `${v}Z`;
    const ms = Date.parse(text.replace(" ", "T"));
    if (!Number.isNaN(ms) && ms >= 0 && ms <= LAST_SECOND * 1000) return Math.floor(ms / 1000);
  }
  throw new UsageError(
    `${flag}: expected a time as ISO 8601 (e.g. 2026-11-20T12:17:00Z) or unix seconds (e.g. 1763641020), got ${JSON.stringify(value)}`,
  );
}

/** `--from`/`--to` together: both optional, but `--from` must come before `--to`. */
export function parseTimeSpan(
  from: string | undefined,
  to: string | undefined,
): { from: number | undefined; to: number | undefined } {
  const f = from === undefined ? undefined : parseTimeArg("--from", from);
  const t = to === undefined ? undefined : parseTimeArg("--to", to);
  if (f !== undefined && t !== undefined) checkOrder(f, t);
  return { from: f, to: t };
}

/** `--from`/`--to` of a command that needs both (restore, export, hold). */
export function parseTimeRange(from: string, to: string): { from: number; to: number } {
  const f = parseTimeArg("--from", from);
  const t = parseTimeArg("--to", to);
  checkOrder(f, t);
  return { from: f, to: t };
}

function checkOrder(from: number, to: number): void {
  if (to <= from) throw new UsageError(`--to (${isoTime(to)}) must be after --from (${isoTime(from)})`);
}

/** `2026-11-20T12:17:00Z` for unix seconds (reports and messages). */
export function isoTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(".000Z", "Z");
}
