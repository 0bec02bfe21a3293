/**
 * The playback handler (issue 11 §2): answers Flussonic's DVR playback URLs from the backup.
 * Pure request in, response out: S3 reads, URL signing, the clock and the token keys are
 * injected (request.ts `PlaybackDeps`), so the same handler runs behind `flussonic-backup serve`
 * and in AWS.
 *
 * Routes, relative to where the handler is mounted (`basePath`, default ""):
 *   /{source}/{stream...}/{file}   (stream names may contain "/"; the file is the last segment)
 * One file per endpoint, each doing the same steps: check the token and find the stream
 * (target.ts), find the windows, write the answer; a problem is thrown with its status where it is
 * found (answers.ts HttpProblemError) and written here as a one-sentence plain-text body.
 *
 * - `index|archive-{from}-{dur}[.fmp4].m3u8`: on-range-playlist.ts (VOD, or EVENT with `dur=now`,
 *   or with `?event=true` while `from + dur` is in the future: paths/playback/hls-dvr.yml).
 * - `timeshift_rel-{s}.m3u8`: on-timeshift-rel.ts; `timeshift_abs-{from}.m3u8`:
 *   on-timeshift-abs.ts; both live playlists of live-playlist.ts.
 * - `archive-{from}-{dur}.mp4`: on-archive-mp4.ts (a redirect to one window, or the range joined).
 * - DASH (`archive-{from}-{dur}.mpd`, `timeshift_abs-{from}.mpd`, `rewind-{ago}.mpd`):
 *   on-dash-*.ts, manifests of functions/domain/dash-manifest.ts over the same byte ranges.
 * - `{from}-preview.mp4`: on-preview-mp4.ts (the first stored key frame at or after `from`).
 * - `{from}-preview.jpg`, `images-{W}x{H}/seg-…hls.jpg|dvr-…m4v.jpg`: on-preview-jpg.ts (that
 *   key frame decoded, cached); `images-{W}x{H}/tpl-{from}-{dur}-{N}.m3u8`: on-image-playlist.ts.
 * - `recording_status.json` / `ranges.json`: on-recording-status.ts, on-ranges-json.ts: what the
 *   fragment index holds (stored media only, within retention); windows stored before the index
 *   and not reindexed are not counted.
 * - Access: `?token=` (token.ts) checked against `tokenKeys`; 403 with the reason.
 * - Errors: 404 unknown source/stream or nothing stored, 400 malformed times or too long a range,
 *   416 a range in the future, 409 what cannot be exported as asked, 425 a delay shorter than the
 *   backup's lag, 501 a JPEG without a decoder.
 */
import { HttpProblemError, TEXT, text } from "./answers.ts";
import { onArchiveMp4 } from "./on-archive-mp4.ts";
import { onDashRange } from "./on-dash-range.ts";
import { onDashRewind } from "./on-dash-rewind.ts";
import { onDashTimeshiftAbs } from "./on-dash-timeshift-abs.ts";
import { onImagePlaylist } from "./on-image-playlist.ts";
import { onPreviewJpg, onThumbnail } from "./on-preview-jpg.ts";
import { onPreviewMp4 } from "./on-preview-mp4.ts";
import { onRangePlaylist } from "./on-range-playlist.ts";
import { onRangesJson } from "./on-ranges-json.ts";
import { onRecordingStatus } from "./on-recording-status.ts";
import { onTimeshiftAbs } from "./on-timeshift-abs.ts";
import { onTimeshiftRel } from "./on-timeshift-rel.ts";
import type { PlaybackDeps, PlaybackHandler, PlaybackRequest, PlaybackResponse } from "./request.ts";
import { type PlaybackFile, parsePlaybackPath } from "./routes.ts";
import type { StreamPath } from "./target.ts";

export { LIVE_WINDOW_MS } from "./live-playlist.ts";
export { TIMESHIFT_ABS_LEAD_MS } from "./on-timeshift-abs.ts";
export type {
  MediaAccess,
  PlaybackDeps,
  PlaybackHandler,
  PlaybackRequest,
  PlaybackResponse,
} from "./request.ts";

/** The playback handler: Flussonic DVR URLs answered from the backup (module comment). */
export function createPlaybackHandler(deps: PlaybackDeps): PlaybackHandler {
  const base = (deps.basePath ?? "").replace(/\/+$/, "");
  return async (req) => {
    try {
      if (req.method !== "GET" && req.method !== "HEAD") {
        return {
          ...text(405, `${req.method} is not allowed: playback URLs answer GET and HEAD`),
          headers: { ...TEXT, Allow: "GET, HEAD" },
        };
      }
      if (base && !(req.path === base || req.path.startsWith(`${base}/`))) {
        throw new HttpProblemError(404, `not a playback URL: playback is under ${base}/`);
      }
      const route = parsePlaybackPath(req.path.slice(base.length));
      if (!route.ok) throw new HttpProblemError(route.status, route.reason);
      const res = await answer(deps, req, route, route.file);
      return req.method === "HEAD" ? { ...res, body: undefined } : res;
    } catch (error) {
      if (error instanceof HttpProblemError) return text(error.status, error.message);
      throw error;
    }
  };
}

/** The endpoint of the file asked for. */
function answer(
  deps: PlaybackDeps,
  req: PlaybackRequest,
  path: StreamPath,
  file: PlaybackFile,
): Promise<PlaybackResponse> {
  switch (file.kind) {
    case "range-playlist":
      return onRangePlaylist(deps, req, path, file);
    case "timeshift-rel":
      return onTimeshiftRel(deps, req, path, file);
    case "timeshift-abs":
      return onTimeshiftAbs(deps, req, path, file);
    case "archive-mp4":
      return onArchiveMp4(deps, req, path, file);
    case "recording-status":
      return onRecordingStatus(deps, req, path);
    case "ranges":
      return onRangesJson(deps, req, path);
    case "dash-range":
      return onDashRange(deps, req, path, file);
    case "dash-timeshift-abs":
      return onDashTimeshiftAbs(deps, req, path, file);
    case "dash-rewind":
      return onDashRewind(deps, req, path, file);
    case "preview-mp4":
      return onPreviewMp4(deps, req, path, file);
    case "preview-jpg":
      return onPreviewJpg(deps, req, path, file);
    case "thumbnail":
      return onThumbnail(deps, req, path, file);
    case "image-playlist":
      return onImagePlaylist(deps, req, path, file);
  }
}
