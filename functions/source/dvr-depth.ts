/**
 * A stream's archive depth as the source's admin API reports it: the DVR `expiration` (seconds kept
 * back from now; components/schemas/dvr/dvr_base_config.yml) and the oldest second it holds
 * (`stats.dvr_info.from`, components/schemas/dvr/dvr_info.yml). The planner turns them into the
 * deletion deadline of every second the backup lacks (domain/deadlines.ts).
 */
export interface DvrDepth {
  /** The stream's DVR `expiration` in seconds, when the source reports one. */
  expirationSeconds?: number;
  /** The oldest second the source holds (unix seconds), when it reports it. */
  oldest?: number;
}

/** The depth facts of a stream entry of the stream list or stream info (unknown fields ignored). */
export function dvrDepthOf(stream: {
  dvr?: Record<string, unknown> | null | undefined;
  stats?: { dvr_info?: { from?: number | null | undefined } | null | undefined } | null | undefined;
}): DvrDepth {
  const expiration = stream.dvr?.expiration;
  const from = stream.stats?.dvr_info?.from;
  return {
    ...(typeof expiration === "number" && Number.isFinite(expiration) && expiration > 0
      ? { expirationSeconds: Math.floor(expiration) }
      : {}),
    ...(typeof from === "number" && Number.isFinite(from) && from > 0 ? { oldest: Math.floor(from) } : {}),
  };
}
