/**
 * What the backup holds of a stream over a span, as `recording_status.json` and `ranges.json`
 * report it: whole seconds of stored media within retention, and the bytes of their windows.
 */
import { storedSpans } from "../domain/fragment-index.ts";
import { GAP_TOLERANCE_MS } from "../domain/hls-playlist.ts";
import { HttpProblemError } from "./answers.ts";
import type { PlaybackDeps, PlaybackRequest } from "./request.ts";
import { retentionStartSeconds, type Target } from "./target.ts";

/** Stored media spans (`[startMs, endMs)`, merged) as whole-second ranges inside `[fromSec, toSec)`. */
function storedRanges(
  spans: readonly (readonly [number, number])[],
  fromSec: number,
  toSec: number,
): { from: number; to: number }[] {
  const out: { from: number; to: number }[] = [];
  for (const [start, end] of spans) {
    // Count only whole seconds the backup holds.
    const from = Math.max(Math.ceil(start / 1000 - 0.001), fromSec);
    const to = Math.min(Math.floor(end / 1000 + 0.001), toSec);
    if (to > from) out.push({ from, to });
  }
  return out;
}

export function querySeconds(
  query: PlaybackRequest["query"],
  name: string,
  scale: number,
): number | undefined {
  const v = query[name];
  if (v === undefined || v === "") return undefined;
  if (v === "now") return undefined;
  if (!/^\d{1,15}$/.test(v)) throw new HttpProblemError(400, `${name}=${v} is not a unix time`);
  return Math.floor(Number(v) / scale);
}

/**
 * The data of `recording_status.json` and `ranges.json`: the stored whole-second ranges in
 * `[fromSec, toSec)` (clipped to retention and now) and the bytes of their windows. Through the
 * index's per-stream summary when it has one (a bounded number of S3 reads for any span).
 */
export async function storedSpan(
  deps: PlaybackDeps,
  t: Target,
  fromSec: number | undefined,
  toSec: number | undefined,
): Promise<{ bytes: number; ranges: { from: number; to: number }[] }> {
  const nowSeconds = Math.ceil(deps.now() / 1000);
  const from = Math.max(fromSec ?? 0, retentionStartSeconds(deps, t));
  const to = Math.min(toSec ?? nowSeconds, nowSeconds);
  if (to <= from) return { bytes: 0, ranges: [] };
  const stored = deps.index.readStoredSpans
    ? await deps.index.readStoredSpans(t.source.name, t.stream, from, to)
    : storedSpans(await deps.index.readFragmentIndex(t.source.name, t.stream, from, to), GAP_TOLERANCE_MS);
  return { bytes: stored.bytes, ranges: storedRanges(stored.spans, from, to) };
}
