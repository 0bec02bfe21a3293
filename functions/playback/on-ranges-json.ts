import { json } from "./answers.ts";
import type { PlaybackDeps, PlaybackRequest, PlaybackResponse } from "./request.ts";
import { querySeconds, storedSpan } from "./stored-span.ts";
import { findTarget, type StreamPath } from "./target.ts";

/**
 * `ranges.json`: ours, not in the spec (Flussonic's DVR player asks a server for it with
 * `closed_at_gte`/`opened_at_lte` in ms and reads `ranges[].opened_at/closed_at`).
 */
export async function onRangesJson(
  deps: PlaybackDeps,
  req: PlaybackRequest,
  path: StreamPath,
): Promise<PlaybackResponse> {
  const t = findTarget(deps, path, req.query.token);
  const query = req.query;
  const closedAtGte = querySeconds(query, "closed_at_gte", 1000);
  const openedAtLte = querySeconds(query, "opened_at_lte", 1000);
  const { ranges } = await storedSpan(
    deps,
    t,
    closedAtGte,
    openedAtLte === undefined ? undefined : openedAtLte + 1,
  );
  return json({ ranges: ranges.map((r) => ({ opened_at: r.from * 1000, closed_at: r.to * 1000 })) });
}
