/**
 * The player page (`page/`: index.html, page.js, page.css) and hls.js, as both playback front
 * ends serve them: the local server reads them from this folder and the hls.js package, the
 * playback Lambda from the copy its bundling puts beside the bundle.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

export interface PageAsset {
  type: string;
  body: Buffer;
}

export interface PageAssets {
  html: Buffer;
  /** By file name: page.js, page.css, hls.min.js. */
  files: Map<string, PageAsset>;
}

/** Reads the page from `dir` and hls.js from `hlsPath`. */
export function readPageAssets(dir: string, hlsPath: string): PageAssets {
  const file = (path: string, type: string): PageAsset => ({ type, body: readFileSync(path) });
  return {
    html: readFileSync(join(dir, "index.html")),
    files: new Map([
      ["page.js", file(join(dir, "page.js"), "text/javascript; charset=utf-8")],
      ["page.css", file(join(dir, "page.css"), "text/css; charset=utf-8")],
      ["hls.min.js", file(hlsPath, "text/javascript; charset=utf-8")],
    ]),
  };
}
