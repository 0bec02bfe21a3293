/**
 * The pure parts of `serve`: which hosts count as loopback (where `--no-auth` is allowed) and
 * which `Range` headers the media route passes on to S3.
 */
import { describe, expect, it } from "vitest";
import { isLoopbackHost } from "../../cli/commands/serve.ts";
import { parseRange } from "../../local/playback-server.ts";

describe("serve --no-auth: loopback hosts only", () => {
  it("accepts 127.0.0.0/8, ::1 (also bracketed and IPv4-mapped) and localhost", () => {
    for (const h of [
      "127.0.0.1",
      "127.1.2.3",
      "::1",
      "[::1]",
      "0:0:0:0:0:0:0:1",
      "::ffff:127.0.0.1",
      "localhost",
      "LOCALHOST",
      "app.localhost",
    ]) {
      expect(isLoopbackHost(h), h).toBe(true);
    }
  });

  it("refuses any address other machines can reach, the wildcard addresses and other names", () => {
    for (const h of [
      "0.0.0.0",
      "::",
      "192.168.1.10",
      "10.0.0.1",
      "128.0.0.1",
      "::ffff:10.0.0.1",
      "example.com",
      "localhost.example.com",
      "",
    ]) {
      expect(isLoopbackHost(h), h).toBe(false);
    }
  });
});

describe("media route: Range headers passed on to S3", () => {
  it("passes one bytes range on (first-last, first-, -suffix)", () => {
    expect(parseRange("bytes=0-99")).toBe("bytes=0-99");
    expect(parseRange("bytes=100-")).toBe("bytes=100-");
    expect(parseRange("bytes=-500")).toBe("bytes=-500");
    expect(parseRange(" bytes=5-5 ")).toBe("bytes=5-5");
  });

  it("ignores what it does not serve (several ranges, other units, reversed, empty): the whole object is sent", () => {
    for (const h of [undefined, "", "bytes=0-1,5-9", "items=0-5", "bytes=9-3", "bytes=-", "bytes=a-b"]) {
      expect(parseRange(h), String(h)).toBeUndefined();
    }
  });
});
