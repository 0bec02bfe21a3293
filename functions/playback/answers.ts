/**
 * How the playback endpoints answer: a problem is thrown as HttpProblemError with its status where
 * it is found and written by the handler as a one-sentence plain-text body; successes are
 * playlists, JSON or media. Time formatting for those sentences.
 */
import type { PlaybackResponse } from "./request.ts";

/** Days are UTC days of 86,400 s. */
export const DAY_SECONDS = 86_400;

const PLAYLIST_TYPE = "application/vnd.apple.mpegurl";

/** A request the playback handler refuses: the HTTP status and one sentence saying why. */
export class HttpProblemError extends Error {
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

export const TEXT = { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" };

export function text(status: number, message: string): PlaybackResponse {
  return { status, headers: { ...TEXT }, body: `${message}\n` };
}

export function json(value: unknown): PlaybackResponse {
  return {
    status: 200,
    headers: { "Content-Type": "application/json", "Cache-Control": "no-cache" },
    body: JSON.stringify(value),
  };
}

export function playlist(body: string, cacheControl: string): PlaybackResponse {
  return { status: 200, headers: { "Content-Type": PLAYLIST_TYPE, "Cache-Control": cacheControl }, body };
}

export function utcDayStart(ms: number): number {
  return Math.floor(ms / 1000 / DAY_SECONDS) * DAY_SECONDS;
}

export function iso(seconds: number): string {
  return isoMs(seconds * 1000);
}

export function isoMs(ms: number): string {
  return Number.isFinite(ms) && Math.abs(ms) < 8.64e15
    ? new Date(ms).toISOString().replace(".000Z", "Z")
    : String(ms);
}
