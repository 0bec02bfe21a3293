/**
 * Thumbnails in Flussonic's URL shapes (functions/domain/thumbnails.ts): the size and count a URL
 * may ask for, with their bounds, the image playlist and the multivariant playlist of
 * `?thumbnails=N`, as exact text (what a player reads).
 */
import { describe, expect, it } from "vitest";
import {
  fitImage,
  MAX_IMAGE_SIDE,
  MAX_THUMBNAILS,
  MIN_IMAGE_SIDE,
  parseImageArea,
  parseThumbnailCount,
  renderImagePlaylist,
  renderThumbnailMaster,
  thumbnailInterval,
} from "../../functions/domain/thumbnails.ts";

describe("a thumbnail size in a URL", () => {
  it("takes {W}x{H} with each side from 16 to 3840 pixels, bounds included, and nothing around it", () => {
    expect(parseImageArea("320x240")).toEqual({ width: 320, height: 240 });
    expect(parseImageArea(`${MIN_IMAGE_SIDE}x${MAX_IMAGE_SIDE}`)).toEqual({ width: 16, height: 3840 });
    expect(parseImageArea("15x240")).toBe(
      "15x240: the width 15 is out of range: each side is 16 to 3840 pixels",
    );
    expect(parseImageArea("320x3841")).toBe(
      "320x3841: the height 3841 is out of range: each side is 16 to 3840 pixels",
    );
    for (const text of ["a320x240", "320x240b", "320X240", "320x"]) {
      expect(parseImageArea(text), text).toBe(
        `${text}: not a thumbnail size: expected {width}x{height} in pixels, like 320x240`,
      );
    }
  });

  it("fits a frame into the area keeping its aspect ratio, by the tighter side, never enlarged", () => {
    // Height is the tighter side here: 1920x1080 into 640x180 is 320x180.
    expect(fitImage({ width: 1920, height: 1080 }, { width: 640, height: 180 })).toEqual({
      width: 320,
      height: 180,
    });
    expect(fitImage({ width: 1920, height: 1080 }, { width: 320, height: 240 })).toEqual({
      width: 320,
      height: 180,
    });
    expect(fitImage({ width: 640, height: 360 }, { width: 3840, height: 2160 })).toEqual({
      width: 640,
      height: 360,
    });
  });
});

describe("?thumbnails=N", () => {
  it("takes a count from 1 to 1000, bounds included, digits only", () => {
    expect(parseThumbnailCount(undefined)).toBeUndefined();
    expect(parseThumbnailCount("1")).toBe(1);
    expect(parseThumbnailCount(String(MAX_THUMBNAILS))).toBe(1000);
    const refused = (text: string) => ({
      problem: `thumbnails=${text} is not a count of images: ask for 1 to 1000`,
    });
    for (const text of ["0", "1001", "x5", "5x", "-1", "2.5"]) {
      expect(parseThumbnailCount(text), text).toEqual(refused(text));
    }
  });

  it("cuts the range into whole-second intervals of at least 1 s, and says how many it could give", () => {
    expect(thumbnailInterval(600, 10)).toBe(60);
    expect(thumbnailInterval(10, 10)).toBe(1);
    expect(thumbnailInterval(9, 10)).toEqual({
      problem: "thumbnails=10 over 9 s is less than 1 s per image: ask for at most 9",
    });
  });

  it("writes the image playlist: one image per interval, offsets from the range's start, the query on each", () => {
    expect(renderImagePlaylist({ from: 1000, duration: 25, count: 3, query: "?token=t" })).toBe(
      [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        "#EXT-X-TARGETDURATION:8",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-IMAGES-ONLY",
        "#EXTINF:8.000,",
        "seg-1000-0.hls.jpg?token=t",
        "#EXTINF:8.000,",
        "seg-1000-8.hls.jpg?token=t",
        "#EXTINF:8.000,",
        "seg-1000-16.hls.jpg?token=t",
        "#EXT-X-ENDLIST",
        "",
      ].join("\n"),
    );
    // More images asked than seconds: one a second, none past the range's end.
    const short = renderImagePlaylist({ from: 0, duration: 2, count: 5, query: "" });
    expect(short.split("\n").filter((l) => l.startsWith("seg-"))).toEqual([
      "seg-0-0.hls.jpg",
      "seg-0-1.hls.jpg",
    ]);
  });

  it("writes the multivariant playlist: the media with what is known of it, and the image stream", () => {
    const images = { width: 320, height: 180 };
    expect(
      renderThumbnailMaster({
        media: "index.m3u8?from=1&duration=2",
        bandwidth: 1_499_999.6,
        codecs: "avc1.64001f,mp4a.40.2",
        video: { width: 1280, height: 720 },
        images,
        imagesUri: "images-320x180/tpl-1-2-3.m3u8",
      }),
    ).toBe(
      [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        '#EXT-X-STREAM-INF:BANDWIDTH=1500000,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2"',
        "index.m3u8?from=1&duration=2",
        '#EXT-X-IMAGE-STREAM-INF:BANDWIDTH=10000,RESOLUTION=320x180,CODECS="jpeg",URI="images-320x180/tpl-1-2-3.m3u8"',
        "",
      ].join("\n"),
    );
    // Nothing known of the media but a bandwidth below 1 bit/s: BANDWIDTH=1, no RESOLUTION or CODECS.
    const bare = renderThumbnailMaster({ media: "m.m3u8", bandwidth: 0.2, images, imagesUri: "i.m3u8" });
    expect(bare.split("\n")[2]).toBe("#EXT-X-STREAM-INF:BANDWIDTH=1");
  });
});
