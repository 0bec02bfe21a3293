import { json } from "./answers.ts";
import type { PlaybackDeps, PlaybackRequest, PlaybackResponse } from "./request.ts";
import { querySeconds, storedSpan } from "./stored-span.ts";
import { findTarget, retentionStartSeconds, type StreamPath } from "./target.ts";

/**
 * `recording_status.json`: the spec's `dvr_info` object (paths/playback/recording-status.yml,
 * components/schemas/dvr/dvr_info.yml): `from` the first stored second, `depth` from the start of
 * the first range to the end of the last, `ranges` ({from, duration} seconds), `duration` (seconds
 * stored, gaps excluded), `bytes`. With nothing stored: no ranges, `from` the span's start, depth 0.
 * `from`/`to` (older documented query parameters; none in the spec) narrow the span.
 */
export async function onRecordingStatus(
  deps: PlaybackDeps,
  req: PlaybackRequest,
  path: StreamPath,
): Promise<PlaybackResponse> {
  const t = findTarget(deps, path, req.query.token);
  const query = req.query;
  const { bytes, ranges } = await storedSpan(
    deps,
    t,
    querySeconds(query, "from", 1),
    querySeconds(query, "to", 1),
  );
  const duration = ranges.reduce((sum, r) => sum + r.to - r.from, 0);
  const from =
    ranges[0]?.from ?? Math.max(querySeconds(query, "from", 1) ?? 0, retentionStartSeconds(deps, t));
  const end = ranges.at(-1)?.to ?? from;
  return json({
    from,
    depth: end - from,
    ranges: ranges.map((r) => ({ from: r.from, duration: r.to - r.from })),
    bytes,
    duration,
  });
}
