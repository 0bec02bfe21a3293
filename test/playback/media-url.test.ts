/**
 * The CloudFront signed media URLs of playback in AWS (functions/playback/media-url.ts) and the
 * viewer-request function of `/_media/*` (infra/playback-distribution.ts), checked against
 * CloudFront's documented rules for custom policies: the policy's `Resource` is compared with the
 * request URL (scheme, host, path and the viewer's query string without `Policy`, `Signature` and
 * `Key-Pair-Id`), where `*` matches zero or more characters and `?` exactly one.
 */
import { generateKeyPairSync } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { streamPrefix, windowKey } from "../../functions/domain/keys.ts";
import {
  cloudFrontMediaUrl,
  MEDIA_PATH,
  mediaPath,
  PLAYBACK_HOST_HEADER,
} from "../../functions/playback/media-url.ts";
import { MEDIA_REQUEST_FUNCTION, PLAYBACK_REQUEST_FUNCTION } from "../../infra/playback-distribution.ts";

const HOST = "d111111abcdef8.cloudfront.net";
const PRIVATE_KEY = generateKeyPairSync("rsa", {
  modulusLength: 1024,
  publicKeyEncoding: { type: "spki", format: "pem" },
  privateKeyEncoding: { type: "pkcs8", format: "pem" },
}).privateKey;
const FROM = Date.UTC(2026, 11, 7, 12, 0, 0) / 1000;

/** CloudFront's wildcard matching: `*` zero or more characters, `?` exactly one, the rest literal. */
function cloudFrontResourceMatches(resource: string, url: string): boolean {
  const pattern = [...resource]
    .map((c) => (c === "*" ? "[\\s\\S]*" : c === "?" ? "[\\s\\S]" : c.replace(/[\\^$.|+()[\]{}]/g, "\\$&")))
    .join("");
  return new RegExp(`^${pattern}$`, "u").test(url);
}

/** The URL CloudFront compares with the Resource: the signed parameters taken out of the query. */
function comparedUrl(host: string, pathAndQuery: string): string {
  const [path, query = ""] = pathAndQuery.split(/\?(.*)/s) as [string, string?];
  const kept = query
    .split("&")
    .filter((p) => p !== "" && !/^(Policy|Signature|Key-Pair-Id)=/.test(p))
    .join("&");
  return `https://${host}${path}${kept ? `?${kept}` : ""}`;
}

function resourceOf(signedUrl: string): string {
  const policy = new URL(signedUrl, `https://${HOST}`).searchParams.get("Policy")!;
  const json = Buffer.from(policy.replaceAll("-", "+").replaceAll("_", "=").replaceAll("~", "/"), "base64");
  return JSON.parse(json.toString("utf8")).Statement[0].Resource;
}

function signFor(prefix: string, source: string, stream: string, key: string): string {
  return cloudFrontMediaUrl({
    key,
    prefix,
    access: { source, stream },
    host: HOST,
    keyPairId: "K2TEST",
    privateKey: PRIVATE_KEY,
    ttlSeconds: 7200,
    nowSeconds: FROM,
  });
}

// Names with the characters that matter: wildcards, '/', '%', '?', '&', '=', unicode.
const nameChar = fc.constantFrom(..."ab*?/%&=.-_ Кé😀#".split(""), "*", "?", "/");
const streamName = fc
  .array(nameChar, { minLength: 1, maxLength: 12 })
  .map((cs) => cs.join(""))
  .filter((n) => !n.split("/").some((s) => s === "" || s === "." || s === ".."));
const sourceName = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,8}$/);
const prefix = fc.constantFrom("", "flussonic/", "backups/site-1/");

describe("signed media URLs (CloudFront custom policy)", () => {
  it("a policy signed for one stream matches its own windows and no window of another stream or source, with or without a query string", () => {
    let tried = 0;
    fc.assert(
      fc.property(prefix, sourceName, streamName, sourceName, streamName, (p, srcA, camA, srcB, camB) => {
        fc.pre(srcA !== srcB || camA !== camB);
        tried++;
        const keyA = windowKey(p, { source: srcA, stream: camA, from: FROM, duration: 600 }, "mp4");
        const keyB = windowKey(p, { source: srcB, stream: camB, from: FROM, duration: 600 }, "mp4");
        const signed = signFor(p, srcA, camA, keyA);
        const resource = resourceOf(signed);
        // Not vacuous: the URL as signed, and the next window of the same stream, match.
        expect(cloudFrontResourceMatches(resource, comparedUrl(HOST, signed))).toBe(true);
        const nextA = windowKey(p, { source: srcA, stream: camA, from: FROM + 600, duration: 600 }, "mp4");
        expect(cloudFrontResourceMatches(resource, comparedUrl(HOST, mediaPath(nextA)))).toBe(true);
        const folderA = mediaPath(streamPrefix(p, srcA, camA)).slice(0, -1);
        const attacks = [
          mediaPath(keyB),
          `${mediaPath(keyB)}?x=${folderA}/`,
          `${mediaPath(keyB)}?x=/${folderA.slice(1)}/&y=1`,
          `${mediaPath(keyB)}?${mediaPath(keyA)}`,
          `${mediaPath(keyB)}?x=https://${HOST}${mediaPath(keyA)}`,
        ];
        for (const attack of attacks) {
          for (const host of [HOST, "evil.example", `${HOST}.evil.example`]) {
            expect(
              cloudFrontResourceMatches(resource, comparedUrl(host, attack)),
              `${resource} ~ ${attack}`,
            ).toBe(false);
          }
        }
      }),
      { numRuns: 250 },
    );
    expect(tried).toBeGreaterThan(200);
  });

  it("the policy's Resource is the distribution's host and the stream's folder, with no wildcard before the path", () => {
    const key = windowKey("flussonic/", { source: "s1", stream: "cam*A", from: FROM, duration: 600 }, "mp4");
    const resource = resourceOf(signFor("flussonic/", "s1", "cam*A", key));
    expect(resource).toBe(`https://${HOST}${MEDIA_PATH}flussonic/s1/cam%252AA/*`);
    expect(resource.slice(0, -1)).not.toMatch(/[*?]/);
  });
});

type CfRequest = {
  method: string;
  uri: string;
  querystring: Record<string, { value: string; multiValue?: { value: string }[] }>;
  headers: Record<string, { value: string }>;
};
type CfAnswer = CfRequest | { statusCode: number; statusDescription?: string };

const mediaRequest = new Function(`${MEDIA_REQUEST_FUNCTION}; return handler;`)() as (event: {
  request: CfRequest;
}) => CfAnswer;

function viewerRequest(uri: string, query: Record<string, string> = {}, method = "GET"): CfAnswer {
  const querystring = Object.fromEntries(Object.entries(query).map(([k, v]) => [k, { value: v }]));
  return mediaRequest({ request: { method, uri, querystring, headers: {} } });
}

const SIGNED = { Policy: "eyJTdGF0ZW1lbnQiOltdfQ__", Signature: "abc~-_", "Key-Pair-Id": "K2TEST" };

describe("the viewer-request function of /_media/*", () => {
  it("passes a signed media URL on with /_media cut from the path", () => {
    const out = viewerRequest("/_media/flussonic/s1/live%252Fcam1/2026-12-07/120000Z-600s.mp4", SIGNED);
    expect("uri" in out && out.uri).toBe("/flussonic/s1/live%252Fcam1/2026-12-07/120000Z-600s.mp4");
  });

  it("answers a CORS preflight at the edge", () => {
    const out = viewerRequest("/_media/flussonic/s1/cam1/2026-12-07/120000Z-600s.mp4", {}, "OPTIONS");
    expect("statusCode" in out && out.statusCode).toBe(204);
  });

  it("refuses query parameters other than Policy, Signature and Key-Pair-Id", () => {
    for (const extra of ["x", "response-content-type", "policy", "token"]) {
      const out = viewerRequest("/_media/flussonic/s1/cam1/2026-12-07/120000Z-600s.mp4", {
        ...SIGNED,
        [extra]: "/s1/camA/",
      });
      expect("statusCode" in out && out.statusCode, extra).toBe(400);
    }
  });

  it("refuses dot segments, encoded dots, encoded slashes and backslashes that could walk out of a stream folder", () => {
    for (const uri of [
      "/_media/flussonic/s1/camA/../../s2/cam/2026-12-07/120000Z-600s.mp4",
      "/_media/flussonic/s1/camA/./x.mp4",
      "/_media/flussonic/s1/camA/%2e%2e/%2E%2E/s2/cam/x.mp4",
      "/_media/flussonic/s1/camA/.%2e/x.mp4",
      "/_media/flussonic/s1/camA%2F..%2Fs2/x.mp4",
      "/_media/flussonic/s1/camA%2f..%2fs2/x.mp4",
      "/_media/flussonic/s1/camA%5C..%5Cs2/x.mp4",
      "/_media/flussonic/s1/camA\\..\\s2/x.mp4",
      "/_media/flussonic//s1/x.mp4",
    ]) {
      const out = viewerRequest(uri, SIGNED);
      expect("statusCode" in out && out.statusCode, uri).toBe(400);
    }
  });
});

describe("the viewer-request function of the playback behaviour", () => {
  const copyHost = new Function(`${PLAYBACK_REQUEST_FUNCTION}; return handler;`)() as (event: {
    request: CfRequest;
  }) => CfRequest;

  it("copies the viewer's Host into x-playback-host, overwriting one the viewer sent", () => {
    const out = copyHost({
      request: {
        method: "GET",
        uri: "/s1/cam1/index-1-60.m3u8",
        querystring: {},
        headers: { host: { value: HOST }, [PLAYBACK_HOST_HEADER]: { value: "evil.example" } },
      },
    });
    expect(out.headers[PLAYBACK_HOST_HEADER]?.value).toBe(HOST);
  });
});
