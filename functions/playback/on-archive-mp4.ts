/**
 * `archive-{from}-{dur}.mp4` (`dur` may be `now`, as paths/playback/mp4-export.yml allows): a 302
 * to `mediaUrl` of the window when the range is exactly one stored window; otherwise the range's
 * fragments joined by Mp4Joiner (one init, decode times rebased; the plan is `joinPlan` in
 * functions/domain/mp4-join.ts), read by ranged reads, streamed.
 */

import type { WindowIndex } from "../domain/fragment-index.ts";
import { rangeSegments } from "../domain/hls-playlist.ts";
import { type JoinPart, joinPlan, Mp4Joiner } from "../domain/mp4-join.ts";
import { HttpProblemError, iso } from "./answers.ts";
import type { PlaybackDeps, PlaybackRequest, PlaybackResponse } from "./request.ts";
import { MAX_RANGE_SECONDS } from "./routes.ts";
import { checkRetention, findTarget, readWindows, type StreamPath } from "./target.ts";

/** `archive-{from}-{dur}.mp4`: a redirect to the one stored window, or the range joined into one fMP4. */
export async function onArchiveMp4(
  deps: PlaybackDeps,
  req: PlaybackRequest,
  path: StreamPath,
  file: { from: number; duration: number | "now" },
): Promise<PlaybackResponse> {
  const t = findTarget(deps, path, req.query.token);
  const from = file.from;
  const duration = exportDuration(deps, from, file.duration);
  checkRetention(deps, t, from, from + duration);
  const windows = await readWindows(deps, t, from, from + duration);
  const exact = windows.find((w) => w.from === from && w.duration === duration);
  if (exact) {
    const location = await deps.mediaUrl(exact.key, {
      source: t.source.name,
      stream: t.stream,
      token: t.token,
    });
    return { status: 302, headers: { Location: location, "Cache-Control": "no-store" }, body: undefined };
  }
  const segments = rangeSegments(windows, from * 1000, (from + duration) * 1000);
  if (segments.length === 0) {
    throw new HttpProblemError(
      404,
      `nothing of stream "${t.stream}" is stored from ${iso(from)} to ${iso(from + duration)}`,
    );
  }
  const plan = joinPlan(segments, (from + duration) * 1000);
  const ts = plan.find((p) => p.window.format !== "mp4" || !p.window.init);
  if (ts) {
    throw new HttpProblemError(
      409,
      `${ts.window.key} is stored as MPEG-TS: an MP4 export joins fragmented-MP4 windows only; ask for archive-${ts.window.from}-${ts.window.duration}.mp4 (the window as stored) or use the playlist`,
    );
  }
  const setup = (w: WindowIndex) => `${w.codecs ?? ""}|${w.width ?? ""}x${w.height ?? ""}`;
  const changed = plan.find((p) => setup(p.window) !== setup(plan[0]!.window));
  if (changed) {
    throw new HttpProblemError(
      409,
      `the track setup (codecs or resolution) changes at ${iso(changed.window.from)}: one MP4 file cannot switch it; export before and from that time separately`,
    );
  }
  return {
    status: 200,
    headers: { "Content-Type": "video/mp4", "Cache-Control": "private, max-age=60" },
    body: joinedMp4(deps, plan),
  };
}

/** An export's duration: `now` is up to the current second (416 from the future, 400 over 24 h). */
function exportDuration(deps: PlaybackDeps, from: number, duration: number | "now"): number {
  if (duration !== "now") return duration;
  const nowSeconds = Math.floor(deps.now() / 1000);
  if (from >= nowSeconds) {
    throw new HttpProblemError(416, `${iso(from)} is in the future: nothing is stored there yet`);
  }
  if (nowSeconds - from > MAX_RANGE_SECONDS) {
    throw new HttpProblemError(
      400,
      `${iso(from)} to now is longer than ${MAX_RANGE_SECONDS} s (24 hours): start later or ask for a range`,
    );
  }
  return nowSeconds - from;
}

/** Streams the joined file: per window its init then its fragment runs, through Mp4Joiner. */
export async function* joinedMp4(deps: PlaybackDeps, plan: readonly JoinPart[]): AsyncGenerator<Uint8Array> {
  const joiner = new Mp4Joiner();
  for (const part of plan) {
    const w = part.window;
    // The joiner takes the first fragment it sees as the window's start.
    joiner.startWindow({ from: part.runs[0]!.startMs / 1000, duration: w.duration, label: w.key });
    for (const range of [w.init!, ...part.runs.map((r) => ({ offset: r.offset, length: r.length }))]) {
      for await (const chunk of await deps.readObject(w.key, range)) {
        for (const piece of joiner.push(chunk)) yield piece;
      }
    }
    joiner.endWindow();
  }
  joiner.finish();
}
