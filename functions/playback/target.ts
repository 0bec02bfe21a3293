/**
 * The first steps every playback endpoint takes: check the token and find the configured source
 * and stream (`findTarget`), keep to the stream's retention, and read the windows of a span from
 * the fragment index. Each problem becomes its status here (403, 404, 416).
 */
import { defaultStreamSettings, listedStreams, type SourceConfig } from "../config/config.ts";
import { coverWindows, type WindowIndex } from "../domain/fragment-index.ts";
import type { PlannedSegment } from "../domain/hls-playlist.ts";
import { streamNameProblem } from "../domain/names.ts";
import { DAY_SECONDS, HttpProblemError, iso } from "./answers.ts";
import type { MediaAccess, PlaybackDeps } from "./request.ts";
import { tokenProblem } from "./token.ts";

/** Where a request is: the source's settings and the stream. */
export interface Target {
  source: SourceConfig;
  stream: string;
  retentionDays: number;
  token: string | undefined;
}

/** The configured source and stream, after the token check (403 refused token, then 404 unknown). */
/** Where a playback URL points: its source and stream, as parsed (routes.ts). */
export interface StreamPath {
  source: string;
  stream: string;
}

export function findTarget(deps: PlaybackDeps, path: StreamPath, token: string | undefined): Target {
  const { source: sourceName, stream } = path;
  // The token first: without a valid token for it, an unknown source is refused like a known one
  // (403, the same sentence), so source names cannot be probed.
  if (deps.tokenKeys) {
    const problem = tokenProblem(
      token,
      deps.tokenKeys,
      { source: sourceName, stream },
      Math.floor(deps.now() / 1000),
    );
    if (problem) throw new HttpProblemError(403, problem);
  }
  const source = deps.config.sources.find((s) => s.name === sourceName);
  if (!source) throw new HttpProblemError(404, `no source "${sourceName}" in this backup's configuration`);
  if (streamNameProblem(stream))
    throw new HttpProblemError(404, `no stream "${stream}" in source "${sourceName}"`);
  const listed = listedStreams(source);
  const settings = listed ? listed.find((s) => s.name === stream) : defaultStreamSettings(source, stream);
  if (!settings)
    throw new HttpProblemError(
      404,
      `no stream "${stream}" in source "${sourceName}" (not among its configured streams)`,
    );
  return { source, stream, retentionDays: settings.retentionDays, token };
}

export function retentionStartSeconds(deps: PlaybackDeps, t: Target): number {
  return Math.floor(deps.now() / 1000) - Math.round(t.retentionDays * DAY_SECONDS);
}

/** 404/416 when `[from, to)` (unix seconds) is outside what the stream's retention keeps. */
export function checkRetention(deps: PlaybackDeps, t: Target, from: number, to: number): void {
  const nowSeconds = Math.floor(deps.now() / 1000);
  const start = retentionStartSeconds(deps, t);
  if (to <= start) {
    throw new HttpProblemError(
      404,
      `${iso(from)} to ${iso(to)} is before the retention window of stream "${t.stream}" (${t.retentionDays} days: from ${iso(start)})`,
    );
  }
  if (from >= nowSeconds) {
    throw new HttpProblemError(
      416,
      `${iso(from)} is in the future (now is ${iso(nowSeconds)}): nothing is stored there yet`,
    );
  }
}

export async function readWindows(
  deps: PlaybackDeps,
  t: Target,
  fromSec: number,
  toSec: number,
): Promise<WindowIndex[]> {
  return coverWindows(await deps.index.readFragmentIndex(t.source.name, t.stream, fromSec, toSec));
}

export async function windowUris(
  deps: PlaybackDeps,
  t: Target,
  segments: readonly PlannedSegment[],
): Promise<Map<WindowIndex, string>> {
  const uris = new Map<WindowIndex, string>();
  const access: MediaAccess = { source: t.source.name, stream: t.stream, token: t.token };
  for (const s of segments)
    if (!uris.has(s.window)) uris.set(s.window, await deps.mediaUrl(s.window.key, access));
  return uris;
}
