/**
 * Playback in the stack (`"deployment": {"playback": {}}`): the template the CDK makes, checked
 * for what a security review asks (origin access control, a private bucket, TLS only, the
 * function's narrow role, read-only secrets), for the cache and origin settings that carry the
 * token and Range, and for the alarms. Two templates (stub code, no bundling): the defaults, and
 * a custom domain with a certificate and a KMS-encrypted bucket.
 */
// biome-ignore-all lint/suspicious/noExplicitAny: CloudFormation template JSON is walked untyped here
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { AwsSolutionsChecks } from "cdk-nag";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../functions/config/config.ts";
import { BackupStack } from "../../infra/backup-stack.ts";

const config = {
  bucket: "dvr-backup-test",
  prefix: "flussonic/",
  sources: [
    { name: "s1", url: "https://s1.example", retentionDays: 7 },
    { name: "s2", url: "https://s2.example", streams: ["cam1"], retentionDays: 3 },
  ],
  deployment: { playback: {} },
};
const CERT = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555";
const KMS = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555";

function stackFor(raw: Record<string, unknown>, region?: string): BackupStack {
  return new BackupStack(new App(), "Test", {
    config: parseConfig(JSON.stringify(raw), "test.json"),
    configFile: "test.json",
    functionCode: "stub",
    ...(region ? { env: { account: "123456789012", region } } : {}),
  });
}

type Resource = { Type: string; Properties: Record<string, any>; Condition?: string };
const stack = stackFor(config);
const t = Template.fromStack(stack);
const withDomain = stackFor({
  ...config,
  deployment: {
    kmsKeyArn: KMS,
    playback: { domainName: "backup.example.com", certificateArn: CERT },
  },
});
const td = Template.fromStack(withDomain);

const resources = (tt: Template) => tt.toJSON().Resources as Record<string, Resource>;
const ofType = (tt: Template, type: string) =>
  Object.entries(resources(tt)).filter(([, r]) => r.Type === type);
const one = (tt: Template, type: string) => {
  const found = ofType(tt, type);
  expect(found, type).toHaveLength(1);
  return found[0]!;
};
const distribution = (tt: Template) =>
  one(tt, "AWS::CloudFront::Distribution")[1].Properties.DistributionConfig;
const behaviour = (tt: Template, path: string) =>
  (distribution(tt).CacheBehaviors as Record<string, any>[]).find((b) => b.PathPattern === path)!;
const originOf = (tt: Template, b: Record<string, any>) =>
  (distribution(tt).Origins as Record<string, any>[]).find((o) => o.Id === b.TargetOriginId)!;
const refId = (v: any): string => v?.Ref ?? v?.["Fn::GetAtt"]?.[0];
const handlerRole = (tt: Template) =>
  ofType(tt, "AWS::IAM::Role").find(([, r]) => String(r.Properties.Description).includes("playback:"))![0];
const policyOf = (tt: Template, roleId: string) =>
  ofType(tt, "AWS::IAM::Policy")
    .filter(([, p]) => (p.Properties.Roles as any[]).some((r) => refId(r) === roleId))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Record<string, any>[]);
const flat = (v: unknown) => JSON.stringify(v);
const asList = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);
/** The key patterns of object ARNs `{Fn::Join: ["", [{GetAtt: [bucket, Arn]}, "/<key>"]]}` of `bucketId`. */
const keysOf = (resource: unknown, bucketId: string) =>
  asList(resource).map((r: any) => {
    const [sep, [arn, key, ...rest]] = r["Fn::Join"];
    expect([sep, refId(arn), rest]).toEqual(["", bucketId, []]);
    return key as string;
  });

describe("playback in the stack: opt-in", () => {
  it("adds no distribution, function URL or playback secret without deployment.playback", () => {
    const plain = Template.fromStack(stackFor({ ...config, deployment: {} }));
    plain.resourceCountIs("AWS::CloudFront::Distribution", 0);
    plain.resourceCountIs("AWS::Lambda::Url", 0);
    plain.resourceCountIs("AWS::SecretsManager::Secret", 0);
    expect(Object.keys(plain.toJSON().Outputs)).not.toContain("PlaybackUrl");
  });

  it("runs the handler on nodejs24.x x86_64 (the npm ffmpeg it carries is x86-64) and prints the playback URL as an output", () => {
    const fn = ofType(t, "AWS::Lambda::Function").find(([, r]) =>
      String(r.Properties.Description).includes("playback: playlists"),
    )![1];
    expect(fn.Properties.Runtime).toBe("nodejs24.x");
    expect(fn.Properties.Architectures).toEqual(["x86_64"]);
    const outputs = t.toJSON().Outputs;
    expect(flat(outputs.PlaybackUrl.Value)).toContain("DomainName");
    expect(td.toJSON().Outputs.PlaybackUrl.Value).toBe("https://backup.example.com");
  });
});

describe("playback: origin access control and a private bucket", () => {
  it("reads media from the bucket through an S3 origin access control, and the function URL through a Lambda one (IAM auth)", () => {
    const media = originOf(t, behaviour(t, "/_media/*"));
    expect(media.S3OriginConfig.OriginAccessIdentity).toBe("");
    const mediaOac = resources(t)[refId(media.OriginAccessControlId)]!;
    expect(mediaOac.Properties.OriginAccessControlConfig).toMatchObject({
      OriginAccessControlOriginType: "s3",
      SigningBehavior: "always",
      SigningProtocol: "sigv4",
    });
    const fnOrigin = originOf(t, distribution(t).DefaultCacheBehavior);
    const fnOac = resources(t)[refId(fnOrigin.OriginAccessControlId)]!;
    expect(fnOac.Properties.OriginAccessControlConfig).toMatchObject({
      OriginAccessControlOriginType: "lambda",
      SigningBehavior: "always",
    });
    expect(one(t, "AWS::Lambda::Url")[1].Properties.AuthType).toBe("AWS_IAM");
    // Only this distribution may invoke the function URL.
    const perms = ofType(t, "AWS::Lambda::Permission").filter(
      ([, p]) => p.Properties.Principal === "cloudfront.amazonaws.com",
    );
    expect(perms.length).toBeGreaterThan(0);
    for (const [, p] of perms) expect(flat(p.Properties.SourceArn)).toContain("PlaybackDistribution");
  });

  it("keeps the bucket private: public access blocked, no website, CloudFront may read only the archive windows", () => {
    const [, bucket] = ofType(t, "AWS::S3::Bucket").find(
      ([, b]) => b.Properties.BucketName === "dvr-backup-test",
    )!;
    expect(bucket.Properties.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(bucket.Properties.WebsiteConfiguration).toBeUndefined();
    const [bucketId] = ofType(t, "AWS::S3::Bucket").find(
      ([, b]) => b.Properties.BucketName === "dvr-backup-test",
    )!;
    const policy = ofType(t, "AWS::S3::BucketPolicy").find(
      ([, p]) => refId(p.Properties.Bucket) === bucketId,
    )!;
    const statements = policy[1].Properties.PolicyDocument.Statement as Record<string, any>[];
    const allows = statements.filter((s) => s.Effect === "Allow");
    for (const s of allows) {
      expect(s.Principal).not.toBe("*");
      expect(flat(s.Principal)).not.toContain('"AWS":"*"');
    }
    const cf = allows.filter((s) => flat(s.Principal).includes("cloudfront.amazonaws.com"));
    expect(cf).toHaveLength(1);
    expect(asList(cf[0]!.Action)).toEqual(["s3:GetObject"]);
    expect(flat(cf[0]!.Condition.StringEquals["AWS:SourceArn"])).toContain("PlaybackDistribution");
    expect(keysOf(cf[0]!.Resource, bucketId)).toEqual(["/flussonic/s1/*", "/flussonic/s2/*"]);
  });
});

describe("playback: TLS only", () => {
  it("serves HTTPS only on every behaviour: no http:// request carries a token in clear, not even a first one", () => {
    for (const tt of [t, td]) {
      const d = distribution(tt);
      for (const b of [d.DefaultCacheBehavior, ...d.CacheBehaviors]) {
        expect(b.ViewerProtocolPolicy).toBe("https-only");
      }
    }
  });

  it("sends no Referer (tokens are in URLs), forbids framing and restricts the page to its own scripts, styles and media", () => {
    const [, policy] = one(t, "AWS::CloudFront::ResponseHeadersPolicy");
    const headers = policy.Properties.ResponseHeadersPolicyConfig.SecurityHeadersConfig;
    expect(headers.ReferrerPolicy).toEqual({ ReferrerPolicy: "no-referrer", Override: true });
    expect(headers.FrameOptions).toEqual({ FrameOption: "DENY", Override: true });
    const csp = String(headers.ContentSecurityPolicy.ContentSecurityPolicy);
    for (const directive of [
      "default-src 'none'",
      "script-src 'self'",
      "style-src 'self'",
      "media-src 'self' blob:",
      "connect-src 'self'",
      "worker-src 'self' blob:",
      "frame-ancestors 'none'",
    ]) {
      expect(csp).toContain(directive);
    }
    expect(csp).not.toContain("unsafe");
    expect(headers.ContentSecurityPolicy.Override).toBe(true);
  });

  it("uses TLSv1.2_2021 at least with the given certificate and domain", () => {
    const d = distribution(td);
    expect(d.Aliases).toEqual(["backup.example.com"]);
    expect(d.ViewerCertificate).toMatchObject({
      AcmCertificateArn: CERT,
      MinimumProtocolVersion: "TLSv1.2_2021",
      SslSupportMethod: "sni-only",
    });
  });
});

describe("playback: the function's role", () => {
  it("reads the index, pending records, manifests and the sources' windows, writes only its cache of decoded key frames, and nothing else in the bucket", () => {
    const statements = policyOf(t, handlerRole(t));
    const s3 = statements.filter((s) => asList(s.Action).some((a: string) => a.startsWith("s3:")));
    const actions = new Set(s3.flatMap((s) => asList(s.Action)));
    expect([...actions].sort()).toEqual(["s3:GetObject", "s3:ListBucket", "s3:PutObject"]);
    // The one write: the JPEG cache ({from}-preview.jpg, thumbnails), read and written there only.
    const writes = s3.filter((s) => asList(s.Action).includes("s3:PutObject"));
    expect(writes.map((s) => asList(s.Action).sort())).toEqual([["s3:GetObject", "s3:PutObject"]]);
    const get = s3.find((s) => asList(s.Action).includes("s3:GetObject"))!;
    const [bucketId] = ofType(t, "AWS::S3::Bucket").find(
      ([, b]) => b.Properties.BucketName === "dvr-backup-test",
    )!;
    expect(keysOf(get.Resource, bucketId)).toEqual([
      "/flussonic/.backup/index/*",
      "/flussonic/.backup/records/*",
      "/flussonic/.backup/manifests/*",
      "/flussonic/s1/*",
      "/flussonic/s2/*",
    ]);
    const [bucketIdOfWrites] = ofType(t, "AWS::S3::Bucket").find(
      ([, b]) => b.Properties.BucketName === "dvr-backup-test",
    )!;
    expect(keysOf(writes[0]!.Resource, bucketIdOfWrites)).toEqual(["/flussonic/.backup/previews/*"]);
    expect(flat(statements.filter((s) => !writes.includes(s)))).not.toMatch(
      /s3:PutObject|s3:DeleteObject|catalog|control/,
    );
    expect(flat(statements)).not.toMatch(/s3:DeleteObject/);
    // With a KMS key: decrypt, and the data key of its one write (the JPEG cache).
    const kms = policyOf(td, handlerRole(td)).filter((s) => flat(s.Action).includes("kms:"));
    expect(kms.flatMap((s) => asList(s.Action))).toEqual(["kms:Decrypt", "kms:GenerateDataKey"]);
  });

  it("reads the token keys and the media signing key, read only", () => {
    const statements = policyOf(t, handlerRole(t)).filter((s) => flat(s.Action).includes("secretsmanager:"));
    const actions = new Set(statements.flatMap((s) => asList(s.Action)));
    expect([...actions].sort()).toEqual(["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]);
    const secrets = ofType(t, "AWS::SecretsManager::Secret").map(([id]) => id);
    expect(statements.flatMap((s) => asList(s.Resource).map(refId)).sort()).toEqual(secrets.sort());
    // The token keys are generated at deploy time, without commas (the list separator).
    const tokenSecret = ofType(t, "AWS::SecretsManager::Secret").find(([id]) => id.includes("TokenKeys"))![1];
    expect(tokenSecret.Properties.GenerateSecretString).toMatchObject({
      PasswordLength: 64,
      ExcludePunctuation: true,
    });
    expect(tokenSecret.Properties.SecretString).toBeUndefined();
    // A fixed name per bucket: `playback-token` finds it from the config.
    expect(tokenSecret.Properties.Name).toBe("flussonic-backup/dvr-backup-test/playback-token-keys");
  });

  it("hands the function the secrets' ARNs and the key pair id, never a key", () => {
    const fn = ofType(t, "AWS::Lambda::Function").find(([, r]) =>
      String(r.Properties.Description).includes("playback: playlists"),
    )![1];
    const env = fn.Properties.Environment.Variables;
    expect(refId(env.PLAYBACK_TOKEN_SECRET)).toContain("TokenKeys");
    expect(refId(env.MEDIA_SIGNING_SECRET)).toContain("MediaSigningKey");
    expect(refId(env.MEDIA_KEY_PAIR_ID)).toContain("MediaPublicKey");
    expect(flat(t.toJSON())).not.toContain("PRIVATE KEY");
  });
});

describe("playback: what reaches the function and the bucket, and what is cached", () => {
  it("puts the token (and the handler's other query strings) and the viewer's host in the function's cache key", () => {
    const d = distribution(t);
    const policy = resources(t)[refId(d.DefaultCacheBehavior.CachePolicyId)]!.Properties.CachePolicyConfig;
    const key = policy.ParametersInCacheKeyAndForwardedToOrigin;
    expect(key.QueryStringsConfig.QueryStringBehavior).toBe("whitelist");
    expect(key.QueryStringsConfig.QueryStrings).toContain("token");
    expect(key.QueryStringsConfig.QueryStrings).toContain("start");
    // Every query parameter the handler reads reaches it and keys the cache (event=true turns a
    // catch-up playlist into EVENT; period=mono makes one DASH period): read from the handler's source.
    const dir = join(import.meta.dirname, "../../functions/playback");
    const read = new Set<string>();
    for (const f of readdirSync(dir).filter((n) => n.endsWith(".ts"))) {
      const src = readFileSync(join(dir, f), "utf8");
      for (const m of src.matchAll(/\breq\.query\.(\w+)|querySeconds\(query, "(\w+)"/g))
        read.add((m[1] ?? m[2])!);
    }
    expect([...read].sort()).toEqual(expect.arrayContaining(["event", "period", "start", "token"]));
    for (const name of read) expect(key.QueryStringsConfig.QueryStrings, name).toContain(name);
    // The viewer's host, copied into x-playback-host at the edge (the signed media URLs name it).
    expect(key.HeadersConfig.HeaderBehavior).toBe("whitelist");
    expect(key.HeadersConfig.Headers).toEqual(["x-playback-host"]);
    expect(d.DefaultCacheBehavior.FunctionAssociations[0].EventType).toBe("viewer-request");
    const fnCode =
      resources(t)[refId(d.DefaultCacheBehavior.FunctionAssociations[0].FunctionARN)]!.Properties
        .FunctionCode;
    const copyHost = new Function(`${fnCode}; return handler;`)() as (e: unknown) => any;
    const request = {
      method: "GET",
      uri: "/s1/cam1/index-1-60.m3u8",
      headers: { host: { value: "d1.cloudfront.net" } },
    };
    expect(copyHost({ request }).headers["x-playback-host"].value).toBe("d1.cloudfront.net");
    expect(policy.DefaultTTL).toBe(0);
    // No origin request policy: nothing beyond the cache key (no Host: the function URL's own).
    expect(d.DefaultCacheBehavior.OriginRequestPolicyId).toBeUndefined();
  });

  it("serves media by key only (one cache entry per window for every viewer), behind the stack's key group, with Range CORS", () => {
    const media = behaviour(t, "/_media/*");
    // Managed CachingOptimized: no query string (the signature is checked at the edge), no header.
    expect(media.CachePolicyId).toBe("658327ea-f89d-4fab-a63d-7e88639e58f6");
    expect(media.OriginRequestPolicyId).toBeUndefined();
    expect(media.AllowedMethods).toEqual(["GET", "HEAD", "OPTIONS"]);
    expect(media.CachedMethods).toEqual(["GET", "HEAD"]);
    expect(refId(media.TrustedKeyGroups[0])).toContain("MediaKeyGroup");
    expect(media.FunctionAssociations[0].EventType).toBe("viewer-request");
    const fnCode = resources(t)[refId(media.FunctionAssociations[0].FunctionARN)]!.Properties.FunctionCode;
    // The viewer-request function as CloudFront runs it: "/_media" cut off (the rest is the S3
    // key, as percent-encoded in the URL), a CORS preflight answered at the edge.
    const viewerRequest = new Function(`${fnCode}; return handler;`)() as (e: unknown) => any;
    const uri = "/_media/flussonic/s1/cam%252F1/2026-12-01/120000Z-600s.mp4";
    expect(viewerRequest({ request: { method: "GET", uri, headers: {} } }).uri).toBe(
      "/flussonic/s1/cam%252F1/2026-12-01/120000Z-600s.mp4",
    );
    const preflight = viewerRequest({ request: { method: "OPTIONS", uri, headers: {} } });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers["access-control-allow-headers"].value).toBe("Range");
    expect(preflight.headers["access-control-allow-origin"].value).toBe("*");
    const headers =
      resources(t)[refId(media.ResponseHeadersPolicyId)]!.Properties.ResponseHeadersPolicyConfig;
    expect(headers.CorsConfig.AccessControlAllowHeaders.Items).toEqual(["Range"]);
    expect(headers.CorsConfig.AccessControlExposeHeaders.Items).toEqual(
      expect.arrayContaining(["Content-Range", "Content-Length"]),
    );
    // The key group's public key comes from the key pair made at deploy time.
    const [, pub] = one(t, "AWS::CloudFront::PublicKey");
    expect(flat(pub.Properties.PublicKeyConfig.EncodedKey)).toContain("SigningKeyPair");
  });
});

describe("playback: alarms and dashboard", () => {
  it("alarms on function errors and on the distribution's 5xx rate (where CloudFront's metrics are), to the alarm topic", () => {
    const topic = one(t, "AWS::SNS::Topic")[0];
    const alarms = ofType(t, "AWS::CloudWatch::Alarm").filter(([, a]) =>
      String(a.Properties.AlarmName).includes("playback"),
    );
    expect(alarms.map(([, a]) => a.Properties.AlarmName).sort()).toEqual([
      "flussonic-backup-playback-5xx",
      "flussonic-backup-playback-errors",
    ]);
    for (const [, a] of alarms) expect(a.Properties.AlarmActions.map(refId)).toEqual([topic]);
    const [, rate] = alarms.find(([, a]) => a.Properties.AlarmName.endsWith("5xx"))!;
    expect(rate.Properties).toMatchObject({ Namespace: "AWS/CloudFront", MetricName: "5xxErrorRate" });
    expect(flat(t.toJSON().Conditions[rate.Condition!])).toContain("us-east-1");
    // A stack bound to a region: the alarm where CloudFront's metrics are, none elsewhere.
    const names = (region: string) =>
      ofType(Template.fromStack(stackFor(config, region)), "AWS::CloudWatch::Alarm")
        .filter(([, a]) => String(a.Properties.AlarmName).includes("playback"))
        .map(([, a]) => [a.Properties.AlarmName, a.Condition]);
    expect(names("us-east-1")).toEqual([
      ["flussonic-backup-playback-errors", undefined],
      ["flussonic-backup-playback-5xx", undefined],
    ]);
    expect(names("eu-west-1")).toEqual([["flussonic-backup-playback-errors", undefined]]);
    const dashboard = flat(one(t, "AWS::CloudWatch::Dashboard")[1].Properties.DashboardBody);
    for (const title of [
      "playback: requests",
      "playback: bytes out",
      "playback: cache hit ratio",
      "playback: errors",
    ]) {
      expect(dashboard).toContain(title);
    }
  });
});

describe("playback cannot starve the copiers", () => {
  it("reserves the playback function's concurrency (default 10, configurable)", () => {
    const [, handler] = ofType(t, "AWS::Lambda::Function").find(([, f]) =>
      String(f.Properties.Description).includes("playback: playlists"),
    )!;
    expect(handler.Properties.ReservedConcurrentExecutions).toBe(10);
    const tuned = Template.fromStack(
      stackFor({ ...config, deployment: { playback: { reservedConcurrency: 25 } } }),
    );
    const [, h2] = ofType(tuned, "AWS::Lambda::Function").find(([, f]) =>
      String(f.Properties.Description).includes("playback: playlists"),
    )!;
    expect(h2.Properties.ReservedConcurrentExecutions).toBe(25);
  });

  it("adds a WAF rate-based rule per viewer IP when asked, attached to the distribution, none by default", () => {
    expect(ofType(t, "AWS::WAFv2::WebACL")).toHaveLength(0);
    const limited = Template.fromStack(
      stackFor({ ...config, deployment: { playback: { rateLimitPer5Minutes: 600 } } }, "us-east-1"),
    );
    const [aclId, acl] = one(limited, "AWS::WAFv2::WebACL");
    expect(acl.Properties).toMatchObject({ Scope: "CLOUDFRONT", DefaultAction: { Allow: {} } });
    expect(acl.Properties.Rules).toEqual([
      expect.objectContaining({
        Action: { Block: {} },
        Statement: { RateBasedStatement: { Limit: 600, AggregateKeyType: "IP" } },
      }),
    ]);
    expect(flat(distribution(limited).WebACLId)).toContain(aclId);
    // CloudFront web ACLs exist only in us-east-1: elsewhere the synth says so.
    expect(() =>
      stackFor({ ...config, deployment: { playback: { rateLimitPer5Minutes: 600 } } }, "eu-west-1"),
    ).toThrow(/deployment\.playback\.rateLimitPer5Minutes: .*us-east-1/);
  });
});

describe("playback: who watched what", () => {
  it("delivers CloudFront standard logs (v2) into the log bucket under cloudfront/, with their own expiry", () => {
    const [sourceId, source] = one(t, "AWS::Logs::DeliverySource");
    expect(source.Properties.LogType).toBe("ACCESS_LOGS");
    expect(flat(source.Properties.ResourceArn)).toContain(one(t, "AWS::CloudFront::Distribution")[0]);
    const [destId, dest] = one(t, "AWS::Logs::DeliveryDestination");
    const logBucket = ofType(t, "AWS::S3::Bucket").find(
      ([, b]) => b.Properties.BucketName !== "dvr-backup-test",
    )!;
    expect(flat(dest.Properties.DestinationResourceArn)).toContain(logBucket[0]);
    expect(flat(dest.Properties.DestinationResourceArn)).toContain("/cloudfront");
    const [, delivery] = one(t, "AWS::Logs::Delivery");
    expect(flat(delivery.Properties.DeliverySourceName)).toContain(sourceId);
    expect(flat(delivery.Properties.DeliveryDestinationArn)).toContain(destId);
    // No ACLs: the log bucket stays bucket-owner-enforced; the log service writes by bucket policy.
    expect(logBucket[1].Properties.OwnershipControls).toEqual({
      Rules: [{ ObjectOwnership: "BucketOwnerEnforced" }],
    });
    const policies = ofType(t, "AWS::S3::BucketPolicy").filter(
      ([, p]) => refId(p.Properties.Bucket) === logBucket[0],
    );
    expect(flat(policies)).toContain("delivery.logs.amazonaws.com");
    expect(logBucket[1].Properties.LifecycleConfiguration.Rules).toContainEqual(
      expect.objectContaining({ Id: "expire-cloudfront-logs", Prefix: "cloudfront/", ExpirationInDays: 365 }),
    );
    // Deliveries of CloudFront logs are made in us-east-1: the stack has them there, not elsewhere.
    expect(ofType(Template.fromStack(stackFor(config, "eu-west-1")), "AWS::Logs::Delivery")).toHaveLength(0);
    expect(ofType(Template.fromStack(stackFor(config, "us-east-1")), "AWS::Logs::Delivery")).toHaveLength(1);
  });
});

describe("playback: cdk-nag", () => {
  const errorsOf = (s: BackupStack) =>
    new AwsSolutionsChecks()
      .validateScope(s)
      .violations.filter((v) => v.severity === "error")
      .map((v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.resourceLogicalId).join(", ")}`);

  it("finds no error with playback, with and without a certificate (every acknowledgement has its reason)", () => {
    expect(errorsOf(stack)).toEqual([]);
    expect(errorsOf(withDomain)).toEqual([]);
  });
});

describe("playback with deployment.playback.upstream: the Flussonic server first, the function when it fails", () => {
  const upstreamConfig = { ...config, deployment: { playback: { upstream: "https://s1.example:8443" } } };
  const tu = Template.fromStack(stackFor(upstreamConfig));

  it("the default behaviour targets an origin group: the server (HTTPS, its port, one 2 s connection attempt) then the function on 404 and 5xx; the function knows the server's source", () => {
    const d = distribution(tu);
    const groups = d.OriginGroups.Items as Record<string, any>[];
    expect(groups).toHaveLength(1);
    const group = groups[0]!;
    expect(d.DefaultCacheBehavior.TargetOriginId).toBe(group.Id);
    expect([...group.FailoverCriteria.StatusCodes.Items].sort()).toEqual([404, 500, 502, 503, 504]);
    const [primary, secondary] = (group.Members.Items as { OriginId: string }[]).map(
      (m) => (d.Origins as Record<string, any>[]).find((o) => o.Id === m.OriginId)!,
    );
    expect(primary!.DomainName).toBe("s1.example");
    expect(primary!.CustomOriginConfig).toMatchObject({
      OriginProtocolPolicy: "https-only",
      HTTPSPort: 8443,
    });
    expect([primary!.ConnectionAttempts, primary!.ConnectionTimeout]).toEqual([1, 2]);
    expect(flat(secondary!.DomainName)).toContain("FunctionUrl");
    const fn = ofType(tu, "AWS::Lambda::Function").find(([, r]) =>
      String(r.Properties.Description).includes("playback: playlists"),
    )![1];
    expect(fn.Properties.Environment.Variables.PLAYBACK_UPSTREAM_SOURCE).toBe("s1");
    // The page's listing and the page itself stay with the function.
    for (const p of ["/_api/*", "/index.html", "/_assets/*"]) {
      expect(flat(originOf(tu, behaviour(tu, p)).DomainName), p).toContain("FunctionUrl");
    }
  });

  it("without upstream nothing changes: no origin group, no upstream variable", () => {
    expect(distribution(t).OriginGroups).toBeUndefined();
    expect(flat(t.toJSON())).not.toContain("PLAYBACK_UPSTREAM_SOURCE");
  });

  it("an upstream that is no configured source's address is a config error naming the field", () => {
    expect(() =>
      stackFor({ ...config, deployment: { playback: { upstream: "https://other.example" } } }),
    ).toThrow(
      /deployment\.playback\.upstream: https:\/\/other\.example is not the address of a configured source \(sources: s1, s2\)/,
    );
  });

  it("cdk-nag finds no error", () => {
    const errors = new AwsSolutionsChecks()
      .validateScope(stackFor(upstreamConfig))
      .violations.filter((v) => v.severity === "error")
      .map((v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.resourceLogicalId).join(", ")}`);
    expect(errors).toEqual([]);
  });
});
