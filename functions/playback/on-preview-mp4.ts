/**
 * `{from}-preview.mp4` (paths/playback/mp4-dvr.yml): the first key frame at or after `from` as a
 * one-fragment MP4, cut from the stored window without decoding: the window's init and the
 * fragment that starts with that key frame (its decode time rebased to 0 by Mp4Joiner). As the
 * spec describes, a `from` in a gap finds the next key frame stored within PREVIEW_SEARCH_SECONDS
 * (a client may ask for an approximate time); none there is 404. The fragment is whatever the
 * source packed with the key frame (one frame, or a whole GOP with one-second fragments).
 */
import type { Fragment, WindowIndex } from "../domain/fragment-index.ts";
import { HttpProblemError, iso } from "./answers.ts";
import { joinedMp4 } from "./on-archive-mp4.ts";
import type { PlaybackDeps, PlaybackRequest, PlaybackResponse } from "./request.ts";
import { checkRetention, findTarget, readWindows, type StreamPath, type Target } from "./target.ts";

/** How far after `from` a preview looks for a stored key frame (seconds). */
export const PREVIEW_SEARCH_SECONDS = 600;

/** A stored key frame: its window and its fragment. */
export interface KeyFrame {
  window: WindowIndex;
  fragment: Fragment;
}

/**
 * The first key frame stored at or after `from` (within PREVIEW_SEARCH_SECONDS) of a fMP4
 * window: 404 when there is none, 409 when its window is MPEG-TS.
 */
export async function findKeyFrame(
  deps: PlaybackDeps,
  t: Target,
  from: number,
  what: string,
): Promise<KeyFrame> {
  const to = from + PREVIEW_SEARCH_SECONDS;
  checkRetention(deps, t, from, to);
  for (const w of await readWindows(deps, t, from, to)) {
    const f = w.fragments.find((x) => x.keyframe && x.startMs >= from * 1000 && x.startMs < to * 1000);
    if (!f) continue;
    if (w.format !== "mp4" || !w.init) {
      throw new HttpProblemError(
        409,
        `${w.key} is stored as MPEG-TS: a ${what} is cut from fragmented-MP4 windows only; ask for archive-${Math.floor(f.startMs / 1000)}-1.ts at the source, or play the HLS playlist`,
      );
    }
    return { window: w, fragment: f };
  }
  throw new HttpProblemError(
    404,
    `no key frame of stream "${t.stream}" is stored from ${iso(from)} to ${iso(to)} (${PREVIEW_SEARCH_SECONDS} s on): a hole in the backup, or not copied yet`,
  );
}

/** The key frame as a one-fragment MP4 (its window's init and its fragment). */
export function keyFrameMp4(deps: PlaybackDeps, k: KeyFrame): AsyncGenerator<Uint8Array> {
  const f = k.fragment;
  return joinedMp4(deps, [
    { window: k.window, runs: [{ offset: f.offset, length: f.length, startMs: f.startMs }] },
  ]);
}

export async function onPreviewMp4(
  deps: PlaybackDeps,
  req: PlaybackRequest,
  path: StreamPath,
  { from }: { from: number },
): Promise<PlaybackResponse> {
  const t = findTarget(deps, path, req.query.token);
  const k = await findKeyFrame(deps, t, from, "preview MP4");
  return {
    status: 200,
    // The same bytes for as long as the window is kept.
    headers: { "Content-Type": "video/mp4", "Cache-Control": "private, max-age=3600" },
    body: keyFrameMp4(deps, k),
  };
}
