/**
 * What the DASH endpoints share: the checks a manifest over byte ranges needs (fMP4 windows only;
 * `?period=mono` only where one init serves every segment) and the answer itself.
 */
import { type DashManifest, monoProblem, renderDashManifest } from "../domain/dash-manifest.ts";
import type { PlannedSegment } from "../domain/hls-playlist.ts";
import { HttpProblemError } from "./answers.ts";
import type { PlaybackDeps, PlaybackRequest, PlaybackResponse } from "./request.ts";
import { type Target, windowUris } from "./target.ts";

/** `?period=` as asked: `mono` or absent; anything else is a 400. */
export function periodMono(req: PlaybackRequest): boolean {
  const period = req.query.period;
  if (period === undefined || period === "") return false;
  if (period === "mono") return true;
  throw new HttpProblemError(400, `period=${period} is not a period mode: the only one is period=mono`);
}

/** The MPD of `segments` (at least one), 409 when it cannot be made of byte ranges. */
export async function dashAnswer(
  deps: PlaybackDeps,
  t: Target,
  segments: readonly PlannedSegment[],
  m: Omit<DashManifest, "segments">,
  cacheControl: string,
): Promise<PlaybackResponse> {
  const ts = segments.find((s) => s.window.format !== "mp4" || !s.window.init);
  if (ts) {
    throw new HttpProblemError(
      409,
      `${ts.window.key} is stored as MPEG-TS: DASH manifests point into fragmented-MP4 windows only; play it with the HLS playlist (index-${ts.window.from}-${ts.window.duration}.m3u8)`,
    );
  }
  if (m.mono) {
    const problem = monoProblem(segments);
    if (problem) throw new HttpProblemError(409, problem);
  }
  const uris = await windowUris(deps, t, segments);
  return {
    status: 200,
    headers: { "Content-Type": "application/dash+xml", "Cache-Control": cacheControl },
    body: renderDashManifest({ ...m, segments }, (w) => uris.get(w)!),
  };
}
