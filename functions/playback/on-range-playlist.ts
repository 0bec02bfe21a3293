/**
 * `index|archive-{from}-{dur}[.fmp4].m3u8`: the catch-up playlist of a range (dur ≤ 24 h or
 * `now`), segments from functions/domain/hls-playlist.ts. A media playlist, where the spec's is a
 * multivariant one (docs/playback.md: what players get and why).
 */
import { renderMediaPlaylist } from "../domain/hls-playlist.ts";
import { playlist } from "./answers.ts";
import { storedRangeSegments } from "./range-segments.ts";
import type { PlaybackDeps, PlaybackRequest, PlaybackResponse } from "./request.ts";
import { findTarget, type StreamPath, windowUris } from "./target.ts";

/**
 * `index|archive-{from}-{dur}[.fmp4].m3u8`. paths/playback/hls-dvr.yml: VOD by default; EVENT with
 * `dur=now`, or with `?event=true` while `from + dur` is in the future (then VOD once it passed).
 * Most players start a VOD at its beginning and an EVENT at its live edge.
 */
export async function onRangePlaylist(
  deps: PlaybackDeps,
  req: PlaybackRequest,
  path: StreamPath,
  { from, duration }: { from: number; duration: number | "now" },
): Promise<PlaybackResponse> {
  const t = findTarget(deps, path, req.query.token);
  const event = req.query.event === "true";
  const { segments, nowMs, toMs } = await storedRangeSegments(deps, t, { from, duration });
  const type = duration === "now" || (event && toMs > nowMs) ? "EVENT" : "VOD";
  const uris = await windowUris(deps, t, segments);
  return playlist(
    renderMediaPlaylist({ type, segments }, (w) => uris.get(w)!),
    // A VOD of a range that reaches now holds more on the next request: not cached.
    type === "VOD" && toMs < nowMs ? "private, max-age=60" : "no-cache",
  );
}
