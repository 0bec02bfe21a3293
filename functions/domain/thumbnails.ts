/**
 * Thumbnails and JPEG previews in Flussonic's URL shapes (openapi-demo streaming.yml), pure:
 *
 *   {from}-preview.jpg                              paths/playback/jpeg-ondemand.yml
 *   images-{W}x{H}/tpl-{from}-{dur}-{N}.m3u8        the image playlist of hls-dvr.yml `?thumbnails=N`
 *   images-{W}x{H}/seg-{from}-{offset}.hls.jpg      paths/playback/hls-jpeg-thumbnail.yml
 *   images-{W}x{H}/dvr-{from}-{offset}.m4v.jpg      paths/playback/dash-jpeg-thumbnail.yml
 *
 * `{W}x{H}` is an area the frame is fitted into keeping its aspect ratio ("FIT"), never enlarged
 * (a larger area gives the frame's own size). `?thumbnails=N` cuts a range into N equal intervals,
 * one image each (the interval is the range's duration divided by N).
 */

/** Smallest and largest side of a thumbnail area (pixels). */
export const MIN_IMAGE_SIDE = 16;
export const MAX_IMAGE_SIDE = 3840;
/** Most images one `?thumbnails=N` asks for, and the shortest interval between two (seconds). */
export const MAX_THUMBNAILS = 1000;
export const MIN_THUMBNAIL_INTERVAL_SECONDS = 1;
/** The thumbnail area when the request names none (Flussonic's example `size=320x240`). */
export const DEFAULT_THUMBNAIL_AREA = { width: 320, height: 240 } as const;

export interface ImageSize {
  width: number;
  height: number;
}

/** `{W}x{H}` of a URL, or why not. */
export function parseImageArea(text: string): ImageSize | string {
  const m = /^(\d{1,5})x(\d{1,5})$/.exec(text);
  if (!m) return `${text}: not a thumbnail size: expected {width}x{height} in pixels, like 320x240`;
  const width = Number(m[1]);
  const height = Number(m[2]);
  for (const [side, v] of [
    ["width", width],
    ["height", height],
  ] as const) {
    if (v < MIN_IMAGE_SIDE || v > MAX_IMAGE_SIDE) {
      return `${text}: the ${side} ${v} is out of range: each side is ${MIN_IMAGE_SIDE} to ${MAX_IMAGE_SIDE} pixels`;
    }
  }
  return { width, height };
}

/**
 * The size a `frame` gets in `area`: scaled down to fit keeping the aspect ratio, never up, with
 * even sides (what JPEG encoders of 4:2:0 video expect), at least 2 pixels.
 */
export function fitImage(frame: ImageSize, area: ImageSize): ImageSize {
  const scale = Math.min(1, area.width / frame.width, area.height / frame.height);
  const even = (v: number) => Math.max(2, 2 * Math.floor(v / 2));
  return { width: even(frame.width * scale), height: even(frame.height * scale) };
}

/** `?thumbnails=` as asked: undefined when absent, the count, or why it is refused. */
export function parseThumbnailCount(text: string | undefined): number | undefined | { problem: string } {
  if (text === undefined) return undefined;
  if (!/^\d{1,6}$/.test(text) || Number(text) < 1 || Number(text) > MAX_THUMBNAILS) {
    return { problem: `thumbnails=${text} is not a count of images: ask for 1 to ${MAX_THUMBNAILS}` };
  }
  return Number(text);
}

/** The interval (whole seconds) between N images over `durationSeconds`, or why there is none. */
export function thumbnailInterval(durationSeconds: number, count: number): number | { problem: string } {
  const interval = Math.floor(durationSeconds / count);
  if (interval < MIN_THUMBNAIL_INTERVAL_SECONDS) {
    return {
      problem: `thumbnails=${count} over ${durationSeconds} s is less than ${MIN_THUMBNAIL_INTERVAL_SECONDS} s per image: ask for at most ${Math.max(1, Math.floor(durationSeconds / MIN_THUMBNAIL_INTERVAL_SECONDS))}`,
    };
  }
  return interval;
}

/** The folder of a size's images, relative to the stream: `images-{W}x{H}`. */
export function imagesFolder(size: ImageSize): string {
  return `images-${size.width}x${size.height}`;
}

/** `query` (already encoded, like `?token=…`, or "") appended to each URI. */
export interface ImagePlaylist {
  from: number;
  duration: number;
  count: number;
  query: string;
}

/** The HLS image playlist (`tpl-{from}-{dur}-{N}.m3u8`): one `seg-{from}-{offset}.hls.jpg` per interval. */
export function renderImagePlaylist(p: ImagePlaylist): string {
  const interval = Math.max(1, Math.floor(p.duration / p.count));
  const lines = [
    "#EXTM3U",
    "#EXT-X-VERSION:7",
    `#EXT-X-TARGETDURATION:${interval}`,
    "#EXT-X-MEDIA-SEQUENCE:0",
    "#EXT-X-PLAYLIST-TYPE:VOD",
    "#EXT-X-IMAGES-ONLY",
  ];
  for (let i = 0; i < p.count && i * interval < p.duration; i++) {
    lines.push(`#EXTINF:${interval}.000,`, `seg-${p.from}-${i * interval}.hls.jpg${p.query}`);
  }
  lines.push("#EXT-X-ENDLIST", "");
  return lines.join("\n");
}

export interface ThumbnailMaster {
  /** URI of the media playlist (the same range without `thumbnails`). */
  media: string;
  /** Bits per second of the media and its setup, when known. */
  bandwidth: number;
  codecs?: string | undefined;
  video?: ImageSize | undefined;
  images: ImageSize;
  /** URI of the image playlist. */
  imagesUri: string;
}

/** The multivariant playlist of `?thumbnails=N`: the media playlist plus its image stream. */
export function renderThumbnailMaster(m: ThumbnailMaster): string {
  const attrs = [`BANDWIDTH=${Math.max(1, Math.round(m.bandwidth))}`];
  if (m.video) attrs.push(`RESOLUTION=${m.video.width}x${m.video.height}`);
  if (m.codecs) attrs.push(`CODECS="${m.codecs}"`);
  return [
    "#EXTM3U",
    "#EXT-X-VERSION:7",
    `#EXT-X-STREAM-INF:${attrs.join(",")}`,
    m.media,
    `#EXT-X-IMAGE-STREAM-INF:BANDWIDTH=10000,RESOLUTION=${m.images.width}x${m.images.height},CODECS="jpeg",URI="${m.imagesUri}"`,
    "",
  ].join("\n");
}
