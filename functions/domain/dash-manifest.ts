/**
 * DASH manifests (MPD, ISO/IEC 23009-1) over the stored fMP4 windows, from their fragment index:
 * the same key-frame-aligned byte-range segments as the HLS playlists (hls-playlist.ts
 * `rangeSegments`), written as a `SegmentList` whose `SegmentURL`s carry `media` (the window's
 * URI) and `mediaRange`, with a `SegmentTimeline` of their times. Nothing is decoded or re-muxed.
 *
 * Periods (Flussonic's rule, paths/playback/dash-dvr.yml: a new period at a gap or a change of
 * the video): a period runs over segments that follow each other without a gap (more than
 * GAP_TOLERANCE_MS) and whose windows have the same track setup (codecs, resolution, init
 * length) and absolute decode times; its `Initialization` is the init (`ftyp` + `moov`) of its
 * first window, so a window boundary inside a period costs nothing. `mono` (`?period=mono`) puts
 * every segment in one period: gaps stay in the timeline (players jump them); a track-setup change
 * or window-relative decode times cannot be joined by byte ranges and are reported by
 * `monoProblem` (the caller answers 409).
 *
 * Times: `SegmentList@timescale` is 1000 (milliseconds). With absolute decode times ("absolute"
 * origin: the media clock is unix time) `presentationTimeOffset` and `S@t` are unix
 * milliseconds; with window-relative ones ("window" origin) they count from the window's `from`,
 * taking its first decode time as 0 (the fragment index does not keep the raw decode time).
 * `Period@start` (static) is where the period begins in play: periods follow each other without
 * the gaps between them, as Flussonic's "multiple continuous periods" do, so a player never waits
 * through a hole (in one `mono` period the hole stays, and players jump it). Dynamic: its unix
 * time ( whose `availabilityStartTime` is the unix epoch plus `shiftMs`: a player's live
 * edge, wall-clock now less that, is the playback position the caller chose).
 */
import type { WindowIndex } from "./fragment-index.ts";
import { GAP_TOLERANCE_MS, type PlannedSegment } from "./hls-playlist.ts";

export interface DashManifest {
  /** "static" (a range, VOD) or "dynamic" (a live edge: timeshift_abs, rewind). */
  type: "static" | "dynamic";
  segments: readonly PlannedSegment[];
  /** One period for everything (`?period=mono`). Check `monoProblem` first. */
  mono?: boolean;
  /** Dynamic only: unix ms of now (publishTime). */
  nowMs?: number;
  /** Dynamic only: wall clock minus media unix time, ms (0: the media clock is the wall clock). */
  shiftMs?: number;
  /** Dynamic only: how far back a player may seek from the live edge, seconds. */
  timeShiftBufferSeconds?: number;
  /**
   * `?thumbnails=N`: an image AdaptationSet per period (DASH-IF IOP thumbnails, one 1x1 tile per
   * image) at Flussonic's `images-{W}x{H}/dvr-{from}-{offset}.m4v.jpg`, `from` the period's first
   * second, one image per `interval` seconds; `query` (like `?token=…`) follows each URI.
   */
  thumbnails?: { width: number; height: number; interval: number; query: string } | undefined;
}

/** A run of segments played with one init. */
interface Period {
  segments: PlannedSegment[];
}

const XML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&apos;",
};

function xml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => XML_ESCAPES[c]!);
}

function setupOf(w: WindowIndex): string {
  return `${w.codecs ?? ""}|${w.width ?? ""}x${w.height ?? ""}|${w.init?.length ?? ""}|${w.origin}`;
}

/** Why `?period=mono` cannot join these segments into one period, or undefined when it can. */
export function monoProblem(segments: readonly PlannedSegment[]): string | undefined {
  const first = segments[0]?.window;
  if (!first) return undefined;
  for (const s of segments) {
    if (s.window.origin !== "absolute") {
      return `${s.window.key} has decode times relative to the window, not absolute ones: one period cannot join it by byte ranges; leave period=mono out`;
    }
    if (setupOf(s.window) !== setupOf(first)) {
      return `the track setup (codecs or resolution) changes at ${new Date(s.window.from * 1000).toISOString()}: one period cannot switch it; leave period=mono out`;
    }
  }
  return undefined;
}

function periods(segments: readonly PlannedSegment[], mono: boolean): Period[] {
  const out: Period[] = [];
  let current: Period | undefined;
  let previous: PlannedSegment | undefined;
  for (const s of segments) {
    const joins =
      current !== undefined &&
      previous !== undefined &&
      (mono ||
        (Math.abs(s.startMs - (previous.startMs + previous.durationMs)) <= GAP_TOLERANCE_MS &&
          (s.window === previous.window ||
            (s.window.origin === "absolute" &&
              previous.window.origin === "absolute" &&
              setupOf(s.window) === setupOf(previous.window)))));
    if (!joins || !current) {
      current = { segments: [] };
      out.push(current);
    }
    current.segments.push(s);
    previous = s;
  }
  return out;
}

/** Media time of a segment in the SegmentList's timescale (ms): see the module comment. */
function mediaMs(s: PlannedSegment): number {
  return s.window.origin === "absolute" ? s.startMs : s.startMs - s.window.from * 1000;
}

/**
 * `String(ms)` for the 13-digit unix milliseconds of a timeline, faster: V8 writes a number beyond
 * 2^31 as a double (slow); written as its millions (kept while they stay the same, ~17 minutes)
 * and six zero-padded digits (small integers, fast) it takes 40% of the time (a fifth of a
 * 24-hour manifest's; bench: dev/bench/playback-playlist.ts).
 */
export function msWriter(): (ms: number) => string {
  let millions = -1;
  let millionsText = "";
  return (ms) => {
    if (!Number.isInteger(ms) || ms < 1e6 || ms > Number.MAX_SAFE_INTEGER) return String(ms);
    const high = Math.floor(ms / 1e6);
    if (high !== millions) {
      millions = high;
      millionsText = String(high);
    }
    return millionsText + String(1e6 + (ms - high * 1e6)).slice(1);
  };
}

/** ISO 8601 duration in seconds with milliseconds, e.g. "PT600.000S". */
export function isoDuration(ms: number): string {
  return `PT${(Math.max(0, ms) / 1000).toFixed(3)}S`;
}

function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * The MPD text. `uri(window)` gives the URI of a window's object (its init and its segments are
 * byte ranges of it).
 */
export function renderDashManifest(m: DashManifest, uri: (w: WindowIndex) => string): string {
  if (m.segments.length === 0) throw new Error("a DASH manifest needs at least one segment");
  const shiftMs = m.shiftMs ?? 0;
  let maxSegmentMs = 0;
  for (const s of m.segments) maxSegmentMs = Math.max(maxSegmentMs, s.durationMs);
  const parts = periods(m.segments, m.mono === true);
  const spanMs = (p: Period) => {
    const e = p.segments[p.segments.length - 1]!;
    return e.startMs + e.durationMs - p.segments[0]!.startMs;
  };
  const head =
    m.type === "static"
      ? `type="static" mediaPresentationDuration="${isoDuration(parts.reduce((n, p) => n + spanMs(p), 0))}"`
      : `type="dynamic" availabilityStartTime="${isoTime(shiftMs)}" publishTime="${isoTime(m.nowMs ?? 0)}" minimumUpdatePeriod="PT2S" timeShiftBufferDepth="${isoDuration((m.timeShiftBufferSeconds ?? 0) * 1000)}" suggestedPresentationDelay="${isoDuration(3 * maxSegmentMs)}"`;
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-main:2011" ${head} minBufferTime="${isoDuration(Math.min(maxSegmentMs, 6000))}" maxSegmentDuration="${isoDuration(maxSegmentMs)}">`,
  ];
  const uris = new Map<WindowIndex, string>();
  const uriOf = (w: WindowIndex) => {
    let u = uris.get(w);
    if (u === undefined) {
      u = xml(uri(w));
      uris.set(w, u);
    }
    return u;
  };
  const msText = msWriter();
  let playedMs = 0;
  for (const [i, p] of parts.entries()) {
    const s0 = p.segments[0]!;
    const w0 = s0.window;
    const ms = spanMs(p);
    const periodStart = m.type === "static" ? playedMs : s0.startMs;
    playedMs += ms;
    const bytes = p.segments.reduce((n, s) => n + s.length, 0);
    const bandwidth = Math.max(1, Math.round((bytes * 8 * 1000) / Math.max(1, ms)));
    const video = w0.width !== undefined;
    const init = w0.init ?? { offset: 0, length: 0 };
    lines.push(
      `  <Period id="p${i}" start="${isoDuration(periodStart)}">`,
      `    <AdaptationSet id="0" contentType="${video ? "video" : "audio"}" mimeType="${video ? "video/mp4" : "audio/mp4"}" segmentAlignment="true" startWithSAP="1">`,
      `      <Representation id="${video ? "video" : "media"}" bandwidth="${bandwidth}"${w0.codecs ? ` codecs="${xml(w0.codecs)}"` : ""}${video ? ` width="${w0.width}" height="${w0.height}"` : ""}>`,
      `        <SegmentList timescale="1000" presentationTimeOffset="${mediaMs(s0)}">`,
      `          <Initialization sourceURL="${uriOf(w0)}" range="${init.offset}-${init.offset + init.length - 1}"/>`,
      "          <SegmentTimeline>",
    );
    // One S per segment, never a repeat count `r`: dash.js (5.2) maps a SegmentList's timeline to
    // its SegmentURLs by S element, and stops after the first segment of an S with `r`.
    // One string per period, built by concatenation: 14,400 segments as array items cost twice
    // the time (bench: dev/bench/playback-playlist.ts).
    let timeline = "";
    for (const s of p.segments)
      timeline += `            <S t="${msText(mediaMs(s))}" d="${s.durationMs}"/>\n`;
    lines.push(`${timeline}          </SegmentTimeline>`);
    let list = "";
    let listWindow: WindowIndex | undefined;
    let listUri = "";
    for (const s of p.segments) {
      if (s.window !== listWindow) {
        listWindow = s.window;
        listUri = uriOf(s.window);
      }
      list += `          <SegmentURL media="${listUri}" mediaRange="${s.offset}-${s.offset + s.length - 1}"/>\n`;
    }
    if (list) lines.push(list.slice(0, -1));
    lines.push("        </SegmentList>", "      </Representation>", "    </AdaptationSet>");
    if (m.thumbnails) lines.push(...imageAdaptationSet(m.thumbnails, Math.floor(s0.startMs / 1000), ms));
    lines.push("  </Period>");
  }
  lines.push("</MPD>", "");
  return lines.join("\n");
}

function imageAdaptationSet(
  t: NonNullable<DashManifest["thumbnails"]>,
  fromSecond: number,
  periodMs: number,
): string[] {
  const count = Math.max(1, Math.ceil(periodMs / 1000 / t.interval));
  const size = `${t.width}x${t.height}`;
  return [
    `    <AdaptationSet id="1" contentType="image" mimeType="image/jpeg">`,
    `      <SegmentTemplate media="images-${size}/dvr-${fromSecond}-$Time$.m4v.jpg${xml(t.query)}" timescale="1">`,
    `        <SegmentTimeline><S t="0" d="${t.interval}"${count > 1 ? ` r="${count - 1}"` : ""}/></SegmentTimeline>`,
    "      </SegmentTemplate>",
    `      <Representation id="thumbnails" bandwidth="${Math.max(1, Math.round((10_000 * 8) / t.interval))}" width="${t.width}" height="${t.height}">`,
    `        <EssentialProperty schemeIdUri="http://dashif.org/thumbnail_tile" value="1x1"/>`,
    "      </Representation>",
    "    </AdaptationSet>",
  ];
}
