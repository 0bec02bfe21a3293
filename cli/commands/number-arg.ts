/**
 * Numeric options of every command (`--copy-timeout`, `--streams`, `--hours`, ...), parsed in one
 * place and strictly: digits only, inside the range the option allows, or a one-line usage error
 * naming the option. Commander does not pass a `.default()` through `.argParser()`, so options are
 * declared as text and parsed here, defaults included.
 */
import { UsageError } from "./usage-error.ts";

export interface NumberRule {
  /** What the number counts, for the message ("whole seconds", "a whole number of streams"). */
  unit: string;
  min: number;
  max: number;
  /** Decimals allowed (`0.5`); whole numbers only otherwise. */
  fraction?: boolean;
}

/**
 * The number in `value`, or a UsageError such as
 * `--copy-timeout: expected whole seconds between 1 and 43170, got "abc"`.
 */
export function parseNumberArg(flag: string, value: string | number, rule: NumberRule): number {
  const text = String(value).trim();
  const n = (rule.fraction ? /^\d+(?:\.\d+)?$/ : /^\d+$/).test(text) ? Number(text) : Number.NaN;
  if (!Number.isFinite(n) || n < rule.min || n > rule.max) {
    throw new UsageError(
      `${flag}: expected ${rule.unit} between ${rule.min} and ${rule.max}, got ${JSON.stringify(String(value))}`,
    );
  }
  return n;
}

/**
 * `--copy-timeout`: the longest one window copy may take. The local copy queue's visibility timeout
 * is this plus 30 s, and SQS allows at most 43,200 s (12 h).
 */
export const COPY_TIMEOUT: NumberRule = { unit: "whole seconds", min: 1, max: 43_170 };
/** Default `--copy-timeout`: the copier Lambda's timeout. */
export const DEFAULT_COPY_TIMEOUT_SECONDS = 900;
/** `demo --streams`. */
export const DEMO_STREAMS: NumberRule = { unit: "a whole number of streams", min: 1, max: 50 };
/** `demo --hours`. */
export const DEMO_HOURS: NumberRule = { unit: "hours", min: 0.1, max: 48, fraction: true };
