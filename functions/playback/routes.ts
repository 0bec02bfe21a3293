/**
 * Playback URLs (Flussonic's DVR URL shapes) parsed into what they ask for. Pure.
 *
 *   /{source}/{stream...}/{file}
 *
 * The stream name may contain "/": the file is the last path segment, the source the first, and
 * everything between is the stream. Each segment is percent-decoded.
 */
import { type ImageSize, MAX_THUMBNAILS, parseImageArea } from "../domain/thumbnails.ts";

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
  | { kind: "preview-mp4"; from: number }
  | { kind: "preview-jpg"; from: number }
  | { kind: "image-playlist"; area: ImageSize; from: number; duration: number; count: number }
  | { kind: "thumbnail"; area: ImageSize; at: number };

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
  // paths/playback/jpeg-ondemand.yml.
  [new RegExp(`^${TIME}-preview\\.jpg$`), (m) => ({ kind: "preview-jpg", from: Number(m[1]) })],
  [/^recording_status\.json$/, () => ({ kind: "recording-status" })],
  [/^ranges\.json$/, () => ({ kind: "ranges" })],
];

/** Files whose name says what they are but whose times do not parse (answered 400, not 404). */
const MALFORMED = /^(?:index|archive|timeshift_rel|timeshift_abs|rewind)-.*\.(?:m3u8|mp4|mpd)$/;

/**
 * Files of a thumbnail folder `images-{W}x{H}/` (streaming.yml): the image playlist of
 * `?thumbnails=N` and the HLS and DASH images at `from + offset`.
 */
const IMAGE_PLAYLIST = new RegExp(`^tpl-${TIME}-${TIME}-(\\d{1,6})\\.m3u8$`);
const IMAGE = new RegExp(`^(?:seg-${TIME}-${TIME}\\.hls|dvr-${TIME}-${TIME}\\.m4v)\\.jpg$`);

function imageFile(folder: string, name: string): PlaybackFile | string | undefined {
  const area = parseImageArea(folder.slice("images-".length));
  const playlist = name.match(IMAGE_PLAYLIST);
  const image = name.match(IMAGE);
  if (!playlist && !image) return undefined;
  if (typeof area === "string") return area;
  if (playlist) {
    const count = Number(playlist[3]);
    const duration = Number(playlist[2]);
    if (duration < 1 || duration > MAX_RANGE_SECONDS) {
      return `${name}: the duration must be 1 to ${MAX_RANGE_SECONDS} seconds (24 hours)`;
    }
    if (count < 1 || count > MAX_THUMBNAILS) return `${name}: ask for 1 to ${MAX_THUMBNAILS} images`;
    return { kind: "image-playlist", area, from: Number(playlist[1]), duration, count };
  }
  const from = Number(image![1] ?? image![3]);
  const offset = Number(image![2] ?? image![4]);
  return { kind: "thumbnail", area, at: from + offset };
}

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
  const folder = parts[parts.length - 2]!;
  if (parts.length >= 4 && folder.startsWith("images-")) {
    const file = imageFile(folder, name);
    if (typeof file === "string") return { ok: false, status: 400, reason: `${folder}/${file}` };
    if (file) return { ok: true, source, stream: parts.slice(1, -2).join("/"), file };
  }
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
