/**
 * `backupPath`: how the playback function (behind a CloudFront origin group) and `serve --upstream`
 * read Flussonic's own URLs as the backup's `/{source}/{stream}/{file}`.
 */
import { describe, expect, it } from "vitest";
import { backupPath } from "../../functions/playback/routes.ts";

const sources = new Set(["s1", "s 2"]);

describe("backupPath", () => {
  it("puts the upstream's source before Flussonic's /{stream...}/{file} (names percent-encoded)", () => {
    expect(backupPath("/cam1/index-1700000000-60.m3u8", sources, "s1")).toBe(
      "/s1/cam1/index-1700000000-60.m3u8",
    );
    expect(backupPath("/a/b/archive-1-2.mpd", sources, "s 2")).toBe("/s%202/a/b/archive-1-2.mpd");
  });

  it("leaves the backup's own URLs, the page and its routes as they are", () => {
    for (const p of [
      "/s1/cam1/index-1-2.m3u8",
      "/s%202/cam/ranges.json",
      "/",
      "/index.html",
      "/_api/streams.json",
    ]) {
      expect(backupPath(p, sources, "s1"), p).toBe(p);
    }
  });
});
