/**
 * Playback in AWS (`"deployment": {"playback": {}}`): the playback handler as a Lambda function
 * behind a CloudFront distribution, with no server to run and nothing billed while nobody watches.
 *
 *   viewer ──HTTPS──> CloudFront ─┬─ default, /_assets/* ──OAC (SigV4)──> function URL (IAM auth)
 *                                 └─ /_media/*  (signed URLs: the stack's key group)
 *                                        ──OAC──> the backup bucket, archive windows only
 *
 * - The function answers the playlists, JSON and the page (functions/lambda/playback.ts). Its
 *   function URL takes IAM-signed requests only: CloudFront's origin access control signs them,
 *   nobody else can call it. Cache key: the path and the query strings the handler reads (token
 *   included: a cached answer is served only to the same token, see the trade-offs in docs/playback.md).
 * - Media bytes come from the bucket through an origin access control, with `Range` (CloudFront
 *   passes ranges of S3 objects through and caches the object), and CORS that allows `Range` and
 *   exposes `Content-Range`. The bucket policy lets CloudFront (this distribution only) read the
 *   archive windows of the configured sources (`{prefix}{source}/*`), not the backup's state
 *   (`{prefix}.backup/`). The behaviour trusts only this stack's key group: a media URL works only
 *   as the function signed it (CloudFront signed URL, custom policy per stream, with an expiry).
 * - Secrets: the token keys (generated at deploy, "current,previous" to rotate) and the private key
 *   of the CloudFront key pair (generated at deploy by a custom resource, never in the template).
 * - TLS only: HTTPS only (no first http:// request carries a token in clear); with a certificate
 *   the minimum is TLSv1.2_2021. No Referer (tokens are in URLs), no framing, a strict CSP.
 * - Playback cannot starve the copiers: reserved concurrency, an optional WAF rate-based rule.
 * - Who watched what: CloudFront standard logs v2 into the log bucket; the function logs each call.
 */
import {
  Annotations,
  ArnFormat,
  CfnCondition,
  CfnOutput,
  CustomResource,
  Duration,
  Fn,
  Stack,
  Token,
  Validations,
} from "aws-cdk-lib";
import * as acm from "aws-cdk-lib/aws-certificatemanager";
import * as cloudfront from "aws-cdk-lib/aws-cloudfront";
import * as origins from "aws-cdk-lib/aws-cloudfront-origins";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import * as s3 from "aws-cdk-lib/aws-s3";
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import * as wafv2 from "aws-cdk-lib/aws-wafv2";
import { Construct } from "constructs";
import { type BackupConfig, ConfigError, type DeploymentConfig } from "../functions/config/config.ts";
import { encodeKeySegment } from "../functions/domain/names.ts";
import { playbackTokenSecretName } from "../functions/playback/deployed-secrets.ts";
import { PLAYBACK_HOST_HEADER } from "../functions/playback/media-url.ts";
import { type BackupBucket, s3ViaService } from "./backup-bucket.ts";
import type { FunctionCode } from "./backup-function.ts";
import type { BackupMonitoring } from "./backup-monitoring.ts";
import { PlaybackFunction } from "./playback-function.ts";

export type PlaybackSettings = NonNullable<DeploymentConfig["playback"]>;

/** Query strings the handler and the page read: they make the cache key (and reach the function). */
export const PLAYBACK_QUERY_STRINGS = [
  "token",
  "start",
  "from",
  "to",
  "closed_at_gte",
  "opened_at_lte",
  "event",
  "period",
  "thumbnails",
];

const PERIOD = Duration.minutes(5);

/** Content-Security-Policy of the player page (functions/playback/page/) and every answer. */
export const PLAYER_PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/**
 * The viewer-request function of `/_media/*` (CloudFront Functions, JavaScript 2.0): a preflight
 * is answered with the CORS headers; a request with a query parameter other than the signed URL's
 * three (`Policy`, `Signature`, `Key-Pair-Id`), or whose path holds a `.`/`..` segment (also
 * percent-encoded), an empty segment, an encoded slash or a backslash, is refused (400): nothing
 * the function signs has them, and they could reach another stream's folder or change what S3
 * answers. Any other request has `/_media` cut from its path, leaving the S3 key.
 */
export const MEDIA_REQUEST_FUNCTION = `function handler(event) {
  var r = event.request;
  if (r.method === "OPTIONS") {
    return {
      statusCode: 204,
      statusDescription: "No Content",
      headers: {
        "access-control-allow-origin": { value: "*" },
        "access-control-allow-methods": { value: "GET, HEAD, OPTIONS" },
        "access-control-allow-headers": { value: "Range" },
        "access-control-max-age": { value: "600" }
      }
    };
  }
  var signed = { "Policy": true, "Signature": true, "Key-Pair-Id": true };
  for (var name in r.querystring) {
    if (signed[name] !== true) return { statusCode: 400, statusDescription: "Bad Request" };
  }
  var uri = r.uri;
  if (/%2f|%5c|\\\\|\\/\\/|\\/(\\.|%2e){1,2}(\\/|$)/i.test(uri) || uri.indexOf("/_media/") !== 0) {
    return { statusCode: 400, statusDescription: "Bad Request" };
  }
  r.uri = uri.substring(7);
  return r;
}`;

/**
 * The viewer-request function of the playback function's behaviour: the viewer's `Host` (the
 * distribution's domain or an alias, the only names CloudFront routes here) copied into
 * `x-playback-host`, overwriting whatever the viewer sent, since the origin request to the function
 * URL replaces `Host`. The function anchors the media URLs' policies to it (media-url.ts).
 */
export const PLAYBACK_REQUEST_FUNCTION = `function handler(event) {
  var r = event.request;
  var host = r.headers.host ? r.headers.host.value : "";
  r.headers["${PLAYBACK_HOST_HEADER}"] = { value: host };
  return r;
}`;

export interface PlaybackProps {
  config: BackupConfig;
  settings: PlaybackSettings;
  backupBucket: BackupBucket;
  /** BACKUP_CONFIG of the functions (the runtime config, no deployment options). */
  runtimeConfig: string;
  monitoring: BackupMonitoring;
  code: FunctionCode;
}

export class PlaybackDistribution extends Construct {
  readonly handler: PlaybackFunction;
  readonly tokenSecret: secretsmanager.Secret;
  readonly signingSecret: secretsmanager.Secret;
  readonly distribution: cloudfront.Distribution;
  readonly functionUrl: lambda.FunctionUrl;
  /** `https://<domain>`: the playback base URL. */
  readonly url: string;
  private readonly additionalMetrics: boolean;

  constructor(scope: Construct, id: string, props: PlaybackProps) {
    super(scope, id);
    const { config, settings } = props;
    const bucket = props.backupBucket.bucket;
    this.additionalMetrics = settings.additionalMetrics;

    // Token keys: one random key at deploy; rotate by storing "new,old" (docs/playback.md).
    this.tokenSecret = new secretsmanager.Secret(this, "TokenKeys", {
      // A fixed name: `playback-token` finds it from the config's bucket.
      secretName: playbackTokenSecretName(config.bucket),
      description:
        "flussonic-backup playback token keys: comma-separated, current first (keep the previous one while its tokens live)",
      generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
    });
    Validations.of(this.tokenSecret).acknowledge({
      id: "AwsSolutions-SMG4",
      reason:
        "The token keys are rotated by the operator (README: put the new key first, keep the previous one while tokens it signed live): automatic rotation would cut off every viewer's token at once.",
    });
    // The private key of the CloudFront key pair that signs media URLs: filled at deploy time.
    this.signingSecret = new secretsmanager.Secret(this, "MediaSigningKey", {
      description:
        "flussonic-backup playback: private key (PEM) of the CloudFront key pair that signs media URLs; made at deploy time",
    });
    Validations.of(this.signingSecret).acknowledge({
      id: "AwsSolutions-SMG4",
      reason:
        "A CloudFront key pair is rotated by adding a new public key to the key group, not by Secrets Manager rotation; the custom resource makes it once (README).",
    });

    const keyMaker = new PlaybackFunction(this, "SigningKeyMaker", {
      entry: "playback-signing-key",
      description: "flussonic-backup playback: makes the CloudFront key pair at deploy time",
      memorySize: 256,
      timeout: Duration.minutes(1),
      environment: {},
      code: props.code,
    });
    // It reads the secret (a key pair already made is kept) and stores the private key: nothing else
    // (grantRead/grantWrite would add DescribeSecret, UpdateSecret and UpdateSecretVersionStage).
    keyMaker.role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"],
        resources: [this.signingSecret.secretArn],
      }),
    );
    const keyPair = new CustomResource(this, "SigningKeyPair", {
      serviceToken: keyMaker.function.functionArn,
      resourceType: "Custom::PlaybackSigningKey",
      properties: { SecretId: this.signingSecret.secretArn },
    });
    const publicKey = new cloudfront.PublicKey(this, "MediaPublicKey", {
      comment: "flussonic-backup playback: verifies media URLs signed by the playback function",
      encodedKey: keyPair.getAttString("PublicKey"),
    });
    const keyGroup = new cloudfront.KeyGroup(this, "MediaKeyGroup", {
      comment: "flussonic-backup playback media URLs",
      items: [publicKey],
    });

    this.handler = new PlaybackFunction(this, "Handler", {
      entry: "playback",
      description: "flussonic-backup playback: playlists and JSON of the backup, behind CloudFront",
      // Playlists of a day of one-second fragments parse a few MB of index JSON; 512 MB gives the
      // CPU share that keeps that in tens of milliseconds.
      memorySize: 512,
      timeout: Duration.seconds(30),
      // Requests beyond it are throttled (CloudFront answers 5xx) rather than taking the account's
      // concurrency from the copiers: random tokens miss the cache and each runs the function.
      reservedConcurrency: settings.reservedConcurrency,
      environment: {
        BACKUP_CONFIG: props.runtimeConfig,
        PLAYBACK_TOKEN_SECRET: this.tokenSecret.secretArn,
        MEDIA_SIGNING_SECRET: this.signingSecret.secretArn,
        MEDIA_KEY_PAIR_ID: publicKey.publicKeyId,
        MEDIA_URL_TTL_SECONDS: String(settings.mediaUrlTtlSeconds),
        ...(settings.upstream ? { PLAYBACK_UPSTREAM_SOURCE: upstreamSource(config, settings.upstream) } : {}),
      },
      code: props.code,
      // x86_64: `{from}-preview.jpg` and thumbnails run the static ffmpeg of the npm package
      // @ffmpeg-installer/linux-x64 (an optional dependency, copied when installed: on a Linux
      // x86-64 machine that deploys). It costs ~25% more per GB-second than arm64, on a function
      // that answers in milliseconds; no binary (another deploying platform): JPEGs answer 501.
      architecture: "x86_64",
      files: {
        dir: "playback-page",
        paths: [
          "functions/playback/page/index.html",
          "functions/playback/page/page.js",
          "functions/playback/page/page.css",
          "node_modules/hls.js/dist/hls.min.js",
        ],
        optional: ["node_modules/@ffmpeg-installer/linux-x64/ffmpeg"],
      },
    });
    this.grantReads(config, props.backupBucket);

    // IAM auth: only requests signed by CloudFront's origin access control reach the function.
    this.functionUrl = this.handler.function.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.AWS_IAM });
    const functionOrigin = origins.FunctionUrlOrigin.withOriginAccessControl(this.functionUrl, {
      readTimeout: Duration.seconds(30),
    });
    // The bucket is imported into the origin so that the origin adds no bucket-wide grant: the
    // statement below grants this distribution the archive windows only.
    const mediaBucket = s3.Bucket.fromBucketAttributes(this, "MediaBucket", {
      bucketArn: bucket.bucketArn,
      bucketName: bucket.bucketName,
      bucketRegionalDomainName: bucket.bucketRegionalDomainName,
    });
    const mediaOrigin = origins.S3BucketOrigin.withOriginAccessControl(mediaBucket, {
      originAccessLevels: [cloudfront.AccessLevel.READ],
    });

    const cors = new cloudfront.ResponseHeadersPolicy(this, "Headers", {
      comment: "flussonic-backup playback: CORS for players on other origins (Range), HSTS",
      corsBehavior: {
        accessControlAllowOrigins: ["*"],
        accessControlAllowMethods: ["GET", "HEAD", "OPTIONS"],
        accessControlAllowHeaders: ["Range"],
        accessControlExposeHeaders: ["Content-Range", "Content-Length", "Accept-Ranges"],
        accessControlAllowCredentials: false,
        accessControlMaxAge: Duration.minutes(10),
        originOverride: true,
      },
      securityHeadersBehavior: {
        strictTransportSecurity: {
          accessControlMaxAge: Duration.days(365),
          includeSubdomains: false,
          override: true,
        },
        contentTypeOptions: { override: true },
        // Tokens ride in URLs: no Referer may carry one to another site.
        referrerPolicy: { referrerPolicy: cloudfront.HeadersReferrerPolicy.NO_REFERRER, override: true },
        frameOptions: { frameOption: cloudfront.HeadersFrameOption.DENY, override: true },
        // The player page: its own scripts and styles (/_assets/), its API and media on this origin,
        // and hls.js's blob: media source and worker; nothing inline, nothing from elsewhere.
        contentSecurityPolicy: { contentSecurityPolicy: PLAYER_PAGE_CSP, override: true },
      },
    });
    const playbackCache = new cloudfront.CachePolicy(this, "PlaybackCache", {
      // The path and the query strings the handler reads (token included); times from the function.
      comment: "flussonic-backup playback: path + token and the other query strings the handler reads",
      minTtl: Duration.seconds(0),
      defaultTtl: Duration.seconds(0),
      maxTtl: Duration.hours(1),
      queryStringBehavior: cloudfront.CacheQueryStringBehavior.allowList(...PLAYBACK_QUERY_STRINGS),
      // The viewer's host (set by PLAYBACK_REQUEST_FUNCTION): the media URLs' policies name it, so
      // an answer made for the alias is not served to a viewer of the CloudFront domain.
      headerBehavior: cloudfront.CacheHeaderBehavior.allowList(PLAYBACK_HOST_HEADER),
      cookieBehavior: cloudfront.CacheCookieBehavior.none(),
      enableAcceptEncodingGzip: true,
      enableAcceptEncodingBrotli: true,
    });
    // `/_media/{key}` → `{key}`: the media URL's path is the S3 key under the behaviour's prefix.
    // A CORS preflight (a player on another origin sending `Range`) goes to the same signed URL and
    // is answered here, at the edge: S3 answers no preflight without a bucket CORS rule.
    const mediaRequest = new cloudfront.Function(this, "MediaPath", {
      comment: "flussonic-backup playback: /_media/{key} -> /{key}; CORS preflight",
      runtime: cloudfront.FunctionRuntime.JS_2_0,
      code: cloudfront.FunctionCode.fromInline(MEDIA_REQUEST_FUNCTION),
    });

    const playbackRequest = new cloudfront.Function(this, "PlaybackHost", {
      comment:
        "flussonic-backup playback: the viewer's Host into x-playback-host (signed media URLs name it)",
      runtime: cloudfront.FunctionRuntime.JS_2_0,
      code: cloudfront.FunctionCode.fromInline(PLAYBACK_REQUEST_FUNCTION),
    });

    const certificate = settings.certificateArn
      ? acm.Certificate.fromCertificateArn(this, "Certificate", settings.certificateArn)
      : undefined;
    const webAcl = settings.rateLimitPer5Minutes ? this.rateLimit(settings.rateLimitPer5Minutes) : undefined;
    this.distribution = new cloudfront.Distribution(this, "Distribution", {
      comment: "flussonic-backup playback",
      ...(webAcl ? { webAclId: webAcl.attrArn } : {}),
      defaultBehavior: {
        origin: settings.upstream ? this.failoverOrigin(settings.upstream, functionOrigin) : functionOrigin,
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
        allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
        cachePolicy: playbackCache,
        responseHeadersPolicy: cors,
        compress: true,
        functionAssociations: [
          { function: playbackRequest, eventType: cloudfront.FunctionEventType.VIEWER_REQUEST },
        ],
      },
      additionalBehaviors: {
        "/_media/*": {
          origin: mediaOrigin,
          viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
          allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD_OPTIONS,
          // Preflights are answered by the function, never cached.
          cachedMethods: cloudfront.CachedMethods.CACHE_GET_HEAD,
          // The key only (no query string, no header): every viewer shares the cached windows; the
          // signed URL's query string is checked at the edge and not sent to S3.
          cachePolicy: cloudfront.CachePolicy.CACHING_OPTIMIZED,
          responseHeadersPolicy: cors,
          trustedKeyGroups: [keyGroup],
          functionAssociations: [
            { function: mediaRequest, eventType: cloudfront.FunctionEventType.VIEWER_REQUEST },
          ],
          compress: false,
        },
        // With an upstream, the page's listing and the page itself come from the function (the
        // server answers its own `/`): open the backup's page at /index.html.
        ...(settings.upstream
          ? Object.fromEntries(
              ["/_api/*", "/index.html"].map((pattern) => [
                pattern,
                {
                  origin: functionOrigin,
                  viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                  allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                  cachePolicy: playbackCache,
                  responseHeadersPolicy: cors,
                  compress: true,
                  functionAssociations: [
                    { function: playbackRequest, eventType: cloudfront.FunctionEventType.VIEWER_REQUEST },
                  ],
                },
              ]),
            )
          : {}),
        "/_assets/*": {
          origin: functionOrigin,
          viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
          allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
          cachePolicy: cloudfront.CachePolicy.CACHING_OPTIMIZED,
          responseHeadersPolicy: cors,
          compress: true,
        },
      },
      // Errors are not kept at the edge (CloudFront keeps them 10 s by default): a playlist that
      // was not there yet (425, 404 before a window lands) is asked again at once.
      errorResponses: [400, 403, 404, 416].map((httpStatus) => ({ httpStatus, ttl: Duration.seconds(0) })),
      priceClass: settings.priceClass as cloudfront.PriceClass,
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      enableIpv6: true,
      ...(certificate && settings.domainName
        ? {
            domainNames: [settings.domainName],
            certificate,
            minimumProtocolVersion: cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
            sslSupportMethod: cloudfront.SSLMethod.SNI,
          }
        : {}),
    });
    this.acknowledgeDistribution(Boolean(certificate), Boolean(webAcl));
    this.standardLogs(props.backupBucket);
    Annotations.of(this.distribution).acknowledgeWarning(
      "@aws-cdk/aws-cloudfront-origins:updateImportedBucketPolicyOac",
      "The bucket is imported into the origin on purpose: the statement below grants this distribution the archive windows only, not the whole bucket.",
    );

    // CloudFront (this distribution) reads the archive windows of the configured sources only.
    bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: "PlaybackMediaThroughCloudFront",
        principals: [new iam.ServicePrincipal("cloudfront.amazonaws.com")],
        actions: ["s3:GetObject"],
        resources: config.sources.map((s) =>
          bucket.arnForObjects(`${config.prefix}${encodeKeySegment(s.name)}/*`),
        ),
        conditions: { StringEquals: { "AWS:SourceArn": this.distributionArn() } },
      }),
    );

    this.url = `https://${settings.domainName ?? this.distribution.distributionDomainName}`;
    new CfnOutput(Stack.of(this), "PlaybackUrl", {
      description:
        "Playback: open <this>/?token=<token> (npx flussonic-backup playback-token --config <file> --source <source>)",
      value: this.url,
    });
    new CfnOutput(Stack.of(this), "PlaybackDistributionDomain", {
      description: "The CloudFront domain (point a CNAME of domainName here)",
      value: this.distribution.distributionDomainName,
    });
    new CfnOutput(Stack.of(this), "PlaybackTokenSecretArn", {
      description: "Secrets Manager secret with the playback token keys (playback-token reads it)",
      value: this.tokenSecret.secretArn,
    });
    this.monitor(props.monitoring);
  }

  /**
   * `deployment.playback.upstream`: an origin group whose primary is the Flussonic server and whose
   * secondary is the playback function. CloudFront tries the server (one connection attempt of 2 s)
   * and asks the function when it cannot connect, or the server answers 5xx, or 404 (a range past
   * the server's retention, or the backup's own `/{source}/…` URLs, which the server does not know).
   */
  private failoverOrigin(upstream: string, functionOrigin: cloudfront.IOrigin): cloudfront.IOrigin {
    const url = new URL(upstream);
    const https = url.protocol === "https:";
    const port = url.port ? Number(url.port) : undefined;
    const server = new origins.HttpOrigin(url.hostname, {
      protocolPolicy: https
        ? cloudfront.OriginProtocolPolicy.HTTPS_ONLY
        : cloudfront.OriginProtocolPolicy.HTTP_ONLY,
      ...(port ? (https ? { httpsPort: port } : { httpPort: port }) : {}),
      connectionAttempts: 1,
      connectionTimeout: Duration.seconds(2),
      readTimeout: Duration.seconds(30),
    });
    return new origins.OriginGroup({
      primaryOrigin: server,
      fallbackOrigin: functionOrigin,
      fallbackStatusCodes: [404, 500, 502, 503, 504],
    });
  }

  /** The condition "deployed in us-east-1", for a stack whose region is known only at deploy time. */
  private inUsEast1(): CfnCondition {
    const existing = this.node.tryFindChild("InUsEast1") as CfnCondition | undefined;
    return (
      existing ??
      new CfnCondition(this, "InUsEast1", {
        expression: Fn.conditionEquals(Stack.of(this).region, "us-east-1"),
      })
    );
  }

  /**
   * A WAF web ACL with one rate-based rule: a viewer IP that sends more than `limit` requests in 5
   * minutes is blocked until its rate falls. CloudFront web ACLs exist only in us-east-1.
   */
  private rateLimit(limit: number): wafv2.CfnWebACL {
    const region = Stack.of(this).region;
    if (!Token.isUnresolved(region) && region !== "us-east-1") {
      throw new ConfigError([
        `deployment.playback.rateLimitPer5Minutes: a CloudFront web ACL can only be made in us-east-1, and this stack deploys to ${region}: deploy the stack to us-east-1, or leave the limit out (the function's reserved concurrency still caps it)`,
      ]);
    }
    const metric = (name: string) => ({
      cloudWatchMetricsEnabled: true,
      metricName: name,
      sampledRequestsEnabled: true,
    });
    return new wafv2.CfnWebACL(this, "RateLimit", {
      scope: "CLOUDFRONT",
      description: "flussonic-backup playback: blocks a viewer IP above the request rate",
      defaultAction: { allow: {} },
      visibilityConfig: metric("flussonic-backup-playback"),
      rules: [
        {
          name: "rate-per-ip",
          priority: 0,
          action: { block: {} },
          statement: { rateBasedStatement: { limit, aggregateKeyType: "IP" } },
          visibilityConfig: metric("flussonic-backup-playback-rate"),
        },
      ],
    });
  }

  /**
   * CloudFront standard logging v2 (no ACLs): every viewer request, cached or not, into the log
   * bucket under `cloudfront/`, kept 365 days. CloudFront's log deliveries are made in us-east-1:
   * the stack has them there (known at synth, or a condition on the deploy region).
   */
  private standardLogs(backupBucket: BackupBucket): void {
    const region = Stack.of(this).region;
    const known = !Token.isUnresolved(region);
    if (known && region !== "us-east-1") return;
    const logs_ = backupBucket.accessLogs;
    logs_.addLifecycleRule({
      id: "expire-cloudfront-logs",
      prefix: "cloudfront/",
      expiration: Duration.days(365),
    });
    const stack = Stack.of(this);
    const policy = logs_.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: "CloudFrontStandardLogsV2",
        principals: [new iam.ServicePrincipal("delivery.logs.amazonaws.com")],
        actions: ["s3:PutObject"],
        resources: [logs_.arnForObjects("cloudfront/*")],
        conditions: {
          StringEquals: { "aws:SourceAccount": stack.account },
          ArnLike: {
            "aws:SourceArn": stack.formatArn({
              service: "logs",
              resource: "delivery-source",
              resourceName: "*",
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          },
        },
      }),
    );
    const source = new logs.CfnDeliverySource(this, "AccessLogSource", {
      name: `${stack.stackName}-playback-cf`,
      logType: "ACCESS_LOGS",
      resourceArn: this.distributionArn(),
    });
    const destination = new logs.CfnDeliveryDestination(this, "AccessLogDestination", {
      name: `${stack.stackName}-playback-cf-s3`,
      destinationResourceArn: `${logs_.bucketArn}/cloudfront`,
    });
    const delivery = new logs.CfnDelivery(this, "AccessLogDelivery", {
      deliverySourceName: source.ref,
      deliveryDestinationArn: destination.attrArn,
    });
    delivery.addDependency(source);
    if (policy.policyDependable) delivery.node.addDependency(policy.policyDependable);
    if (!known) {
      for (const r of [source, destination, delivery]) r.cfnOptions.condition = this.inUsEast1();
    }
  }

  private distributionArn(): string {
    return Stack.of(this).formatArn({
      service: "cloudfront",
      region: "",
      resource: "distribution",
      resourceName: this.distribution.distributionId,
    });
  }

  /**
   * The function reads what playlists and the page need, and nothing else:
   * - `{prefix}.backup/index/` (the fragment index, one object per stream-day) and
   *   `{prefix}.backup/records/` (windows copied since the last planner run carry their index in
   *   their completion record);
   * - `{prefix}.backup/manifests/` (the page's coverage timeline, as `serve` draws it);
   * - the archive windows `{prefix}{source}/`: only `archive-{from}-{dur}.mp4` of a range that is
   *   not exactly one stored window reads them (ranged reads, joined into one MP4);
   * - ListBucket (S3 answers 404 for a missing key only to a caller that may list; the records of
   *   a stream are listed);
   * - the two secrets, read only.
   * - its one write: cached JPEGs under `.backup/previews/` (read and written);
   * No other write, no delete, no catalog, no control switch.
   */
  private grantReads(config: BackupConfig, backupBucket: BackupBucket): void {
    const bucket = backupBucket.bucket;
    const role = this.handler.role;
    const bucketLogicalId = Stack.of(this).getLogicalId(bucket.node.defaultChild as s3.CfnBucket);
    const prefixes = [
      `${config.prefix}.backup/index/`,
      `${config.prefix}.backup/records/`,
      `${config.prefix}.backup/manifests/`,
      ...config.sources.map((s) => `${config.prefix}${encodeKeySegment(s.name)}/`),
    ];
    for (const prefix of prefixes) {
      Validations.of(role).acknowledge({
        id: `AwsSolutions-IAM5[Resource::<${bucketLogicalId}.Arn>/${prefix}*]`,
        reason: `Keys under ${prefix} are created at run time (per stream and day); the playback function only reads them.`,
      });
    }
    role.addToPolicy(new iam.PolicyStatement({ actions: ["s3:ListBucket"], resources: [bucket.bucketArn] }));
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["s3:GetObject"],
        resources: prefixes.map((p) => bucket.arnForObjects(`${p}*`)),
      }),
    );
    // The one write: decoded key frames (`{from}-preview.jpg`, thumbnails), a cache of JPEGs
    // under its own prefix (keys.ts previewKey), read back by later requests.
    const previews = `${config.prefix}.backup/previews/`;
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${bucketLogicalId}.Arn>/${previews}*]`,
      reason: `Keys under ${previews} are created at run time (per stream, day and key frame); the playback function reads and writes only its cached JPEGs there.`,
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["s3:GetObject", "s3:PutObject"],
        resources: [bucket.arnForObjects(`${previews}*`)],
      }),
    );
    this.tokenSecret.grantRead(role);
    this.signingSecret.grantRead(role);
    const key = backupBucket.encryptionKey;
    if (key) {
      role.addToPolicy(
        new iam.PolicyStatement({
          // GenerateDataKey: writing a cached JPEG into a KMS-encrypted bucket.
          actions: ["kms:Decrypt", "kms:GenerateDataKey"],
          resources: [key.keyArn],
          conditions: { StringEquals: { "kms:ViaService": s3ViaService(this) } },
        }),
      );
    }
  }

  private acknowledgeDistribution(hasCertificate: boolean, hasWebAcl: boolean): void {
    const acks = [
      {
        id: "AwsSolutions-CFR1",
        reason:
          "Viewers need a playback token for every playlist and a signed URL for every media request; who may watch is decided by tokens, not by country.",
      },
      {
        id: "AwsSolutions-CFR3",
        reason:
          "The distribution logs through CloudFront standard logging v2 (AWS::Logs::Delivery into the log bucket under cloudfront/, made where CloudFront delivers logs, us-east-1), which needs no ACLs; cdk-nag checks only the legacy Logging property, which needs ACLs on the log bucket.",
      },
    ];
    if (!hasWebAcl) {
      acks.push({
        id: "AwsSolutions-CFR2",
        reason:
          "Off by default: every request needs a token or a signed URL, and the playback function's reserved concurrency caps what random tokens can cost; deployment.playback.rateLimitPer5Minutes adds a WAF rate-based rule (about 6 USD a month plus requests).",
      });
    }
    if (!hasCertificate) {
      acks.push({
        id: "AwsSolutions-CFR4",
        reason:
          "Without a certificate (deployment.playback.certificateArn) the distribution uses the *.cloudfront.net certificate, whose minimum protocol CloudFront fixes at TLSv1; with a certificate the minimum is TLSv1.2_2021. Viewers are redirected to HTTPS either way.",
      });
    }
    for (const a of acks) Validations.of(this.distribution).acknowledge(a);
  }

  private monitor(monitoring: BackupMonitoring): void {
    const fn = this.handler.function;
    monitoring.addAlarm(this, "FunctionErrors", {
      alarmName: "flussonic-backup-playback-errors",
      alarmDescription:
        "The playback function fails (viewers get 5xx): see its log group (an unreadable secret, no access to the index, a timeout)",
      metric: fn.metricErrors({ period: PERIOD, statistic: cloudwatch.Stats.SUM }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 2,
      datapointsToAlarm: 2,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const cf = (metricName: string, statistic: string) =>
      new cloudwatch.Metric({
        namespace: "AWS/CloudFront",
        metricName,
        dimensionsMap: { DistributionId: this.distribution.distributionId, Region: "Global" },
        period: PERIOD,
        statistic,
      });
    // CloudFront publishes its metrics in us-east-1 only, and an alarm watches metrics of its own
    // region: the 5xx alarm exists when the stack is deployed there (known at synth, or else a
    // CloudFormation condition on the region it is deployed to).
    const region = Stack.of(this).region;
    const known = !Token.isUnresolved(region);
    if (!known || region === "us-east-1") {
      const errorRate = monitoring.addAlarm(
        this,
        "Distribution5xx",
        {
          alarmName: "flussonic-backup-playback-5xx",
          alarmDescription:
            "More than 5% of playback requests got a 5xx from CloudFront (the function or the bucket origin fails)",
          metric: cf("5xxErrorRate", cloudwatch.Stats.AVERAGE),
          threshold: 5,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          evaluationPeriods: 3,
          datapointsToAlarm: 2,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        },
        known,
      );
      if (!known) {
        (errorRate.node.defaultChild as cloudwatch.CfnAlarm).cfnOptions.condition = this.inUsEast1();
      }
    }

    if (this.additionalMetrics) {
      new cloudfront.CfnMonitoringSubscription(this, "AdditionalMetrics", {
        distributionId: this.distribution.distributionId,
        monitoringSubscription: {
          realtimeMetricsSubscriptionConfig: { realtimeMetricsSubscriptionStatus: "Enabled" },
        },
      });
    }
    const global = (m: cloudwatch.Metric) => m.with({ region: "us-east-1" });
    monitoring.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: "playback: requests",
        left: [global(cf("Requests", cloudwatch.Stats.SUM))],
        right: [fn.metricInvocations({ period: PERIOD, statistic: cloudwatch.Stats.SUM })],
        width: 6,
      }),
      new cloudwatch.GraphWidget({
        title: "playback: bytes out",
        left: [global(cf("BytesDownloaded", cloudwatch.Stats.SUM))],
        width: 6,
      }),
      new cloudwatch.GraphWidget({
        title: this.additionalMetrics
          ? "playback: cache hit ratio (%)"
          : "playback: cache hit ratio (%) (set deployment.playback.additionalMetrics to collect it)",
        left: [global(cf("CacheHitRate", cloudwatch.Stats.AVERAGE))],
        width: 6,
      }),
      new cloudwatch.GraphWidget({
        title: "playback: errors",
        left: [
          global(cf("4xxErrorRate", cloudwatch.Stats.AVERAGE)),
          global(cf("5xxErrorRate", cloudwatch.Stats.AVERAGE)),
        ],
        right: [fn.metricErrors({ period: PERIOD, statistic: cloudwatch.Stats.SUM })],
        width: 6,
      }),
    );
  }
}

/** The configured source `upstream` is: the one with its host name, or the only source. */
export function upstreamSource(config: BackupConfig, upstream: string): string {
  // By host name: the playback port may differ from the address the backup reads the API at.
  const host = new URL(upstream).hostname;
  const matching = config.sources.filter((s) => {
    try {
      return new URL(s.url).hostname === host;
    } catch {
      return false;
    }
  });
  if (matching.length === 1) return matching[0]!.name;
  if (matching.length === 0 && config.sources.length === 1) return config.sources[0]!.name;
  throw new ConfigError([
    `deployment.playback.upstream: ${upstream} is ${matching.length === 0 ? "not the address of a configured source" : "the address of several configured sources"} (sources: ${config.sources.map((s) => s.name).join(", ")}); give the address of one source's server`,
  ]);
}
