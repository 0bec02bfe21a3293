/**
 * `timeshift_abs-{from}.mpd` (paths/playback/dash-timeshift-abs.yml): the archive played as a
 * live stream from `from`. Stateless like the HLS form (on-timeshift-abs.ts): the first request is
 * redirected to the URL with `start=<now>`; the manifest is dynamic, its live edge (wall-clock now
 * less `availabilityStartTime`) is the playback position `from + (now - start)`, and it lists the
 * segments from `from` (at most the last 24 hours) up to TIMESHIFT_ABS_LEAD_MS past the position.
 */
import { rangeSegments } from "../domain/hls-playlist.ts";
import { HttpProblemError, iso, isoMs, utcDayStart } from "./answers.ts";
import { dashAnswer, periodMono } from "./dash-answer.ts";
import { sessionStart, TIMESHIFT_ABS_LEAD_MS } from "./on-timeshift-abs.ts";
import type { PlaybackDeps, PlaybackRequest, PlaybackResponse } from "./request.ts";
import { MAX_RANGE_SECONDS } from "./routes.ts";
import { checkRetention, findTarget, readWindows, type StreamPath } from "./target.ts";

export async function onDashTimeshiftAbs(
  deps: PlaybackDeps,
  req: PlaybackRequest,
  path: StreamPath,
  { from }: { from: number },
): Promise<PlaybackResponse> {
  const t = findTarget(deps, path, req.query.token);
  const mono = periodMono(req);
  const start = sessionStart(deps, req);
  if (typeof start !== "number") return start;
  checkRetention(deps, t, from, from + 1);
  const nowMs = deps.now();
  const positionMs = from * 1000 + (nowMs - start * 1000);
  const edgeMs = positionMs + TIMESHIFT_ABS_LEAD_MS;
  // Segments are cut from a fixed start (so they stay the same from one reload to the next): `from`,
  // or after a day of playing the start of the UTC day 24 hours back.
  const readFrom = Math.max(from, utcDayStart(edgeMs - MAX_RANGE_SECONDS * 1000));
  const windows = await readWindows(deps, t, readFrom, Math.ceil(edgeMs / 1000));
  const segments = rangeSegments(windows, readFrom * 1000, edgeMs).filter(
    (s) => s.startMs + s.durationMs <= edgeMs,
  );
  if (segments.length === 0) {
    throw new HttpProblemError(
      404,
      `nothing of stream "${t.stream}" is stored from ${iso(readFrom)} to ${isoMs(positionMs)} (a hole in the backup, or not copied yet)`,
    );
  }
  return dashAnswer(
    deps,
    t,
    segments,
    {
      type: "dynamic",
      mono,
      nowMs,
      shiftMs: nowMs - positionMs,
      timeShiftBufferSeconds: Math.ceil((positionMs - segments[0]!.startMs) / 1000),
    },
    "no-cache",
  );
}
