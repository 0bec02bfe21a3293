/**
 * The playback function as it is deployed: the stack is synthesized with `deployment.playback`,
 * the playback bundle is taken from the cloud assembly (with the page files its bundling copies)
 * and invoked in a fresh Node process per request, as the Lambda runtime does, with function-URL
 * events (what CloudFront's origin access control forwards). Its environment is the template's,
 * with the references CloudFormation would resolve (the secrets' ARNs, the key pair id) pointing at
 * a Secrets Manager double; the backup it plays was made by the local runtime from the simulator
 * in the embedded S3 emulator.
 */

import { spawnSync } from "node:child_process";
import { createPublicKey, generateKeyPairSync, randomUUID, verify } from "node:crypto";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import HLS from "hls-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli } from "../../dev/kit/cli-process.ts";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import {
  type Deployment,
  DUMMY_CREDENTIALS,
  functionEnvironment,
  type InvokeSetup,
  invokeFunction,
  type SynthesizedStack,
  synthesizeStack,
} from "../../dev/kit/lambda-stack.ts";
import { SecretsManagerDouble } from "../../dev/kit/secrets-manager-double.ts";
import { cdnCacheControl, MAX_BUFFERED_BYTES, toResult } from "../../functions/lambda/playback.ts";
import { playbackTokenSecretName } from "../../functions/playback/deployed-secrets.ts";
import { createPlaybackToken, tokenId, tokenProblem } from "../../functions/playback/token.ts";
import { FragmentIndexStore } from "../../functions/store/fragment-index-store.ts";

const BUCKET = "test-backup";
/** The name the stack gives the token keys' secret (playback-token finds it by the bucket). */
const TOKEN_SECRET = playbackTokenSecretName(BUCKET);
const SIGNING_SECRET = "flussonic-backup-playback-signing";
const KEY_PAIR_ID = "K2PLAYBACKTEST";
const CURRENT_KEY = "c".repeat(40);
const PREVIOUS_KEY = "p".repeat(40);
const NOW = Math.floor(Date.now() / 1000);
/** Whole 10-minute windows from an hour ago, so that a range crosses a window boundary. */
const FROM = Math.floor((NOW - HOUR) / 600) * 600 + 540;
const DUR = 120;
const VIEWER_HOST = "d111.cloudfront.net";

interface Scenario {
  dir: string;
  h: Harness;
  secrets: SecretsManagerDouble;
  setup: InvokeSetup;
  publicKey: string;
  index: FragmentIndexStore;
  configFile: string;
  stack: SynthesizedStack;
}
let s: Scenario;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "fb-playback-lambda-"));
  const h = await startHarness({
    config: { bucket: BUCKET },
    sim: {
      streams: [{ name: "cam1", bitrateBps: 40_000, ranges: [{ from: NOW - 2 * HOUR, to: NOW + HOUR }] }],
    },
    source: { retentionDays: 0.25 },
  });
  // The function reads the real clock: the simulated archive is laid out around it.
  h.clock.seconds = NOW;
  const rt = await h.runtime();
  await rt.plan();
  await rt.startCopiers();
  await rt.drain();
  await rt.stopCopiers();
  await rt.plan(); // folds the records: the index is one object per stream-day

  const configFile = join(dir, "playback-test.json");
  writeFileSync(
    configFile,
    JSON.stringify({
      bucket: BUCKET,
      prefix: h.config.prefix,
      sources: [{ name: "src1", url: h.sim.url, retentionDays: 0.25 }],
      deployment: { playback: {} },
    }),
  );
  const stack = await synthesizeStack(configFile, join(dir, "cdk.out"));
  const fn = stack.functions.find((f) => f.description.includes("playback: playlists"));
  if (!fn) throw new Error("no playback function in the template");

  const pair = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  const secrets = await SecretsManagerDouble.start({
    [TOKEN_SECRET]: `${CURRENT_KEY},${PREVIOUS_KEY}`,
    [SIGNING_SECRET]: pair.privateKey,
  });
  // What CloudFormation resolves: Ref of a secret is its ARN, Ref of a CloudFront public key its id.
  const byId = (id: string): string | undefined => {
    const type = stack.resources[id]?.Type;
    if (type === "AWS::SecretsManager::Secret") {
      const name = id.includes("TokenKeys") ? TOKEN_SECRET : SIGNING_SECRET;
      return `arn:aws:secretsmanager:us-east-1:000000000000:secret:${name}-AbCdEf`;
    }
    if (type === "AWS::CloudFront::PublicKey") return KEY_PAIR_ID;
    return undefined;
  };
  const deployment: Deployment = {
    queues: new Map(),
    buckets: new Map(),
    resolve: (v) => {
      if (typeof v === "string") return v;
      const id = (v as { Ref?: string })?.Ref;
      const found = id ? byId(id) : undefined;
      if (found === undefined) throw new Error(`cannot resolve ${JSON.stringify(v)}`);
      return found;
    },
  };
  const endpoints = h.emulator.endpoints;
  const setup: InvokeSetup = {
    fn,
    deployment,
    endpoint: {
      region: endpoints.region,
      s3Endpoint: endpoints.s3Endpoint!,
      sqsEndpoint: endpoints.sqsEndpoint!,
    },
    secretsManagerEndpoint: secrets.url,
    workDir: join(dir, "invocations"),
  };
  s = {
    dir,
    h,
    secrets,
    setup,
    publicKey: pair.publicKey,
    index: new FragmentIndexStore(rt.store),
    configFile,
    stack,
  };
}, 180_000);

afterAll(async () => {
  await s?.secrets.close();
  await s?.h.close();
  if (s) rmSync(s.dir, { recursive: true, force: true });
});

/** A function-URL event (payload 2.0) as CloudFront's origin request arrives at the function. */
function urlEvent(path: string, query: Record<string, string> = {}) {
  const rawQueryString = new URLSearchParams(query).toString();
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: path,
    rawQueryString,
    headers: {
      host: "abcdefghij.lambda-url.us-east-1.on.aws",
      "x-forwarded-proto": "https",
      via: "2.0 example.cloudfront.net (CloudFront)",
      "user-agent": "Amazon CloudFront",
      // Set at the edge by the playback behaviour's viewer-request function (the viewer's Host).
      "x-playback-host": VIEWER_HOST,
    },
    ...(rawQueryString ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: "anonymous",
      apiId: "abcdefghij",
      domainName: "abcdefghij.lambda-url.us-east-1.on.aws",
      domainPrefix: "abcdefghij",
      http: {
        method: "GET",
        path,
        protocol: "HTTP/1.1",
        sourceIp: "130.176.0.1",
        userAgent: "Amazon CloudFront",
      },
      requestId: "r1",
      routeKey: "$default",
      stage: "$default",
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    isBase64Encoded: false,
  };
}

interface UrlResult {
  statusCode: number;
  headers: Record<string, string>;
  body?: string;
  isBase64Encoded?: boolean;
}

async function invoke(path: string, query: Record<string, string> = {}): Promise<UrlResult> {
  const outcome = await invokeFunction(s.setup, urlEvent(path, query), functionEnvironment(s.setup));
  if (!outcome.ok) throw new Error(`${outcome.errorType}: ${outcome.errorMessage}\n${outcome.logs}`);
  expect(outcome.node).toMatch(/^v24\./);
  for (const secret of [CURRENT_KEY, PREVIOUS_KEY, query.token].filter(Boolean)) {
    expect(outcome.logs).not.toContain(secret);
  }
  return outcome.result as unknown as UrlResult;
}

/** The npm package's binary (an optional dependency: installed on Linux x86-64 only). */
const NPM_FFMPEG = join(import.meta.dirname, "../../node_modules/@ffmpeg-installer/linux-x64/ffmpeg");

const token = (key: string, stream?: string) =>
  createPlaybackToken(key, { source: "src1", stream }, Math.floor(Date.now() / 1000) + 600);

const fromCloudFrontBase64 = (v: string) =>
  Buffer.from(v.replaceAll("-", "+").replaceAll("_", "=").replaceAll("~", "/"), "base64");

describe("the playback bundle in the Lambda harness", () => {
  it("answers index-{from}-{dur}.m3u8 with the playlist of the stored windows, media addressed by CloudFront signed URLs", async () => {
    const res = await invoke(`/src1/cam1/index-${FROM}-${DUR}.m3u8`, { token: token(CURRENT_KEY, "cam1") });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers["Content-Type"]).toBe("application/vnd.apple.mpegurl");
    // A past range: cacheable at CloudFront by URL (the token is in the cache key).
    expect(res.headers["Cache-Control"]).toBe("max-age=60");
    const playlist = HLS.parse(res.body!) as HLS.types.MediaPlaylist;
    expect(playlist.version).toBe(7);
    expect(playlist.playlistType).toBe("VOD");
    const total = playlist.segments.reduce((n, seg) => n + seg.duration, 0);
    expect(Math.abs(total - DUR)).toBeLessThanOrEqual(1);
    // Two windows (the range crosses a 10-minute boundary): one discontinuity, one map each.
    expect(playlist.segments.filter((seg) => seg.discontinuity)).toHaveLength(1);

    // The byte ranges are the index's: each segment starts on an indexed fragment of its window.
    const windows = await s.index.readFragmentIndex("src1", "cam1", FROM, FROM + DUR);
    const keys = new Set(await s.h.keys(`${s.h.config.prefix}src1/cam1/`));
    for (const seg of playlist.segments) {
      const url = new URL(seg.uri, `https://${VIEWER_HOST}`);
      expect(url.pathname.startsWith("/_media/")).toBe(true);
      const key = decodeURIComponent(url.pathname.slice("/_media/".length));
      expect(keys.has(key), key).toBe(true);
      const w = windows.find((x) => x.key === key)!;
      expect(w.fragments.some((f) => f.offset === seg.byterange!.offset)).toBe(true);
      expect(seg.map!.byterange).toEqual({ offset: w.init!.offset, length: w.init!.length });
      // CloudFront signed URL (custom policy): the key pair id, a policy for the stream's folder
      // with an expiry of at least the configured 2 hours, signed with the key pair's private key.
      expect(url.searchParams.get("Key-Pair-Id")).toBe(KEY_PAIR_ID);
      const policy = fromCloudFrontBase64(url.searchParams.get("Policy")!);
      const statement = JSON.parse(policy.toString("utf8")).Statement[0];
      // Anchored to the viewer's host and the stream's folder: no wildcard before the path.
      expect(statement.Resource).toBe(`https://${VIEWER_HOST}/_media/${s.h.config.prefix}src1/cam1/*`);
      expect(statement.Condition.DateLessThan["AWS:EpochTime"]).toBeGreaterThanOrEqual(NOW + 7200);
      const signature = fromCloudFrontBase64(url.searchParams.get("Signature")!);
      expect(verify("RSA-SHA1", policy, createPublicKey(s.publicKey), signature)).toBe(true);
    }
  }, 60_000);

  it("logs each call: stream, range, status and the token's id (a fingerprint), never the token", async () => {
    const t = token(CURRENT_KEY, "cam1");
    const outcome = await invokeFunction(
      s.setup,
      urlEvent(`/src1/cam1/index-${FROM}-${DUR}.m3u8`, { token: t }),
      functionEnvironment(s.setup),
    );
    expect(outcome.ok).toBe(true);
    expect(outcome.logs).not.toContain(t);
    const lines = outcome.logs
      .split("\n")
      .filter((l) => l.startsWith("{") && l.includes('"playback request"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      message: "playback request",
      method: "GET",
      source: "src1",
      stream: "cam1",
      from: FROM,
      duration: DUR,
      status: 200,
      tokenId: tokenId(t),
    });
    expect(tokenId(t)).toMatch(/^[0-9a-f]{16}$/);
    expect(JSON.stringify(lines[0])).not.toContain(t.split(".")[2]!);
  });

  it("refuses a token signed with a key the secret does not hold (403 with the reason), and takes one of the previous key", async () => {
    const bad = await invoke(`/src1/cam1/index-${FROM}-${DUR}.m3u8`, { token: token("x".repeat(40)) });
    expect(bad.statusCode).toBe(403);
    expect(bad.body).toContain("signature does not match");
    expect(bad.headers["Cache-Control"]).toBe("no-store");
    const none = await invoke(`/src1/cam1/index-${FROM}-${DUR}.m3u8`);
    expect(none.statusCode).toBe(403);
    expect(none.body).toContain("needs a token");
    const previous = await invoke(`/src1/cam1/index-${FROM}-${DUR}.m3u8`, { token: token(PREVIOUS_KEY) });
    expect(previous.statusCode, previous.body).toBe(200);
  }, 60_000);

  it.skipIf(!existsSync(NPM_FFMPEG))(
    "carries the static ffmpeg of @ffmpeg-installer/linux-x64 beside the bundle (where the entry looks for it), and it runs",
    () => {
      const bin = join(s.setup.fn.codeDir, "playback-page", "ffmpeg");
      expect(existsSync(bin)).toBe(true);
      expect(spawnSync(bin, ["-hide_banner", "-version"], { stdio: "ignore" }).status).toBe(0);
    },
  );

  it("serves the player page from the bundle and lists the token's streams for it", async () => {
    const page = await invoke("/");
    expect(page.statusCode).toBe(200);
    expect(page.headers["Content-Type"]).toContain("text/html");
    expect(Buffer.from(page.body!, "base64").toString("utf8")).toContain("Watch the backup");
    const hls = await invoke("/_assets/hls.min.js");
    expect(hls.statusCode).toBe(200);
    expect(Buffer.from(hls.body!, "base64").length).toBeGreaterThan(100_000);
    const listing = await invoke("/_api/streams.json", { token: token(CURRENT_KEY) });
    expect(listing.statusCode, listing.body).toBe(200);
    const body = JSON.parse(listing.body!);
    expect(body.sources[0].streams.map((x: { stream: string }) => x.stream)).toEqual(["cam1"]);
    const refused = await invoke("/_api/streams.json", { token: token("x".repeat(40)) });
    expect(refused.statusCode).toBe(403);
  }, 60_000);

  it("playback-token signs with the deployed stack's key, read from Secrets Manager with the caller's credentials, and the function takes the token", async () => {
    const env = {
      AWS_ACCESS_KEY_ID: DUMMY_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: DUMMY_CREDENTIALS.secretAccessKey,
      AWS_REGION: "us-east-1",
      AWS_ENDPOINT_URL_SECRETS_MANAGER: s.secrets.url,
      AWS_CONFIG_FILE: join(s.dir, "no-aws-config"),
      AWS_SHARED_CREDENTIALS_FILE: join(s.dir, "no-aws-credentials"),
    };
    const args = ["playback-token", "--config", s.configFile, "--source", "src1", "--stream", "cam1"];
    const before = s.secrets.requests.length;
    const r = await cli(args, { cwd: s.dir, env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      `signed with the deployed stack's key (Secrets Manager secret ${TOKEN_SECRET})`,
    );
    const printed = r.stdout.trim().split("\n").at(-1)!;
    const now = Math.floor(Date.now() / 1000);
    expect(tokenProblem(printed, [CURRENT_KEY], { source: "src1", stream: "cam1" }, now)).toBeUndefined();
    const asked = s.secrets.requests.slice(before);
    expect(asked.map((q) => q.secretId)).toEqual([TOKEN_SECRET]);
    expect(asked[0]!.signedBy).toMatch(
      new RegExp(`^${DUMMY_CREDENTIALS.accessKeyId}/\\d{8}/us-east-1/secretsmanager$`),
    );
    const res = await invoke(`/src1/cam1/index-${FROM}-${DUR}.m3u8`, { token: printed });
    expect(res.statusCode, res.body).toBe(200);

    // A secret it cannot read: exit 1, the secret named, what to do; nothing printed as a token.
    const value = s.secrets.secrets.get(TOKEN_SECRET)!;
    s.secrets.secrets.delete(TOKEN_SECRET);
    try {
      const missing = await cli(args, { cwd: s.dir, env });
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain(`Secrets Manager secret ${TOKEN_SECRET}`);
      expect(missing.stderr).toContain("AWS_REGION");
      expect(missing.stdout).toBe("");
    } finally {
      s.secrets.secrets.set(TOKEN_SECRET, value);
    }
  }, 60_000);

  it("keeps a delayed channel's playlist one second at the edge, and redirects the export of one stored window to its signed media URL", async () => {
    const tok = token(CURRENT_KEY, "cam1");
    const live = await invoke("/src1/cam1/timeshift_rel-1800.m3u8", { token: tok });
    expect(live.statusCode, live.body).toBe(200);
    expect(live.headers["Cache-Control"]).toBe("max-age=1");
    expect(live.body).toContain("#EXT-X-MEDIA-SEQUENCE:");
    const [w] = await s.index.readFragmentIndex("src1", "cam1", FROM + 60, FROM + 61);
    const one = await invoke(`/src1/cam1/archive-${w!.from}-${w!.duration}.mp4`, { token: tok });
    expect(one.statusCode).toBe(302);
    expect(one.headers.Location).toMatch(/^\/_media\/.*\?Policy=.*&Signature=.*&Key-Pair-Id=K2PLAYBACKTEST$/);
  }, 60_000);
});

describe("the playback entry's answer mapping", () => {
  it("maps the handler's cache times for CloudFront: VOD playlists shareable for their max-age, live ones one second, the rest as is", () => {
    const m3u8 = "application/vnd.apple.mpegurl";
    expect(cdnCacheControl("private, max-age=60", m3u8)).toBe("max-age=60");
    expect(cdnCacheControl("no-cache", m3u8)).toBe("max-age=1");
    expect(cdnCacheControl("no-cache", "application/json")).toBe("no-cache");
    expect(cdnCacheControl("private, max-age=60", "video/mp4")).toBe("private, max-age=60");
    expect(cdnCacheControl(undefined, "text/plain")).toBe("no-store");
  });

  it("sends binary and streamed bodies base64, and refuses a streamed export beyond what a Lambda answer carries", async () => {
    const bytes = new Uint8Array([0, 1, 2, 255]);
    async function* stream(total: number) {
      for (let sent = 0; sent < total; sent += 1024 * 1024)
        yield new Uint8Array(Math.min(1024 * 1024, total - sent));
    }
    const small = await toResult({ status: 200, headers: { "Content-Type": "video/mp4" }, body: stream(3) });
    expect(small).toMatchObject({
      statusCode: 200,
      isBase64Encoded: true,
      body: Buffer.alloc(3).toString("base64"),
    });
    const bin = await toResult({ status: 200, headers: {}, body: bytes });
    expect(Buffer.from(bin.body!, "base64")).toEqual(Buffer.from(bytes));
    const big = await toResult({
      status: 200,
      headers: { "Content-Type": "video/mp4" },
      body: stream(MAX_BUFFERED_BYTES + 1),
    });
    expect(big.statusCode).toBe(413);
    expect(big.body).toContain("larger than the 4 MiB a Lambda answer can carry");
  });
});

/**
 * What the key-pair custom resource talks to at deploy time: Secrets Manager (GetSecretValue and
 * PutSecretValue, JSON 1.1; the double in dev/kit answers only GetSecretValue) and
 * CloudFormation's response URL (a presigned S3 PUT), both on one local server.
 */
async function deployTimeServices(initial: Record<string, string>) {
  const secrets = new Map(Object.entries(initial));
  const puts: string[] = [];
  const responses: { Status?: string; Data?: { PublicKey?: string }; [k: string]: unknown }[] = [];
  const nameOf = (id: string) => /:secret:(.+?)(-[A-Za-z0-9]{6})?$/.exec(id)?.[1] ?? id;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      if (req.method === "PUT" && req.url?.startsWith("/cfn-response")) {
        responses.push(JSON.parse(body));
        res.writeHead(200).end();
        return;
      }
      const op = String(req.headers["x-amz-target"] ?? "").replace(/^secretsmanager\./, "");
      const input = JSON.parse(body || "{}") as { SecretId: string; SecretString?: string };
      const name = nameOf(input.SecretId);
      const json = (status: number, v: unknown) =>
        res.writeHead(status, { "Content-Type": "application/x-amz-json-1.1" }).end(JSON.stringify(v));
      if (op === "GetSecretValue") {
        if (!secrets.has(name))
          return json(400, { __type: "ResourceNotFoundException", message: "no such secret" });
        return json(200, { ARN: input.SecretId, Name: name, SecretString: secrets.get(name) });
      }
      if (op === "PutSecretValue") {
        puts.push(name);
        secrets.set(name, input.SecretString!);
        return json(200, { ARN: input.SecretId, Name: name, VersionId: randomUUID() });
      }
      return json(400, { __type: "InvalidRequestException", message: `not answered here: ${op}` });
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, secrets, puts, responses, close: () => new Promise((r) => server.close(r)) };
}

describe("the key-pair custom resource bundle (deploy time)", () => {
  it("makes an RSA key pair into the signing secret on Create, hands CloudFront the public key, and keeps the key on Update", async () => {
    const [crId, cr] = Object.entries(s.stack.resources).find(
      ([, r]) => r.Type === "Custom::PlaybackSigningKey",
    )!;
    const serviceToken = cr.Properties!.ServiceToken as { "Fn::GetAtt": [string, string] };
    const fn = s.stack.functions.find((f) => f.logicalId === serviceToken["Fn::GetAtt"][0])!;
    const secretId = (cr.Properties!.SecretId as { Ref: string }).Ref;
    expect(s.stack.resources[secretId]!.Type).toBe("AWS::SecretsManager::Secret");
    // The public key the key group trusts is the one this resource returns.
    const publicKey = Object.values(s.stack.resources).find((r) => r.Type === "AWS::CloudFront::PublicKey")!;
    expect((publicKey.Properties!.PublicKeyConfig as { EncodedKey: unknown }).EncodedKey).toEqual({
      "Fn::GetAtt": [crId, "PublicKey"],
    });

    // CloudFormation generated a random string into the secret when it created it.
    const services = await deployTimeServices({ "media-signing": "generated-by-cloudformation" });
    try {
      const setup: InvokeSetup = { ...s.setup, fn, secretsManagerEndpoint: services.url };
      const event = (type: "Create" | "Update") => ({
        RequestType: type,
        ServiceToken: "arn:aws:lambda:us-east-1:000000000000:function:maker",
        ResponseURL: `${services.url}/cfn-response?X-Amz-Signature=abc`,
        StackId: "arn:aws:cloudformation:us-east-1:000000000000:stack/flussonic-backup/1",
        RequestId: randomUUID(),
        LogicalResourceId: crId,
        ResourceType: "Custom::PlaybackSigningKey",
        ResourceProperties: {
          ServiceToken: "arn:aws:lambda:us-east-1:000000000000:function:maker",
          SecretId: "arn:aws:secretsmanager:us-east-1:000000000000:secret:media-signing-AbCdEf",
        },
        ...(type === "Update"
          ? { PhysicalResourceId: `playback-signing-key-${crId}`, OldResourceProperties: {} }
          : {}),
      });
      const created = await invokeFunction(setup, event("Create"), functionEnvironment(setup));
      expect(created.ok, created.ok ? "" : `${created.errorMessage}\n${created.logs}`).toBe(true);
      const [first] = services.responses;
      expect(first).toMatchObject({
        Status: "SUCCESS",
        LogicalResourceId: crId,
        StackId: event("Create").StackId,
      });
      const privateKey = services.secrets.get("media-signing")!;
      expect(privateKey).toContain("BEGIN PRIVATE KEY");
      expect(services.puts).toEqual(["media-signing"]);
      const derived = createPublicKey(privateKey).export({ type: "spki", format: "pem" }).toString();
      expect(first!.Data!.PublicKey).toBe(derived);
      expect(createPublicKey(first!.Data!.PublicKey!).asymmetricKeyDetails?.modulusLength).toBe(2048);
      // The private key is never in the logs or the answer to CloudFormation.
      expect(created.logs).not.toContain("PRIVATE KEY");
      expect(JSON.stringify(first)).not.toContain("PRIVATE KEY");

      const updated = await invokeFunction(setup, event("Update"), functionEnvironment(setup));
      expect(updated.ok).toBe(true);
      expect(services.responses[1]).toMatchObject({ Status: "SUCCESS", Data: { PublicKey: derived } });
      expect(services.puts).toEqual(["media-signing"]);
    } finally {
      await services.close();
    }
  }, 60_000);
});
