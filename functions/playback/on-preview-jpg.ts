/**
 * JPEG images of stored key frames, decoded on request and cached (docs/playback.md: why on
 * request and not at copy time):
 *
 * - `{from}-preview.jpg` (paths/playback/jpeg-ondemand.yml): the first key frame at or after
 *   `from` (the key frame `{from}-preview.mp4` holds), at the frame's own size.
 * - `images-{W}x{H}/seg-{from}-{offset}.hls.jpg` and `…/dvr-{from}-{offset}.m4v.jpg`
 *   (hls-/dash-jpeg-thumbnail.yml): the first key frame at or after `from + offset`, fitted into
 *   `W`x`H` (never enlarged).
 *
 * A `from` in a gap gives the next key frame stored within PREVIEW_SEARCH_SECONDS, as Flussonic
 * "searches after" `from`; none there is 404. A window without video (audio only) is 409; a
 * handler without a decoder (no ffmpeg) is 501 pointing to the MP4 preview, which needs none.
 */
import { fitImage, type ImageSize } from "../domain/thumbnails.ts";
import { HttpProblemError } from "./answers.ts";
import { findKeyFrame, keyFrameMp4 } from "./on-preview-mp4.ts";
import type { PlaybackDeps, PlaybackRequest, PlaybackResponse } from "./request.ts";
import { findTarget, type StreamPath } from "./target.ts";

export async function onPreviewJpg(
  deps: PlaybackDeps,
  req: PlaybackRequest,
  path: StreamPath,
  { from }: { from: number },
): Promise<PlaybackResponse> {
  return keyFrameJpeg(deps, req, path, from, undefined);
}

export async function onThumbnail(
  deps: PlaybackDeps,
  req: PlaybackRequest,
  path: StreamPath,
  { at, area }: { at: number; area: ImageSize },
): Promise<PlaybackResponse> {
  return keyFrameJpeg(deps, req, path, at, area);
}

async function keyFrameJpeg(
  deps: PlaybackDeps,
  req: PlaybackRequest,
  path: StreamPath,
  from: number,
  area: ImageSize | undefined,
): Promise<PlaybackResponse> {
  const t = findTarget(deps, path, req.query.token);
  const k = await findKeyFrame(deps, t, from, "JPEG preview");
  const w = k.window;
  if (w.width === undefined || w.height === undefined) {
    throw new HttpProblemError(
      409,
      `stream "${t.stream}" has no video at ${new Date(k.fragment.startMs).toISOString()} (${w.key} holds audio only): there is no picture to show`,
    );
  }
  const frame = { width: w.width, height: w.height };
  const size = area ? fitImage(frame, area) : frame;
  const ms = k.fragment.startMs;
  const answer = (jpeg: Uint8Array): PlaybackResponse => ({
    status: 200,
    // The same picture for as long as the window is kept.
    headers: { "Content-Type": "image/jpeg", "Cache-Control": "private, max-age=3600" },
    body: jpeg,
  });
  const cached = await deps.imageCache?.get(t.source.name, t.stream, ms, size).catch(() => undefined);
  if (cached) return answer(cached);
  if (!deps.decodeJpeg) {
    throw new HttpProblemError(
      501,
      `this server cannot decode video to JPEG (no ffmpeg found): ask for ${Math.floor(ms / 1000)}-preview.mp4, the same key frame as MP4`,
    );
  }
  const jpeg = await deps.decodeJpeg(keyFrameMp4(deps, k), size);
  // A cache: a failed write costs a decode next time, not this answer.
  await deps.imageCache?.put(t.source.name, t.stream, ms, size, jpeg).catch(() => undefined);
  return answer(jpeg);
}
