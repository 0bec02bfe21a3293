/**
 * `rewind-{ago}.mpd` (paths/playback/dash-rewind.yml): live with a sliding window `ago` seconds
 * deep. Its live edge is now, which only the server has: the backup answers it while its newest
 * stored second is within REWIND_LAG_MS of now, and 425 with its lag otherwise (play
 * `timeshift_abs-{from}.mpd` or `archive-{from}-{dur}.mpd` from the backup instead).
 */
import { rangeSegments } from "../domain/hls-playlist.ts";
import { HttpProblemError, iso, isoMs } from "./answers.ts";
import { dashAnswer, periodMono } from "./dash-answer.ts";
import type { PlaybackDeps, PlaybackRequest, PlaybackResponse } from "./request.ts";
import { findTarget, readWindows, retentionStartSeconds, type StreamPath } from "./target.ts";

/** How far the backup's newest stored second may lag behind now for a rewind manifest. */
export const REWIND_LAG_MS = 60_000;

export async function onDashRewind(
  deps: PlaybackDeps,
  req: PlaybackRequest,
  path: StreamPath,
  { seconds }: { seconds: number },
): Promise<PlaybackResponse> {
  const t = findTarget(deps, path, req.query.token);
  const mono = periodMono(req);
  const nowMs = deps.now();
  const fromSec = Math.max(Math.floor(nowMs / 1000) - seconds, retentionStartSeconds(deps, t));
  const windows = await readWindows(deps, t, fromSec, Math.ceil(nowMs / 1000));
  // Cut from the first window's start, not from now - ago, so segments stay the same between reloads.
  const anchorMs = (windows[0]?.from ?? fromSec) * 1000;
  const segments = rangeSegments(windows, anchorMs, nowMs).filter(
    (s) => s.startMs >= fromSec * 1000 && s.startMs + s.durationMs <= nowMs,
  );
  const last = segments.at(-1);
  if (!last) {
    throw new HttpProblemError(
      404,
      `nothing of stream "${t.stream}" is stored from ${iso(fromSec)} to now (a hole in the backup, or not copied yet)`,
    );
  }
  const newestMs = last.startMs + last.durationMs;
  if (nowMs - newestMs > REWIND_LAG_MS) {
    throw new HttpProblemError(
      425,
      `the backup of stream "${t.stream}" is ${Math.ceil((nowMs - newestMs) / 1000)} s behind live (newest stored second ${isoMs(newestMs)}): rewind needs the live edge; play timeshift_abs-${fromSec}.mpd or archive-${fromSec}-${seconds}.mpd from the backup`,
    );
  }
  return dashAnswer(
    deps,
    t,
    segments,
    { type: "dynamic", mono, nowMs, shiftMs: 0, timeShiftBufferSeconds: seconds },
    "no-cache",
  );
}
