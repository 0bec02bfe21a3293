/**
 * `timeshift_rel-{s}.m3u8`: the live playlist whose edge is now - s. 425 when the backup has
 * nothing as recent as the edge (it lags behind live).
 */
import { livePlaylist } from "./live-playlist.ts";
import type { PlaybackDeps, PlaybackRequest, PlaybackResponse } from "./request.ts";
import { findTarget, type StreamPath } from "./target.ts";

export async function onTimeshiftRel(
  deps: PlaybackDeps,
  req: PlaybackRequest,
  path: StreamPath,
  { seconds }: { seconds: number },
): Promise<PlaybackResponse> {
  const t = findTarget(deps, path, req.query.token);
  const edgeMs = deps.now() - seconds * 1000;
  return livePlaylist(deps, t, edgeMs, Number.NEGATIVE_INFINITY, { delaySeconds: seconds });
}
