/**
 * The playback handler (issue 11 §2): answers Flussonic's DVR playback URLs from the backup.
 * Pure request in, response out: S3 reads, URL signing, the clock and the token keys are
 * injected, so the same handler runs behind `flussonic-backup serve` and, later, in AWS.
 *
 * Routes, relative to where the handler is mounted (`basePath`, default ""):
 *   /{source}/{stream...}/{file}   (stream names may contain "/"; the file is the last segment)
 * Files: index-{from}-{dur}.m3u8, archive-{from}-{dur}.m3u8 (and .fmp4.m3u8), timeshift_rel-{s}.m3u8,
 * timeshift_abs-{from}.m3u8, archive-{from}-{dur}.mp4, recording_status.json, ranges.json.
 *
 * - Catch-up playlists (`index|archive-{from}-{dur}[.fmp4].m3u8`, dur ≤ 24 h or `now`): VOD, or
 *   EVENT with `dur=now`, or with `?event=true` while `from + dur` is in the future (the spec's
 *   rule, paths/playback/hls-dvr.yml); segments from functions/domain/hls-playlist.ts. A media
 *   playlist, where the spec's is a multivariant one (docs/playback.md: what players get and why).
 * - `timeshift_rel-{s}.m3u8`: live playlist (LIVE_WINDOW_MS deep) whose edge is now - s; its
 *   sequence numbers come from absolute time and the index (hls-playlist.ts), so any number of
 *   handlers agree. 425 when the backup has nothing as recent as the edge (it lags behind live).
 * - `timeshift_abs-{from}.m3u8`: Flussonic's is session-bound; this one is stateless. The first
 *   request is redirected (302) to the same URL with `start=<now, unix seconds>`; from then on the
 *   playback position is `from + (now - start)`, and the playlist is the live playlist whose edge
 *   runs TIMESHIFT_ABS_LEAD_MS ahead of it (segments before `from` left out). Dropping `start`
 *   starts again.
 * - `archive-{from}-{dur}.mp4` (`dur` may be `now`, as paths/playback/mp4-export.yml allows): a 302 to `mediaUrl` of the window when the range is exactly one
 *   stored window; otherwise the range's fragments joined by Mp4Joiner (one init, decode times
 *   rebased), read by ranged reads, streamed.
 * - `recording_status.json` / `ranges.json`: what the fragment index holds (stored media only,
 *   within retention); windows stored before the index and not reindexed are not counted.
 *   recording_status.json is the spec's `dvr_info` object (domain/flussonic-contract.ts);
 *   ranges.json (`closed_at_gte`/`opened_at_lte`, ms) is ours: it is not in the spec.
 * - Access: `?token=` (token.ts) checked against `tokenKeys`; 403 with the reason.
 * - Errors are plain-text one-sentence bodies: 404 unknown source/stream or nothing stored,
 *   400 malformed times or too long a range, 416 a range in the future, 409 what cannot be
 *   exported as asked, 425 a delay shorter than the backup's lag.
 */
import {
  type BackupConfig,
  defaultStreamSettings,
  listedStreams,
  type SourceConfig,
} from "../config/config.ts";
import { WINDOW_LENGTHS_SECONDS } from "../domain/archive.ts";
import {
  type ByteRange,
  coverWindows,
  type FragmentIndexReader,
  storedSpans,
  type WindowIndex,
  windowEndMs,
} from "../domain/fragment-index.ts";
import {
  GAP_TOLERANCE_MS,
  liveSegments,
  liveWindow,
  MAX_SEGMENT_MS,
  type NumberedSegment,
  type PlannedSegment,
  rangeSegments,
  renderMediaPlaylist,
} from "../domain/hls-playlist.ts";
import { Mp4Joiner } from "../domain/mp4-join.ts";
import { streamNameProblem } from "../domain/names.ts";
import { MAX_RANGE_SECONDS, type PlaybackFile, parsePlaybackPath } from "./routes.ts";
import { tokenProblem } from "./token.ts";

/** An HTTP request as the handler sees it (the server parses the URL). */
export interface PlaybackRequest {
  /** "GET", "HEAD", … (HEAD is answered like GET without a body). */
  method: string;
  /** URL path, percent-encoded as received, without the query, e.g. "/streamer1/cam1/index-1700000000-600.m3u8". */
  path: string;
  /** Query parameters (first value of each), e.g. { token: "…" }. */
  query: Record<string, string | undefined>;
  /** Request headers, lower-case names. */
  headers: Record<string, string | undefined>;
}

/** The handler's answer; `body` undefined for HEAD, redirects and empty answers. */
export interface PlaybackResponse {
  status: number;
  /** Header names as sent ("Content-Type", "Location", "Cache-Control", …). */
  headers: Record<string, string>;
  body: string | Uint8Array | AsyncIterable<Uint8Array> | undefined;
}

export type PlaybackHandler = (req: PlaybackRequest) => Promise<PlaybackResponse>;

/** Who asks for a media URL: the playback request's source, stream and token. */
export interface MediaAccess {
  source: string;
  stream: string;
  token?: string | undefined;
}

/** What the handler needs from the outside. Nothing in it is local-only. */
export interface PlaybackDeps {
  /** The parsed configuration: sources, their streams and retention. */
  config: BackupConfig;
  /** The fragment index (functions/store/fragment-index-store.ts over S3, or in memory in tests). */
  index: FragmentIndexReader;
  /**
   * Bytes of a stored object (a window's S3 key), the whole object or one byte range: a ranged
   * GetObject body, read as a stream (used by `archive-….mp4`).
   */
  readObject(key: string, range?: ByteRange): Promise<AsyncIterable<Uint8Array>>;
  /**
   * The URI a player fetches a stored object from (a window's S3 key): a presigned S3 GET URL, or
   * a URL of the local server's media route that honours `Range`. Playlists address pieces of it
   * with EXT-X-BYTERANGE / MAP BYTERANGE, so it is called once per window, not per segment.
   * `access` is the request's source, stream and token (a local media route may check the token;
   * a presigned URL ignores it). Never log the token.
   */
  mediaUrl(key: string, access?: MediaAccess): string | Promise<string>;
  /** Unix milliseconds now (injected so tests drive time-shift playlists with their own clock). */
  now(): number;
  /**
   * HMAC keys that sign playback tokens, current first then previous ones (rotation): a token
   * signed with any of them is accepted, new ones are signed with the first. `undefined` turns
   * token checks off (only `serve --no-auth` on a loopback host does that).
   */
  tokenKeys: readonly string[] | undefined;
  /** Path prefix the handler is mounted under, e.g. "/play" ("" by default). */
  basePath?: string;
}

/** How far a live (time-shift) playlist reaches back from its edge. */
export const LIVE_WINDOW_MS = 60_000;
/**
 * `timeshift_abs`: the playlist's edge runs this far ahead of the playback position, so a player
 * that starts three segments before the edge (hls.js, Safari) starts at `from`.
 */
export const TIMESHIFT_ABS_LEAD_MS = 3 * MAX_SEGMENT_MS;
/** Longest window length: a window with segments after a time starts at most this long before it. */
const LONGEST_WINDOW_MS = Math.max(...WINDOW_LENGTHS_SECONDS) * 1000;
const DAY_SECONDS = 86_400;

const PLAYLIST_TYPE = "application/vnd.apple.mpegurl";

class HttpProblemError extends Error {
  readonly code = "FB_HTTP_PROBLEM";
  readonly status: number;
  constructor(status: number, message: string) {
    // One line whatever the request held: names come from the URL and may carry control characters.
    super(oneLine(message));
    this.status = status;
  }
}

/** `text` with control characters written as `\uXXXX`, so an answer's sentence stays one line. */
function oneLine(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point.
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Where a request is: the source's settings and the stream. */
interface Target {
  source: SourceConfig;
  stream: string;
  retentionDays: number;
  token: string | undefined;
}

/** The playback handler: Flussonic DVR URLs answered from the backup (module comment). */
export function createPlaybackHandler(deps: PlaybackDeps): PlaybackHandler {
  const base = (deps.basePath ?? "").replace(/\/+$/, "");
  return async (req) => {
    try {
      if (req.method !== "GET" && req.method !== "HEAD") {
        return {
          ...text(405, `${req.method} is not allowed: playback URLs answer GET and HEAD`),
          headers: { ...TEXT, Allow: "GET, HEAD" },
        };
      }
      if (base && !(req.path === base || req.path.startsWith(`${base}/`))) {
        throw new HttpProblemError(404, `not a playback URL: playback is under ${base}/`);
      }
      const route = parsePlaybackPath(req.path.slice(base.length));
      if (!route.ok) throw new HttpProblemError(route.status, route.reason);
      const target = resolveTarget(deps, route.source, route.stream, req.query.token);
      const res = await answer(deps, req, target, route.file);
      return req.method === "HEAD" ? { ...res, body: undefined } : res;
    } catch (error) {
      if (error instanceof HttpProblemError) return text(error.status, error.message);
      throw error;
    }
  };
}

/** The configured source and stream, after the token check (403 refused token, then 404 unknown). */
function resolveTarget(
  deps: PlaybackDeps,
  sourceName: string,
  stream: string,
  token: string | undefined,
): Target {
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

async function answer(
  deps: PlaybackDeps,
  req: PlaybackRequest,
  t: Target,
  file: PlaybackFile,
): Promise<PlaybackResponse> {
  switch (file.kind) {
    case "range-playlist":
      return rangePlaylist(deps, t, file.from, file.duration, req.query.event === "true");
    case "timeshift-rel": {
      const edgeMs = deps.now() - file.seconds * 1000;
      return livePlaylist(deps, t, edgeMs, Number.NEGATIVE_INFINITY, { delaySeconds: file.seconds });
    }
    case "timeshift-abs":
      return timeshiftAbs(deps, req, t, file.from);
    case "archive-mp4":
      return archiveMp4(deps, t, file.from, exportDuration(deps, file.from, file.duration));
    case "recording-status":
      return recordingStatus(deps, t, req.query);
    case "ranges":
      return rangesJson(deps, t, req.query);
  }
}

function retentionStartSeconds(deps: PlaybackDeps, t: Target): number {
  return Math.floor(deps.now() / 1000) - Math.round(t.retentionDays * DAY_SECONDS);
}

/** 404/416 when `[from, to)` (unix seconds) is outside what the stream's retention keeps. */
function checkRetention(deps: PlaybackDeps, t: Target, from: number, to: number): void {
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

async function readWindows(
  deps: PlaybackDeps,
  t: Target,
  fromSec: number,
  toSec: number,
): Promise<WindowIndex[]> {
  return coverWindows(await deps.index.readFragmentIndex(t.source.name, t.stream, fromSec, toSec));
}

async function windowUris(
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

/**
 * `index|archive-{from}-{dur}[.fmp4].m3u8`. paths/playback/hls-dvr.yml: VOD by default; EVENT with
 * `dur=now`, or with `?event=true` while `from + dur` is in the future (then VOD once it passed).
 * Most players start a VOD at its beginning and an EVENT at its live edge.
 */
async function rangePlaylist(
  deps: PlaybackDeps,
  t: Target,
  from: number,
  duration: number | "now",
  event: boolean,
): Promise<PlaybackResponse> {
  const nowMs = deps.now();
  const toMs = duration === "now" ? nowMs : (from + duration) * 1000;
  if (duration === "now" && nowMs - from * 1000 > MAX_RANGE_SECONDS * 1000) {
    throw new HttpProblemError(
      400,
      `${iso(from)} to now is longer than ${MAX_RANGE_SECONDS} s (24 hours): start later or ask for a range`,
    );
  }
  if (toMs <= from * 1000)
    throw new HttpProblemError(416, `${iso(from)} is in the future: nothing is stored there yet`);
  checkRetention(deps, t, from, Math.ceil(toMs / 1000));
  const windows = await readWindows(deps, t, from, Math.ceil(toMs / 1000));
  const segments = rangeSegments(windows, from * 1000, toMs);
  if (segments.length === 0) {
    throw new HttpProblemError(
      404,
      `nothing of stream "${t.stream}" is stored from ${iso(from)} to ${isoMs(toMs)} (a hole in the backup, or not copied yet)`,
    );
  }
  const type = duration === "now" || (event && toMs > nowMs) ? "EVENT" : "VOD";
  const uris = await windowUris(deps, t, segments);
  return playlist(
    renderMediaPlaylist({ type, segments }, (w) => uris.get(w)!),
    // A VOD of a range that reaches now holds more on the next request: not cached.
    type === "VOD" && toMs < nowMs ? "private, max-age=60" : "no-cache",
  );
}

/** `timeshift_abs-{from}`: without `start`, a redirect that adds it; then a live playlist at from + (now - start). */
async function timeshiftAbs(
  deps: PlaybackDeps,
  req: PlaybackRequest,
  t: Target,
  from: number,
): Promise<PlaybackResponse> {
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
  checkRetention(deps, t, from, from + 1);
  const positionMs = from * 1000 + (nowMs - Number(startParam) * 1000);
  return livePlaylist(deps, t, positionMs + TIMESHIFT_ABS_LEAD_MS, from * 1000, {});
}

/**
 * A live sliding-window playlist whose edge is `edgeMs` (module comment of hls-playlist.ts for the
 * numbering). 425 when the edge is later than anything the backup has stored (it lags behind
 * live). Inside a hole the playlist stays as it was at the hole's start (the player waits) and
 * goes on after it; 404 when nothing is stored from the start of the day before the edge.
 */
async function livePlaylist(
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

/** `archive-{from}-{dur}.mp4`: a redirect to the one stored window, or the range joined into one fMP4. */
async function archiveMp4(
  deps: PlaybackDeps,
  t: Target,
  from: number,
  duration: number,
): Promise<PlaybackResponse> {
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

/** Per window, its init bytes and the runs of contiguous fragment bytes to copy. */
interface JoinPart {
  window: WindowIndex;
  runs: { offset: number; length: number; startMs: number }[];
}

function joinPlan(segments: readonly PlannedSegment[], toMs: number): JoinPart[] {
  const parts: JoinPart[] = [];
  for (const whole of segments) {
    // A segment may run past the range's end: the export stops at the first fragment starting there.
    const s = { ...whole };
    const end = s.offset + s.length;
    if (s.startMs + s.durationMs > toMs) {
      const kept = s.window.fragments.filter(
        (f) => f.offset >= s.offset && f.offset < end && f.startMs < toMs,
      );
      const last = kept[kept.length - 1];
      if (last) s.length = last.offset + last.length - s.offset;
    }
    let part = parts[parts.length - 1];
    if (!part || part.window !== s.window) {
      part = { window: s.window, runs: [] };
      parts.push(part);
    }
    const run = part.runs[part.runs.length - 1];
    if (run && run.offset + run.length === s.offset) run.length += s.length;
    else part.runs.push({ offset: s.offset, length: s.length, startMs: s.startMs });
  }
  return parts;
}

/** Streams the joined file: per window its init then its fragment runs, through Mp4Joiner. */
async function* joinedMp4(deps: PlaybackDeps, plan: readonly JoinPart[]): AsyncGenerator<Uint8Array> {
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

/** Stored media spans (`[startMs, endMs)`, merged) as whole-second ranges inside `[fromSec, toSec)`. */
function storedRanges(
  spans: readonly (readonly [number, number])[],
  fromSec: number,
  toSec: number,
): { from: number; to: number }[] {
  const out: { from: number; to: number }[] = [];
  for (const [start, end] of spans) {
    // Count only whole seconds the backup holds.
    const from = Math.max(Math.ceil(start / 1000 - 0.001), fromSec);
    const to = Math.min(Math.floor(end / 1000 + 0.001), toSec);
    if (to > from) out.push({ from, to });
  }
  return out;
}

function querySeconds(query: PlaybackRequest["query"], name: string, scale: number): number | undefined {
  const v = query[name];
  if (v === undefined || v === "") return undefined;
  if (v === "now") return undefined;
  if (!/^\d{1,15}$/.test(v)) throw new HttpProblemError(400, `${name}=${v} is not a unix time`);
  return Math.floor(Number(v) / scale);
}

/**
 * The data of `recording_status.json` and `ranges.json`: the stored whole-second ranges in
 * `[fromSec, toSec)` (clipped to retention and now) and the bytes of their windows. Through the
 * index's per-stream summary when it has one (a bounded number of S3 reads for any span).
 */
async function storedSpan(
  deps: PlaybackDeps,
  t: Target,
  fromSec: number | undefined,
  toSec: number | undefined,
): Promise<{ bytes: number; ranges: { from: number; to: number }[] }> {
  const nowSeconds = Math.ceil(deps.now() / 1000);
  const from = Math.max(fromSec ?? 0, retentionStartSeconds(deps, t));
  const to = Math.min(toSec ?? nowSeconds, nowSeconds);
  if (to <= from) return { bytes: 0, ranges: [] };
  const stored = deps.index.readStoredSpans
    ? await deps.index.readStoredSpans(t.source.name, t.stream, from, to)
    : storedSpans(await deps.index.readFragmentIndex(t.source.name, t.stream, from, to), GAP_TOLERANCE_MS);
  return { bytes: stored.bytes, ranges: storedRanges(stored.spans, from, to) };
}

/**
 * `recording_status.json`: the spec's `dvr_info` object (paths/playback/recording-status.yml,
 * components/schemas/dvr/dvr_info.yml): `from` the first stored second, `depth` from the start of
 * the first range to the end of the last, `ranges` ({from, duration} seconds), `duration` (seconds
 * stored, gaps excluded), `bytes`. With nothing stored: no ranges, `from` the span's start, depth 0.
 * `from`/`to` (older documented query parameters; none in the spec) narrow the span.
 */
async function recordingStatus(
  deps: PlaybackDeps,
  t: Target,
  query: PlaybackRequest["query"],
): Promise<PlaybackResponse> {
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

/**
 * `ranges.json`: ours, not in the spec (Flussonic's DVR player asks a server for it with
 * `closed_at_gte`/`opened_at_lte` in ms and reads `ranges[].opened_at/closed_at`).
 */
async function rangesJson(
  deps: PlaybackDeps,
  t: Target,
  query: PlaybackRequest["query"],
): Promise<PlaybackResponse> {
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

const TEXT = { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" };

function text(status: number, message: string): PlaybackResponse {
  return { status, headers: { ...TEXT }, body: `${message}\n` };
}

function json(value: unknown): PlaybackResponse {
  return {
    status: 200,
    headers: { "Content-Type": "application/json", "Cache-Control": "no-cache" },
    body: JSON.stringify(value),
  };
}

function playlist(body: string, cacheControl: string): PlaybackResponse {
  return { status: 200, headers: { "Content-Type": PLAYLIST_TYPE, "Cache-Control": cacheControl }, body };
}

function utcDayStart(ms: number): number {
  return Math.floor(ms / 1000 / DAY_SECONDS) * DAY_SECONDS;
}

function iso(seconds: number): string {
  return isoMs(seconds * 1000);
}

function isoMs(ms: number): string {
  return Number.isFinite(ms) && Math.abs(ms) < 8.64e15
    ? new Date(ms).toISOString().replace(".000Z", "Z")
    : String(ms);
}
