/**
 * `serve --upstream URL`: Flussonic's own playback URLs (`/{stream...}/{file}`, the same URLs a
 * player would ask the server) are forwarded to the server while it answers, and answered from
 * the backup, per request, when it does not:
 * - the server cannot be reached (connection refused or reset, no answer headers within
 *   `timeoutMs`) or answers 5xx;
 * - the server no longer has the range (older than its retention): 404 on a DVR URL, or a
 *   playlist or manifest with no segment in it.
 * The backup answers through the playback handler as `/{source}/{stream...}/{file}` for the
 * source the upstream is. A URL the backup cannot serve (live-only, or the server's own segment
 * names) while the server is down is 503 with a sentence saying so; when the server answered it
 * (404, an empty playlist) its answer is passed on. Tokens: `?token=` is passed to the server
 * as it came (its own token rules); the backup's rules apply to what the backup serves.
 * Every answer says where it came from in `X-Playback-Origin` (`server` or `backup`), and a
 * backup answer why in `X-Playback-Failover`.
 */
import { Readable } from "node:stream";
import type { PlaybackRequest, PlaybackResponse } from "../functions/playback/handler.ts";

export interface Upstream {
  /** The server's base URL, e.g. "http://flussonic:8080" (no trailing slash). */
  url: string;
  /** The configured source it is: the backup answers as `/{source}/…`. */
  source: string;
  /** Milliseconds to wait for the server's answer headers before answering from the backup. */
  timeoutMs: number;
}

/** Request headers passed to the server (a player's, nothing of the viewer's identity). */
const FORWARDED_REQUEST = ["range", "accept", "user-agent", "if-none-match", "if-modified-since", "if-range"];
/** Answer headers passed back from the server. */
const FORWARDED_ANSWER = [
  "content-type",
  "content-length",
  "content-range",
  "accept-ranges",
  "cache-control",
  "etag",
  "last-modified",
  "location",
];
/** A DVR URL: one the backup may answer when the server no longer has its range. */
const DVR_FILE =
  /(?:^|\/)(?:(?:index|archive|video|mono)-\d+-(?:\d+|now)(?:\.fmp4)?\.(?:m3u8|mpd|mp4|ts)|timeshift_(?:abs|rel)-\d+(?:\.fmp4)?\.(?:m3u8|mpd)|rewind-\d+\.(?:m3u8|mpd)|\d+-preview\.(?:mp4|jpg)|tpl-\d+-\d+-\d+\.m3u8|seg-\d+-\d+\.hls\.jpg|dvr-\d+-\d+\.m4v\.jpg|recording_status\.json|ranges\.json)$/;
/** Longest playlist or manifest read whole to see whether it lists a segment. */
const MAX_PLAYLIST_BYTES = 8 * 1024 * 1024;

type Answer = PlaybackResponse & { headers: Record<string, string> };

/** Why the server's answer is not used, or undefined when it is passed on. */
type Failover = { reason: string; serverAnswer?: Answer };

/**
 * The answer to a Flussonic-shaped request: the server's, or the backup's (`backup` is the playback
 * handler). `path` is the request path as received (percent-encoded), `search` its query string
 * with the `?`.
 */
export async function forwardOrFailover(
  upstream: Upstream,
  req: PlaybackRequest & { search: string },
  backup: (req: PlaybackRequest) => Promise<PlaybackResponse>,
): Promise<PlaybackResponse> {
  const failover = await fromServer(upstream, req);
  if (!("reason" in failover)) return failover;
  const answer = await backup({ ...req, path: `/${encodeURIComponent(upstream.source)}${req.path}` });
  const notPlayback =
    answer.status === 404 &&
    typeof answer.body === "string" &&
    answer.body.includes("not a playback file this server answers");
  if (notPlayback) {
    if (failover.serverAnswer) return failover.serverAnswer;
    const file = decodeURIComponent(req.path.split("/").at(-1) ?? "");
    return {
      status: 503,
      headers: {
        "Content-Type": "text/plain; charset=utf-8",
        "Cache-Control": "no-store",
        "Retry-After": "5",
        "X-Playback-Origin": "backup",
        "X-Playback-Failover": failover.reason,
      },
      body: `${file}: the server at ${upstream.url} does not answer (${failover.reason}) and the backup serves only archive URLs (DVR playlists, manifests, exports): live-only URLs and the server's own segments come back with the server\n`,
    };
  }
  return {
    ...answer,
    headers: { ...answer.headers, "X-Playback-Origin": "backup", "X-Playback-Failover": failover.reason },
  };
}

/** The server's answer to pass on, or why not (with the answer, when it gave one). */
async function fromServer(
  upstream: Upstream,
  req: PlaybackRequest & { search: string },
): Promise<Answer | Failover> {
  const headers: Record<string, string> = {};
  for (const name of FORWARDED_REQUEST) {
    const v = req.headers[name];
    if (v !== undefined) headers[name] = v;
  }
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error("timeout")), upstream.timeoutMs);
  let res: Response;
  try {
    res = await fetch(`${upstream.url}${req.path}${req.search}`, {
      method: req.method === "HEAD" ? "HEAD" : "GET",
      headers,
      redirect: "manual",
      signal: abort.signal,
    });
  } catch (error) {
    clearTimeout(timer);
    return { reason: connectionProblem(error, upstream.timeoutMs) };
  }
  const out: Record<string, string> = { "X-Playback-Origin": "server" };
  for (const name of FORWARDED_ANSWER) {
    const v = res.headers.get(name);
    if (v !== null) out[name] = name === "location" ? v.replace(upstream.url, "") : v;
  }
  const file = req.path.split("/").at(-1) ?? "";
  const dvr = DVR_FILE.test(file);
  const playlist = /\.(?:m3u8|mpd)$/.test(file);
  if (res.status >= 500 || (dvr && res.status === 404) || (playlist && res.status === 200)) {
    // Read what decides, with the headers' timer still running: a server that stalls mid-body is down too.
    let text: string;
    try {
      text = await readText(res);
    } catch (error) {
      clearTimeout(timer);
      return { reason: connectionProblem(error, upstream.timeoutMs) };
    }
    clearTimeout(timer);
    // The body is sent again as read (its length is counted then).
    delete out["content-length"];
    const answer: Answer = {
      status: res.status,
      headers: out,
      body: req.method === "HEAD" ? undefined : text,
    };
    if (res.status >= 500) return { reason: `the server answered ${res.status}`, serverAnswer: answer };
    if (res.status === 404) return { reason: "the server has no such range (404)", serverAnswer: answer };
    if (!/#EXTINF|#EXT-X-STREAM-INF|<S |<SegmentURL|<SegmentTemplate/.test(text)) {
      return { reason: "the server's answer lists no segment", serverAnswer: answer };
    }
    return answer;
  }
  clearTimeout(timer);
  return {
    status: res.status,
    headers: out,
    body:
      req.method === "HEAD" || !res.body
        ? undefined
        : Readable.fromWeb(res.body as import("node:stream/web").ReadableStream<Uint8Array>),
  };
}

async function readText(res: Response): Promise<string> {
  const length = Number(res.headers.get("content-length") ?? 0);
  if (length > MAX_PLAYLIST_BYTES) throw new Error(`an answer of ${length} bytes is too long for a playlist`);
  return await res.text();
}

/** One phrase for why the server could not be reached. */
function connectionProblem(error: unknown, timeoutMs: number): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? (error as { code?: string }).code;
  if (code === "ECONNREFUSED") return "connection refused";
  if (code === "ECONNRESET" || code === "UND_ERR_SOCKET") return "connection reset";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "its name does not resolve";
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH") return "host unreachable";
  const message = error instanceof Error ? error.message : String(error);
  if (/timeout|abort/i.test(message) || /timeout|abort/i.test(String(cause?.message)))
    return `no answer within ${timeoutMs} ms`;
  return `unreachable (${code ?? message})`;
}
