/**
 * The segments of a requested range (`{from}-{dur|now}`), shared by the HLS playlist and the DASH
 * manifest of a range: 400 for a range over 24 hours, 416 for one in the future, the retention
 * check, then the stored segments in it, 404 when there are none.
 */
import { type PlannedSegment, rangeSegments } from "../domain/hls-playlist.ts";
import { HttpProblemError, iso, isoMs } from "./answers.ts";
import type { PlaybackDeps } from "./request.ts";
import { MAX_RANGE_SECONDS } from "./routes.ts";
import { checkRetention, readWindows, type Target } from "./target.ts";

export interface RangeSegments {
  segments: PlannedSegment[];
  /** When the request was answered and where the range ends (unix milliseconds). */
  nowMs: number;
  toMs: number;
}

export async function storedRangeSegments(
  deps: PlaybackDeps,
  t: Target,
  { from, duration }: { from: number; duration: number | "now" },
): Promise<RangeSegments> {
  const nowMs = deps.now();
  const toMs = duration === "now" ? nowMs : (from + duration) * 1000;
  if (duration === "now" && nowMs - from * 1000 > MAX_RANGE_SECONDS * 1000) {
    throw new HttpProblemError(
      400,
      `${iso(from)} to now is longer than ${MAX_RANGE_SECONDS} s (24 hours): start later or ask for a range`,
    );
  }
  if (toMs <= from * 1000)
    throw new HttpProblemError(416, `${iso(from)} is in the future: nothing is stored there yet`);
  checkRetention(deps, t, from, Math.ceil(toMs / 1000));
  const windows = await readWindows(deps, t, from, Math.ceil(toMs / 1000));
  const segments = rangeSegments(windows, from * 1000, toMs);
  if (segments.length === 0) {
    throw new HttpProblemError(
      404,
      `nothing of stream "${t.stream}" is stored from ${iso(from)} to ${isoMs(toMs)} (a hole in the backup, or not copied yet)`,
    );
  }
  return { segments, nowMs, toMs };
}
