/**
 * `timeshift_abs-{from}.m3u8`: Flussonic's is session-bound; this one is stateless. The first
 * request is redirected (302) to the same URL with `start=<now, unix seconds>`; from then on the
 * playback position is `from + (now - start)`, and the playlist is the live playlist whose edge
 * runs TIMESHIFT_ABS_LEAD_MS ahead of it (segments before `from` left out). Dropping `start`
 * starts again.
 */
import { MAX_SEGMENT_MS } from "../domain/hls-playlist.ts";
import { HttpProblemError } from "./answers.ts";
import { livePlaylist } from "./live-playlist.ts";
import type { PlaybackDeps, PlaybackRequest, PlaybackResponse } from "./request.ts";
import { checkRetention, findTarget, type StreamPath } from "./target.ts";

/**
 * `timeshift_abs`: the playlist's edge runs this far ahead of the playback position, so a player
 * that starts three segments before the edge (hls.js, Safari) starts at `from`.
 */
export const TIMESHIFT_ABS_LEAD_MS = 3 * MAX_SEGMENT_MS;

/** `timeshift_abs-{from}`: without `start`, a redirect that adds it; then a live playlist at from + (now - start). */
export async function onTimeshiftAbs(
  deps: PlaybackDeps,
  req: PlaybackRequest,
  path: StreamPath,
  { from }: { from: number },
): Promise<PlaybackResponse> {
  const t = findTarget(deps, path, req.query.token);
  const start = sessionStart(deps, req);
  if (typeof start !== "number") return start;
  const nowMs = deps.now();
  checkRetention(deps, t, from, from + 1);
  const positionMs = from * 1000 + (nowMs - start * 1000);
  return livePlaylist(deps, t, positionMs + TIMESHIFT_ABS_LEAD_MS, from * 1000, {});
}

/**
 * The session's start (unix seconds) from `?start=`, or the redirect that adds it (now) to the
 * URL asked for: the stateless form of Flussonic's session-bound timeshift_abs.
 */
export function sessionStart(deps: PlaybackDeps, req: PlaybackRequest): number | PlaybackResponse {
  const nowMs = deps.now();
  const startParam = req.query.start;
  if (startParam === undefined) {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(req.query)) if (v !== undefined) query.set(k, v);
    query.set("start", String(Math.floor(nowMs / 1000)));
    return {
      status: 302,
      headers: { Location: `${req.path}?${query}`, "Cache-Control": "no-store" },
      body: undefined,
    };
  }
  if (!/^\d{1,12}$/.test(startParam) || Number(startParam) * 1000 > nowMs + 60_000) {
    throw new HttpProblemError(
      400,
      `start=${startParam} is not a unix time in seconds up to now (drop it to start again)`,
    );
  }
  return Number(startParam);
}
