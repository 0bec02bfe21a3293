/**
 * `index|archive-{from}-{dur}[.fmp4].m3u8`: the catch-up playlist of a range (dur ≤ 24 h or
 * `now`), segments from functions/domain/hls-playlist.ts. A media playlist, where the spec's is a
 * multivariant one (docs/playback.md: what players get and why).
 */
import { renderMediaPlaylist } from "../domain/hls-playlist.ts";
import { imagesFolder, renderThumbnailMaster } from "../domain/thumbnails.ts";
import { playlist } from "./answers.ts";
import { thumbnailsOf } from "./on-image-playlist.ts";
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
  const seconds = Math.max(1, Math.ceil(toMs / 1000) - from);
  const thumbnails = thumbnailsOf(req, t, segments, seconds);
  if (thumbnails) {
    // hls-dvr.yml `?thumbnails=N`: a multivariant playlist with the media playlist (the same URL
    // without `thumbnails`) and the image stream. Relative URIs carry the request's other query.
    const rest = Object.entries(req.query).filter(([k, v]) => k !== "thumbnails" && v !== undefined);
    const query = rest.length ? `?${rest.map(([k, v]) => `${k}=${encodeURIComponent(v!)}`).join("&")}` : "";
    const file = req.path.slice(req.path.lastIndexOf("/") + 1);
    const bytes = segments.reduce((n, s) => n + s.length, 0);
    const video = segments.find((s) => s.window.width !== undefined)!.window;
    return playlist(
      renderThumbnailMaster({
        media: `${file}${query}`,
        bandwidth: (bytes * 8) / seconds,
        codecs: video.codecs,
        video: { width: video.width!, height: video.height! },
        images: thumbnails.size,
        imagesUri: `${imagesFolder(thumbnails.size)}/tpl-${from}-${seconds}-${thumbnails.count}.m3u8${query}`,
      }),
      type === "VOD" && toMs < nowMs ? "private, max-age=60" : "no-cache",
    );
  }
  const uris = await windowUris(deps, t, segments);
  return playlist(
    renderMediaPlaylist({ type, segments }, (w) => uris.get(w)!),
    // A VOD of a range that reaches now holds more on the next request: not cached.
    type === "VOD" && toMs < nowMs ? "private, max-age=60" : "no-cache",
  );
}
