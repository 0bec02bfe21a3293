/**
 * Playback URLs (Flussonic's DVR URL shapes) parsed into what they ask for. Pure.
 *
 *   /{source}/{stream...}/{file}
 *
 * The stream name may contain "/": the file is the last path segment, the source the first, and
 * everything between is the stream. Each segment is percent-decoded.
 */

/** What a playback URL asks for. */
export type PlaybackFile =
  | { kind: "range-playlist"; from: number; duration: number | "now" }
  | { kind: "timeshift-rel"; seconds: number }
  | { kind: "timeshift-abs"; from: number }
  | { kind: "archive-mp4"; from: number; duration: number | "now" }
  | { kind: "recording-status" }
  | { kind: "ranges" }
  | { kind: "dash-range"; from: number; duration: number | "now" }
  | { kind: "dash-timeshift-abs"; from: number }
  | { kind: "dash-rewind"; seconds: number }
  | { kind: "preview-mp4"; from: number };

export type PlaybackRoute =
  | { ok: true; source: string; stream: string; file: PlaybackFile }
  | { ok: false; status: 400 | 404; reason: string };

/** Longest range a playlist or export may cover (seconds): a 24-hour playlist is ~14,400 segments. */
export const MAX_RANGE_SECONDS = 86_400;

const TIME = "(\\d{1,12})";
const FILES: [RegExp, (m: RegExpMatchArray) => PlaybackFile][] = [
  [
    new RegExp(`^(?:index|archive)-${TIME}-(\\d{1,12}|now)(?:\\.fmp4)?\\.m3u8$`),
    (m) => ({ kind: "range-playlist", from: Number(m[1]), duration: m[2] === "now" ? "now" : Number(m[2]) }),
  ],
  [
    new RegExp(`^timeshift_rel-${TIME}(?:\\.fmp4)?\\.m3u8$`),
    (m) => ({ kind: "timeshift-rel", seconds: Number(m[1]) }),
  ],
  [
    new RegExp(`^timeshift_abs-${TIME}(?:\\.fmp4)?\\.m3u8$`),
    (m) => ({ kind: "timeshift-abs", from: Number(m[1]) }),
  ],
  [
    // paths/playback/mp4-export.yml: the duration may be `now`.
    new RegExp(`^archive-${TIME}-(\\d{1,12}|now)\\.mp4$`),
    (m) => ({ kind: "archive-mp4", from: Number(m[1]), duration: m[2] === "now" ? "now" : Number(m[2]) }),
  ],
  // DASH (streaming.yml: paths/playback/dash-dvr.yml, dash-timeshift-abs.yml, dash-rewind.yml).
  [
    new RegExp(`^archive-${TIME}-(\\d{1,12}|now)\\.mpd$`),
    (m) => ({ kind: "dash-range", from: Number(m[1]), duration: m[2] === "now" ? "now" : Number(m[2]) }),
  ],
  [new RegExp(`^timeshift_abs-${TIME}\\.mpd$`), (m) => ({ kind: "dash-timeshift-abs", from: Number(m[1]) })],
  [new RegExp(`^rewind-${TIME}\\.mpd$`), (m) => ({ kind: "dash-rewind", seconds: Number(m[1]) })],
  // paths/playback/mp4-dvr.yml.
  [new RegExp(`^${TIME}-preview\\.mp4$`), (m) => ({ kind: "preview-mp4", from: Number(m[1]) })],
  [/^recording_status\.json$/, () => ({ kind: "recording-status" })],
  [/^ranges\.json$/, () => ({ kind: "ranges" })],
];

/** Files whose name says what they are but whose times do not parse (answered 400, not 404). */
const MALFORMED = /^(?:index|archive|timeshift_rel|timeshift_abs|rewind)-.*\.(?:m3u8|mp4|mpd)$/;

/** Parses a request path (relative to the handler's base path). */
export function parsePlaybackPath(path: string): PlaybackRoute {
  const raw = path.split("/");
  if (raw[0] !== "" || raw.length < 4 || raw.slice(1).some((s) => s === "")) {
    return { ok: false, status: 404, reason: "not a playback URL: expected /{source}/{stream}/{file}" };
  }
  let parts: string[];
  try {
    parts = raw.slice(1).map((s) => decodeURIComponent(s));
  } catch {
    return { ok: false, status: 400, reason: "the URL path has a malformed percent-encoding" };
  }
  const source = parts[0]!;
  const name = parts[parts.length - 1]!;
  const stream = parts.slice(1, -1).join("/");
  for (const [pattern, make] of FILES) {
    const m = name.match(pattern);
    if (!m) continue;
    const file = make(m);
    const problem = timeProblem(file);
    if (problem) return { ok: false, status: 400, reason: `${name}: ${problem}` };
    return { ok: true, source, stream, file };
  }
  if (MALFORMED.test(name)) {
    return {
      ok: false,
      status: 400,
      reason: `${name}: malformed times: expected unix seconds, like index-1700000000-3600.m3u8, timeshift_rel-3600.m3u8 or archive-1700000000-600.mp4`,
    };
  }
  return { ok: false, status: 404, reason: `${name}: not a playback file this server answers` };
}

function timeProblem(f: PlaybackFile): string | undefined {
  const duration = "duration" in f ? f.duration : undefined;
  if (typeof duration === "number") {
    if (duration <= 0) return "the duration must be at least 1 second";
    if (duration > MAX_RANGE_SECONDS) {
      return `the duration ${duration} s is longer than ${MAX_RANGE_SECONDS} s (24 hours): ask for shorter ranges`;
    }
  }
  if (f.kind === "timeshift-rel" && f.seconds <= 0) return "the delay must be at least 1 second";
  if (f.kind === "dash-rewind" && (f.seconds <= 0 || f.seconds > MAX_RANGE_SECONDS)) {
    return `the rewind depth must be 1 to ${MAX_RANGE_SECONDS} seconds (24 hours)`;
  }
  return undefined;
}

/**
 * The backup's form (`/{source}/{stream...}/{file}`) of a request path: as it is when it starts
 * with a configured source or `_` (the page's own routes), else Flussonic's `/{stream...}/{file}`
 * of `upstreamSource` (the server an origin group or `serve --upstream` failed over from).
 */
export function backupPath(path: string, sources: ReadonlySet<string>, upstreamSource: string): string {
  const first = path.split("/")[1] ?? "";
  let name: string;
  try {
    name = decodeURIComponent(first);
  } catch {
    return path;
  }
  if (sources.has(name) || first.startsWith("_") || path === "/" || path === "/index.html") return path;
  return `/${encodeURIComponent(upstreamSource)}${path}`;
}
