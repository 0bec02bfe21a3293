/**
 * `index|archive-{from}-{dur}[.fmp4].m3u8`: the catch-up playlist of a range (dur ≤ 24 h or
 * `now`), segments from functions/domain/hls-playlist.ts. A media playlist, where the spec's is a
 * multivariant one (docs/playback.md: what players get and why).
 */
import { rangeSegments, renderMediaPlaylist } from "../domain/hls-playlist.ts";
import { HttpProblemError, iso, isoMs, playlist } from "./answers.ts";
import type { PlaybackDeps, PlaybackRequest, PlaybackResponse } from "./request.ts";
import { MAX_RANGE_SECONDS } from "./routes.ts";
import { checkRetention, findTarget, readWindows, type StreamPath, windowUris } from "./target.ts";

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
  const type = duration === "now" || (event && toMs > nowMs) ? "EVENT" : "VOD";
  const uris = await windowUris(deps, t, segments);
  return playlist(
    renderMediaPlaylist({ type, segments }, (w) => uris.get(w)!),
    // A VOD of a range that reaches now holds more on the next request: not cached.
    type === "VOD" && toMs < nowMs ? "private, max-age=60" : "no-cache",
  );
}
