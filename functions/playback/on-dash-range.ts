/**
 * `archive-{from}-{dur}.mpd` (paths/playback/dash-dvr.yml): the DASH manifest of a range, static,
 * periods at gaps (or one with `?period=mono`), over the same segments as the HLS playlist of the
 * range. `dur=now` answers what is stored up to now as a closed (static) manifest: the backup lags
 * behind live, so a growing one would have nothing at its live edge; ask again for more.
 */
import { rangeSegments } from "../domain/hls-playlist.ts";
import { HttpProblemError, iso, isoMs } from "./answers.ts";
import { dashAnswer, periodMono } from "./dash-answer.ts";
import type { PlaybackDeps, PlaybackRequest, PlaybackResponse } from "./request.ts";
import { MAX_RANGE_SECONDS } from "./routes.ts";
import { checkRetention, findTarget, readWindows, type StreamPath } from "./target.ts";

export async function onDashRange(
  deps: PlaybackDeps,
  req: PlaybackRequest,
  path: StreamPath,
  { from, duration }: { from: number; duration: number | "now" },
): Promise<PlaybackResponse> {
  const t = findTarget(deps, path, req.query.token);
  const mono = periodMono(req);
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
  return dashAnswer(
    deps,
    t,
    segments,
    { type: "static", mono },
    toMs < nowMs ? "private, max-age=60" : "no-cache",
  );
}
