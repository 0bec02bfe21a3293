/**
 * The live (time-shift) playlist behind `timeshift_rel-{s}.m3u8` and `timeshift_abs-{from}.m3u8`:
 * a sliding window LIVE_WINDOW_MS deep whose sequence numbers come from absolute time and the
 * index (functions/domain/hls-playlist.ts), so any number of handlers agree.
 */
import { WINDOW_LENGTHS_SECONDS } from "../domain/archive.ts";
import { windowEndMs } from "../domain/fragment-index.ts";
import {
  liveSegments,
  liveWindow,
  type NumberedSegment,
  renderMediaPlaylist,
} from "../domain/hls-playlist.ts";
import { HttpProblemError, iso, isoMs, playlist, utcDayStart } from "./answers.ts";
import type { PlaybackDeps, PlaybackResponse } from "./request.ts";
import { readWindows, retentionStartSeconds, type Target, windowUris } from "./target.ts";

/** How far a live (time-shift) playlist reaches back from its edge. */
export const LIVE_WINDOW_MS = 60_000;
/** Longest window length: a window with segments after a time starts at most this long before it. */
const LONGEST_WINDOW_MS = Math.max(...WINDOW_LENGTHS_SECONDS) * 1000;

/**
 * A live sliding-window playlist whose edge is `edgeMs` (module comment of hls-playlist.ts for the
 * numbering). 425 when the edge is later than anything the backup has stored (it lags behind
 * live). Inside a hole the playlist stays as it was at the hole's start (the player waits) and
 * goes on after it; 404 when nothing is stored from the start of the day before the edge.
 */
export async function livePlaylist(
  deps: PlaybackDeps,
  t: Target,
  edgeMs: number,
  notBeforeMs: number,
  o: { delaySeconds?: number },
): Promise<PlaybackResponse> {
  const nowMs = deps.now();
  const edgeSec = Math.ceil(edgeMs / 1000);
  if (edgeSec <= retentionStartSeconds(deps, t)) {
    throw new HttpProblemError(
      404,
      `${isoMs(edgeMs)} is before the retention window of stream "${t.stream}" (${t.retentionDays} days)`,
    );
  }
  // Every window numbered in this window's day(s) is read from the start of its day.
  const readFrom = utcDayStart(edgeMs - LIVE_WINDOW_MS - LONGEST_WINDOW_MS);
  const windows = await readWindows(deps, t, readFrom, edgeSec + 1);
  const segments = liveWindow(liveSegments(windows), edgeMs, LIVE_WINDOW_MS, notBeforeMs);
  let newestEnd = Math.max(Number.NEGATIVE_INFINITY, ...windows.map(windowEndMs));
  if (newestEnd < edgeMs) {
    const later = await readWindows(deps, t, Math.floor(edgeMs / 1000), Math.ceil(nowMs / 1000) + 1);
    newestEnd = Math.max(newestEnd, ...later.map(windowEndMs));
    if (newestEnd <= edgeMs) {
      if (newestEnd === Number.NEGATIVE_INFINITY) {
        throw new HttpProblemError(
          404,
          `nothing of stream "${t.stream}" is stored from ${iso(readFrom)} to now`,
        );
      }
      const lag = Math.ceil((nowMs - newestEnd) / 1000);
      throw new HttpProblemError(
        425,
        o.delaySeconds !== undefined
          ? `the backup of stream "${t.stream}" is ${lag} s behind live (newest stored second ${isoMs(newestEnd)}): ask for timeshift_rel-${lag} or more (a delay well above the usual lag keeps playing while windows land)`
          : `playback reached the newest second the backup of stream "${t.stream}" has stored (${isoMs(newestEnd)}, ${lag} s behind live): wait, or start again later`,
      );
    }
  }
  if (segments.length === 0) {
    throw new HttpProblemError(
      404,
      `nothing of stream "${t.stream}" is stored from ${iso(readFrom)} to ${isoMs(edgeMs)} (a hole in the backup): try a delay that lands after it`,
    );
  }

  const first = segments[0] as NumberedSegment;
  const uris = await windowUris(deps, t, segments);
  return playlist(
    renderMediaPlaylist(
      {
        type: "live",
        segments,
        mediaSequence: first.sequence,
        discontinuitySequence: first.discontinuitySequence,
      },
      (w) => uris.get(w)!,
    ),
    "no-cache",
  );
}
