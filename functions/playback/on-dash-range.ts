/**
 * `archive-{from}-{dur}.mpd` (paths/playback/dash-dvr.yml): the DASH manifest of a range, static,
 * periods at gaps (or one with `?period=mono`), over the same segments as the HLS playlist of the
 * range. `dur=now` answers what is stored up to now as a closed (static) manifest: the backup lags
 * behind live, so a growing one would have nothing at its live edge; ask again for more.
 */
import { dashAnswer, periodMono } from "./dash-answer.ts";
import { thumbnailsOf, tokenQuery } from "./on-image-playlist.ts";
import { storedRangeSegments } from "./range-segments.ts";
import type { PlaybackDeps, PlaybackRequest, PlaybackResponse } from "./request.ts";
import { findTarget, type StreamPath } from "./target.ts";

export async function onDashRange(
  deps: PlaybackDeps,
  req: PlaybackRequest,
  path: StreamPath,
  { from, duration }: { from: number; duration: number | "now" },
): Promise<PlaybackResponse> {
  const t = findTarget(deps, path, req.query.token);
  const mono = periodMono(req);
  const { segments, nowMs, toMs } = await storedRangeSegments(deps, t, { from, duration });
  const th = thumbnailsOf(req, t, segments, Math.max(1, Math.ceil(toMs / 1000) - from));
  return dashAnswer(
    deps,
    t,
    segments,
    {
      type: "static",
      mono,
      thumbnails: th && { ...th.size, interval: th.interval, query: tokenQuery(t) },
    },
    toMs < nowMs ? "private, max-age=60" : "no-cache",
  );
}
