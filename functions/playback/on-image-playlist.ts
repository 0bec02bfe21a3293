/**
 * `?thumbnails=N` (paths/playback/hls-dvr.yml, dash-dvr.yml): the image track of a range.
 *
 * - `images-{W}x{H}/tpl-{from}-{dur}-{N}.m3u8`: the HLS image playlist, N images
 *   (`seg-{from}-{offset}.hls.jpg`), one per `dur / N` seconds.
 * - `thumbnailsOf`: the checks an `archive|index-…m3u8?thumbnails=N` or `archive-….mpd?thumbnails=N`
 *   makes before adding its image track: a count of 1 to MAX_THUMBNAILS, at least a second per
 *   image, and video in the range (400 or 409 with the reason, never an empty track).
 */
import type { PlannedSegment } from "../domain/hls-playlist.ts";
import {
  DEFAULT_THUMBNAIL_AREA,
  fitImage,
  type ImageSize,
  parseThumbnailCount,
  renderImagePlaylist,
  thumbnailInterval,
} from "../domain/thumbnails.ts";
import { HttpProblemError, playlist } from "./answers.ts";
import type { PlaybackDeps, PlaybackRequest, PlaybackResponse } from "./request.ts";
import { checkRetention, findTarget, type StreamPath, type Target } from "./target.ts";

export async function onImagePlaylist(
  deps: PlaybackDeps,
  req: PlaybackRequest,
  path: StreamPath,
  f: { from: number; duration: number; count: number },
): Promise<PlaybackResponse> {
  const t = findTarget(deps, path, req.query.token);
  checkRetention(deps, t, f.from, f.from + f.duration);
  const interval = thumbnailInterval(f.duration, f.count);
  if (typeof interval !== "number") throw new HttpProblemError(400, interval.problem);
  return playlist(renderImagePlaylist({ ...f, query: tokenQuery(t) }), "private, max-age=60");
}

/** `?token=…` of the request, for relative URIs a player resolves without the query ("" without). */
export function tokenQuery(t: Target): string {
  return t.token ? `?token=${encodeURIComponent(t.token)}` : "";
}

/** The image track `?thumbnails=N` asks for over `segments`, or undefined when not asked. */
export interface Thumbnails {
  count: number;
  interval: number;
  /** The fitted size of the images (the area of `images-{W}x{H}`). */
  size: ImageSize;
}

export function thumbnailsOf(
  req: PlaybackRequest,
  t: Target,
  segments: readonly PlannedSegment[],
  durationSeconds: number,
): Thumbnails | undefined {
  const count = parseThumbnailCount(req.query.thumbnails);
  if (count === undefined) return undefined;
  if (typeof count !== "number") throw new HttpProblemError(400, count.problem);
  const interval = thumbnailInterval(durationSeconds, count);
  if (typeof interval !== "number") throw new HttpProblemError(400, interval.problem);
  const video = segments.find((s) => s.window.width !== undefined && s.window.height !== undefined);
  if (!video) {
    throw new HttpProblemError(
      409,
      `thumbnails=${count}: stream "${t.stream}" has no video in this range (audio only): there are no pictures to show; leave thumbnails out`,
    );
  }
  const size = fitImage({ width: video.window.width!, height: video.window.height! }, DEFAULT_THUMBNAIL_AREA);
  return { count, interval, size };
}
