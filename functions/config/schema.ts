/**
 * The config file's schema (zod): sources, streams, auth references, schedules, the deployment
 * options, and the types the rest of the code takes. Secrets are never in the file: it names
 * environment variables (local runtime) and Secrets Manager secrets (AWS).
 */
import { z } from "zod";
import { ALL_WINDOW_LENGTHS_SECONDS, ARCHIVE_FORMATS, WINDOW_LENGTHS_SECONDS } from "../domain/archive.ts";
import { HH_MM, isKnownTimeZone } from "../domain/bandwidth-schedule.ts";
import { SOURCE_NAME_RULE, sourceNameProblem, streamNameProblem } from "../domain/names.ts";
import { DEFAULT_MIN_WINDOW_SECONDS } from "../domain/windows.ts";
import { COPIER_TIMEOUT_SECONDS } from "./limits.ts";
import { inClear } from "./url.ts";

/** `minWindowSeconds` choices: the short lengths and the standard ones up to the default maximum. */
const MIN_WINDOW_CHOICES = ALL_WINDOW_LENGTHS_SECONDS.filter((n) => n <= 600);

/**
 * A queued window must start its copy this long before its lease ends (time to wait in the queue
 * and be received): the copier leaves a window whose lease ends before the copy could finish.
 */
export const LEASE_START_MARGIN_SECONDS = 300;

/** The shortest leaseSeconds for the Lambda copier (and the CLI's default --copy-timeout). */
const MIN_LEASE_SECONDS = COPIER_TIMEOUT_SECONDS + LEASE_START_MARGIN_SECONDS;

const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {
    error: "expected the name of an environment variable, like MY_PASSWORD",
  })
  .describe("Name of an environment variable that holds the secret (never the secret itself)");

/**
 * A Secrets Manager secret by name or ARN; its secret string is the password or token. The AWS
 * stack grants each function read access to exactly these secrets.
 */
const secretReference = z
  .string()
  .regex(
    /^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}|[A-Za-z0-9/_+=.@-]{1,512})$/,
    {
      error: "expected the name or ARN of a Secrets Manager secret, like flussonic/streamer1",
    },
  )
  .describe(
    "Name or ARN of a Secrets Manager secret whose secret string is the secret (read in AWS; never the secret itself)",
  );

const authSchema = z
  .discriminatedUnion(
    "type",
    [
      z.strictObject({ type: z.literal("none") }),
      z.strictObject({
        type: z.literal("basic"),
        username: z.string().min(1).describe("Flussonic admin API login (edit_auth)"),
        passwordEnv: envName.optional(),
        passwordSecret: secretReference.optional(),
      }),
      z.strictObject({
        type: z.literal("bearer"),
        tokenEnv: envName.optional(),
        tokenSecret: secretReference.optional(),
      }),
      z.strictObject({
        type: z.literal("token"),
        tokenEnv: envName.optional(),
        tokenSecret: secretReference.optional(),
      }),
    ],
    { error: 'expected auth.type to be one of "none", "basic", "bearer", "token"' },
  )
  .superRefine((auth, ctx) => {
    // The local runtime reads the *Env variable, the AWS stack the *Secret: either or both.
    if (auth.type === "basic" && !auth.passwordEnv && !auth.passwordSecret) {
      ctx.addIssue({
        code: "custom",
        message:
          "expected passwordEnv (an environment variable, for local runs) or passwordSecret (a Secrets Manager secret, for AWS), or both",
      });
    }
    if ((auth.type === "bearer" || auth.type === "token") && !auth.tokenEnv && !auth.tokenSecret) {
      ctx.addIssue({
        code: "custom",
        message:
          "expected tokenEnv (an environment variable, for local runs) or tokenSecret (a Secrets Manager secret, for AWS), or both",
      });
    }
  })
  .describe(
    "How to authenticate: basic/bearer for the admin API, token for a play token passed as ?token= (view access only)",
  );

const retentionDays = z
  .number({ error: "expected a number of days" })
  .positive({ error: "expected a number of days greater than 0" })
  .max(3650, { error: "expected at most 3650 days" });

const format = z.enum(ARCHIVE_FORMATS, { error: 'expected "mp4" (fragmented MP4) or "ts" (MPEG-TS)' });

const streamName = z.string().superRefine((name, ctx) => {
  const problem = streamNameProblem(name);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

const streamEntry = z.union(
  [
    streamName,
    z.strictObject({
      name: streamName,
      retentionDays: retentionDays
        .optional()
        .describe("Overrides the source's retentionDays for this stream"),
      format: format.optional().describe("Overrides the source's format for this stream"),
    }),
  ],
  { error: 'expected a stream name or an object like { "name": "cam1", "retentionDays": 7 }' },
);

const sourceSchema = z
  .strictObject({
    name: z
      .string()
      .refine((n) => !sourceNameProblem(n), { error: `expected a source name of ${SOURCE_NAME_RULE}` })
      .describe(`Name of the source in S3 keys, queues and metrics: ${SOURCE_NAME_RULE}`),
    url: z
      .url({ protocol: /^https?$/, error: "expected an http:// or https:// URL" })
      .describe("Flussonic base URL for the admin API (and for downloads unless archiveUrl is set)"),
    archiveUrl: z
      .url({ protocol: /^https?$/, error: "expected an http:// or https:// URL" })
      .optional()
      .describe("Where archive downloads go, like Flussonic's replication_port (default: url)"),
    kind: z
      .enum(["server", "central"], {
        error:
          'expected "server" (one Flussonic Media Server) or "central" (a Flussonic Central or Watcher API whose servers are found by themselves)',
      })
      .optional()
      .describe(
        'What url is: "server" (default), one Flussonic Media Server; "central", a Flussonic Central (or Watcher) API: every media server it lists is backed up, its streams named "<server hostname>/<stream>", each server under eachServer\'s cap',
      ),
    eachServer: z
      .strictObject({
        maxConcurrentCopies: z
          .int({ error: "expected a whole number of copies" })
          .min(1, { error: "expected at least 1 concurrent copy" })
          .max(1000, { error: "expected at most 1000 concurrent copies" })
          .default(2)
          .describe("At most this many archive downloads from one server at once"),
        maxBandwidthMbps: z
          .number({ error: "expected a number of megabits per second" })
          .positive({ error: "expected a bandwidth cap greater than 0 Mbit/s" })
          .default(100)
          .describe("Download rate from one server, its copies together (megabits per second)"),
        auth: z
          .enum(["central", "cluster_key"], { error: 'expected "central" or "cluster_key"' })
          .default("central")
          .describe(
            'How the servers are asked: "central", with the source\'s own auth; "cluster_key", with each server\'s cluster key as a Bearer token, as Central gives it',
          ),
      })
      .optional()
      .describe(
        'kind "central" only: the cap of each server Central lists (the source\'s maxConcurrentCopies and maxBandwidthMbps are the whole fleet\'s). Default {"maxConcurrentCopies": 2, "maxBandwidthMbps": 100, "auth": "central"}',
      ),
    auth: authSchema.default({ type: "none" }),
    streams: z
      .union([z.literal("all"), z.array(streamEntry).min(1, { error: "expected at least one stream" })], {
        error: 'expected "all" or a list of streams',
      })
      .default("all")
      .describe('"all": every stream of the source that has a DVR archive; or a list of streams'),
    index: z
      .enum(["auto", "api", "playback"], { error: 'expected "auto", "api" or "playback"' })
      .default("auto")
      .describe(
        "Where recorded ranges are read: the admin API, the playback-side recording_status.json, or auto (api unless auth is a play token)",
      ),
    retentionDays: retentionDays.default(7).describe("How many days back to keep a copy of"),
    format: format.default("mp4"),
    maxConcurrentCopies: z
      .int({ error: "expected a whole number of copies" })
      .min(1, { error: "expected at least 1 concurrent copy" })
      .max(1000, { error: "expected at most 1000 concurrent copies" })
      .default(2)
      .describe("At most this many archive downloads from this source at once"),
    maxBandwidthMbps: z
      .number({ error: "expected a number of megabits per second" })
      .positive({ error: "expected a bandwidth cap greater than 0 Mbit/s" })
      .default(100)
      .describe("Total download rate from this source, all copies together (megabits per second)"),
    paused: z
      .boolean()
      .default(false)
      .describe(
        "When true nothing is planned or copied for this source (also: `flussonic-backup pause --source`)",
      ),
    bandwidthSchedule: z
      .array(
        z.strictObject({
          from: z.string().regex(HH_MM, { error: 'expected a time of day like "08:00"' }),
          to: z.string().regex(HH_MM, { error: 'expected a time of day like "20:00"' }),
          maxBandwidthMbps: z
            .number({ error: "expected a number of megabits per second" })
            .nonnegative({ error: "expected 0 (no copying) or more Mbit/s" }),
        }),
      )
      .default([])
      .describe(
        "Daily periods with their own cap (0: no copying), e.g. gentle by day, full speed at night; outside them maxBandwidthMbps applies",
      ),
    timeZone: z
      .string()
      .refine(isKnownTimeZone, { error: 'expected an IANA time zone like "Europe/Berlin" or "UTC"' })
      .default("UTC")
      .describe("Time zone of bandwidthSchedule"),
    allowCredentialsOverHttp: z
      .boolean()
      .default(false)
      .describe(
        "Send this source's credentials over http:// (in clear: anyone on the network path can read them); each run warns. Default false: refused",
      ),
    episodes: z
      .strictObject({
        url: z
          .url({ protocol: /^https?$/, error: "expected an http:// or https:// URL" })
          .optional()
          .describe(
            'An episodes URL as Flussonic\'s `episodes_url` (config-external `external_episodes_list`: GET ?name=<stream>, answer {episodes: [{opened_at, updated_at, closed_at}]} in ms), asked with the source\'s auth. Kind "server" needs it; kind "central" asks Central\'s /streamer/api/v3/episodes without it',
          ),
        preRollSeconds: z
          .int({ error: "expected a whole number of seconds" })
          .min(0, { error: "expected 0 or more seconds" })
          .max(86400, { error: "expected at most 86400 seconds (a day)" })
          .default(30)
          .describe("Seconds held before an episode opens"),
        postRollSeconds: z
          .int({ error: "expected a whole number of seconds" })
          .min(0, { error: "expected 0 or more seconds" })
          .max(86400, { error: "expected at most 86400 seconds (a day)" })
          .default(30)
          .describe("Seconds held after an episode's last update (or its close)"),
      })
      .optional()
      .describe(
        'Hold every episode the source reports (docs/evidence.md, "Holds from episodes"): the planner reads them once per run and holds each episode\'s range with pre- and post-roll until released. Absent: no episode is held',
      ),
    timeouts: z
      .strictObject({
        connectSeconds: z.number().positive().default(10),
        headersSeconds: z.number().positive().default(30),
        bodyIdleSeconds: z.number().positive().default(30),
      })
      .default({ connectSeconds: 10, headersSeconds: 30, bodyIdleSeconds: 30 })
      .describe("HTTP timeouts towards this source"),
  })
  .superRefine((source, ctx) => {
    for (const field of ["url", "archiveUrl"] as const) {
      const url = source[field];
      if (!url || source.auth.type === "none" || source.allowCredentialsOverHttp || !inClear(url)) continue;
      ctx.addIssue({
        code: "custom",
        path: [field],
        // The source's index in the message comes from the path the caller formats; here its field.
        message: `the ${source.auth.type} credentials would go in clear over http://: use https://, or set ALLOW_FIELD to true to accept that anyone on the path can read them`,
      });
    }
    if (source.kind === "central") centralProblems(source, ctx);
    else if (source.eachServer) {
      ctx.addIssue({
        code: "custom",
        path: ["eachServer"],
        message: 'eachServer is for sources of kind "central" (the cap of each server Central lists)',
      });
    }
    const episodesUrl = source.episodes?.url;
    if (
      episodesUrl &&
      source.auth.type !== "none" &&
      !source.allowCredentialsOverHttp &&
      inClear(episodesUrl)
    ) {
      ctx.addIssue({
        code: "custom",
        path: ["episodes", "url"],
        message: `the ${source.auth.type} credentials would go in clear over http:// to the episodes URL: use https://, or set the source's allowCredentialsOverHttp to true to accept that anyone on the path can read them`,
      });
    }
    if (source.episodes && !source.episodes.url && source.kind !== "central") {
      ctx.addIssue({
        code: "custom",
        path: ["episodes", "url"],
        message:
          'a source of kind "server" has no episodes API of its own: give the episodes URL its episodes_url points at, or remove episodes',
      });
    }
    if (source.streams === "all" && (source.auth.type === "token" || source.index === "playback")) {
      ctx.addIssue({
        code: "custom",
        path: ["streams"],
        message:
          'streams "all" needs the admin API to list streams; with a play token or index "playback" list the streams by name',
      });
    }
  });

/** What a `kind: "central"` source cannot have: Central is asked through its admin API. */
function centralProblems(
  source: { auth: { type: string }; index: string; archiveUrl?: string | undefined; streams: unknown },
  ctx: z.RefinementCtx,
): void {
  if (source.archiveUrl !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["archiveUrl"],
      message:
        'a central source reads each server at the address Central gives it (api_url, private_payload_url): remove archiveUrl, or make this source kind "server"',
    });
  }
  if (source.auth.type === "token" || source.index === "playback") {
    ctx.addIssue({
      code: "custom",
      path: [source.auth.type === "token" ? "auth" : "index"],
      message:
        'a central source lists servers and streams through Central\'s admin API: use auth "none", "basic" or "bearer" and index "auto" or "api"',
    });
  }
  if (Array.isArray(source.streams)) {
    source.streams.forEach((entry: unknown, i) => {
      const name = typeof entry === "string" ? entry : (entry as { name?: unknown } | null)?.name;
      if (typeof name === "string" && !/^[^/]+\/./.test(name)) {
        ctx.addIssue({
          code: "custom",
          path: ["streams", i],
          message: `a central source names its streams "<server hostname>/<stream>", like "streamer1.example.com/${name}"`,
        });
      }
    });
  }
}

/** Options of the AWS deployment (the CDK stack in infra/); the local runtime ignores them. */
const deploymentSchema = z
  .strictObject({
    kmsKeyArn: z
      .string()
      .regex(/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/, {
        error: "expected a KMS key ARN, like arn:aws:kms:eu-west-1:123456789012:key/<key id>",
      })
      .optional()
      .describe("Encrypt the bucket with this KMS key instead of S3-managed keys (SSE-S3)"),
    objectLock: z
      .strictObject({
        mode: z.enum(["GOVERNANCE", "COMPLIANCE", "NONE"], {
          error: 'expected "GOVERNANCE", "COMPLIANCE" or "NONE"',
        }),
        days: z
          .int({ error: "expected a whole number of days" })
          .min(1, { error: "expected at least 1 day" })
          .max(36500, { error: "expected at most 36500 days" })
          .optional()
          .describe(
            "Default retention in days (default: the shortest retentionDays of the streams, rounded up)",
          ),
      })
      .optional()
      .describe(
        'S3 Object Lock default retention: no object version can be deleted before this many days, even from a compromised account (COMPLIANCE: not even by root); "NONE": off. Default: GOVERNANCE for a new bucket (a first deploy), off for a bucket deployed before. Only when the bucket is created',
      ),
    storageClassTransition: z
      .strictObject({
        storageClass: z.enum(
          ["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"],
          {
            error:
              'expected one of "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"',
          },
        ),
        afterDays: z
          .int({ error: "expected a whole number of days" })
          .min(0, { error: "expected 0 or more days" }),
      })
      .superRefine((t, ctx) => {
        if ((t.storageClass === "STANDARD_IA" || t.storageClass === "ONEZONE_IA") && t.afterDays < 30) {
          ctx.addIssue({
            code: "custom",
            path: ["afterDays"],
            message: `S3 moves objects to ${t.storageClass} only 30 days or more after they are written`,
          });
        }
      })
      .optional()
      .describe("Move archive windows to a cheaper storage class this many days after they are written"),
    alarmEmail: z
      .email({ error: "expected an email address" })
      .optional()
      .describe("Subscribe this address to the alarm topic (AWS sends a confirmation email first)"),
    lagAlarmSeconds: z
      .int({ error: "expected a whole number of seconds" })
      .min(300, { error: "expected at least 300 seconds" })
      .default(3600)
      .describe("Alarm when a source's backup lag (live edge minus newest backed-up second) exceeds this"),
    exportSigningKey: z
      .boolean()
      .default(false)
      .describe(
        "Create a KMS asymmetric signing key (ECC_NIST_EDWARDS25519: Ed25519, like `export-key init`) for signed exports and day proofs; its ARN is the stack output ExportSigningKeyArn",
      ),
    noncurrentVersionDays: z
      .int({ error: "expected a whole number of days" })
      .min(1, { error: "expected at least 1 day" })
      // Every expired window stays this long as an old version: it adds these days to the storage bill.
      // 30: time to notice a window replaced or deleted by a compromised writer and restore it.
      .default(30)
      .describe(
        "Overwritten or deleted object versions are kept this long (a window to undo a deletion); expired windows too",
      ),
    playback: z
      .strictObject({
        domainName: z
          .string()
          .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, {
            error: "expected a lower-case DNS name like backup.example.com",
          })
          .optional()
          .describe(
            "Serve playback under this name (a CNAME to the distribution you create); needs certificateArn",
          ),
        certificateArn: z
          .string()
          .regex(/^arn:aws[a-z-]*:acm:us-east-1:\d{12}:certificate\/[A-Za-z0-9-]+$/, {
            error:
              "expected an ACM certificate ARN in us-east-1 (CloudFront's region), like arn:aws:acm:us-east-1:123456789012:certificate/<id>",
          })
          .optional()
          .describe("ACM certificate (us-east-1) for domainName"),
        mediaUrlTtlSeconds: z
          .int({ error: "expected a whole number of seconds" })
          .min(600, { error: "expected at least 600 seconds" })
          .max(7 * 86400, { error: "expected at most 604800 seconds (7 days)" })
          .default(7200)
          .describe(
            "How long the signed media URLs in a playlist stay valid at least (a paused player resumes within it)",
          ),
        priceClass: z
          .enum(["PriceClass_100", "PriceClass_200", "PriceClass_All"], {
            error: 'expected "PriceClass_100", "PriceClass_200" or "PriceClass_All"',
          })
          .default("PriceClass_100")
          .describe(
            "CloudFront edge locations used (PriceClass_100: North America and Europe, the cheapest)",
          ),
        additionalMetrics: z
          .boolean()
          .default(false)
          .describe(
            "Turn on CloudFront's additional metrics (cache hit rate, origin latency) for the dashboard: billed as CloudWatch custom metrics",
          ),
        reservedConcurrency: z
          .int({ error: "expected a whole number of concurrent invocations" })
          .min(1, { error: "expected at least 1" })
          .max(1000, { error: "expected at most 1000" })
          .default(10)
          .describe(
            "Concurrency reserved for (and the most taken by) the playback function: requests beyond it are throttled instead of taking the account's concurrency from the copiers",
          ),
        upstream: z
          .string()
          .regex(/^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/, {
            error: "expected the Flussonic server as http(s)://host[:port], with no path, query or login",
          })
          .optional()
          .describe(
            "The Flussonic server CloudFront asks first (origin group): its playback URLs /{stream}/{file} are answered by the server while it answers and by the playback function on a connection error, 5xx or 404; the server must be one of the configured sources (by address), or the only one",
          ),
        rateLimitPer5Minutes: z
          .int({ error: "expected a whole number of requests" })
          .min(10, { error: "expected at least 10 requests (WAF's smallest rate limit)" })
          .optional()
          .describe(
            "Block a viewer IP that sends more requests than this in 5 minutes (a WAF web ACL; needs the stack in us-east-1; about 6 USD a month plus 0.60 USD per million requests)",
          ),
      })
      .superRefine((p, ctx) => {
        if (Boolean(p.domainName) !== Boolean(p.certificateArn)) {
          ctx.addIssue({
            code: "custom",
            path: [p.domainName ? "certificateArn" : "domainName"],
            message:
              "domainName and certificateArn go together: give both, or neither for the CloudFront domain",
          });
        }
      })
      .optional()
      .describe(
        'Deploy playback (the playback handler behind CloudFront): {} enables it with defaults (docs/playback.md, "Watch the backup in AWS")',
      ),
  })
  .prefault({})
  .describe("AWS deployment options (infra/): bucket encryption, Object Lock, storage class, alarms");

export const configSchema = z.strictObject({
  $schema: z.string().optional(),
  bucket: z.string({ error: "expected the S3 bucket name" }).regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, {
    error: "expected an S3 bucket name: 3 to 63 lowercase letters, digits, '.' and '-'",
  }),
  prefix: z
    .string()
    // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
    .regex(/^$|^(?!\/)(?!.*\/\/)(?!(.*\/)?\.\.?\/)[^\u0000-\u001f]*\/$/, {
      error: "expected a key prefix ending in '/', without a leading '/', '//' or '..' segments (or empty)",
    })
    .default("flussonic/")
    .describe("Every object this tool writes is under this key prefix"),
  schedule: z
    .string()
    .regex(/^rate\(\s*[1-9]\d*\s+(minute|minutes|hour|hours|day|days)\s*\)$/, {
      error: 'expected a schedule like "rate(5 minutes)"',
    })
    .default("rate(5 minutes)")
    .describe("How often the planner runs (EventBridge rate expression)"),
  settleSeconds: z
    .int()
    .min(0)
    .max(3600)
    .default(120)
    .describe("Keep this far from the live edge: video younger than this is left for the next run"),
  maxWindowSeconds: z
    .union(
      WINDOW_LENGTHS_SECONDS.map((n) => z.literal(n)),
      { error: `expected one of ${WINDOW_LENGTHS_SECONDS.join(", ")} seconds (divisors of a day)` },
    )
    .default(600)
    .describe("Longest archive window one copy fetches; shorter for high-bitrate streams"),
  minWindowSeconds: z
    .union(
      MIN_WINDOW_CHOICES.map((n) => z.literal(n)),
      { error: `expected one of ${MIN_WINDOW_CHOICES.join(", ")} seconds (divisors of a day)` },
    )
    .default(DEFAULT_MIN_WINDOW_SECONDS)
    .describe(
      "Shortest window cut for a low-bitrate stream of a source without Range at a low cap (each request to such a source arrives in one burst): shorter holds the cap closer, at the cost of more S3 requests",
    ),
  spoolMiB: z
    .int({ error: "expected a whole number of MiB" })
    .min(0, { error: "expected 0 (no spool) or more MiB" })
    .max(5120, { error: "expected at most 5120 MiB (S3's largest PutObject is 5 GiB)" })
    .default(256)
    .describe(
      "The copier spools each window to local disk (the OS temp directory; /tmp in Lambda, 512 MB there by default) instead of memory: a window expected up to this many MiB is stored with one PutObject carrying its SHA-256, a larger one in parts of 64 MiB read from the spool while it downloads (the disk then holds at most 3 parts). 0: no spool, windows stream through about 24 MiB of memory buffers in parts",
    ),
  leaseSeconds: z
    .int({ error: "expected a whole number of seconds" })
    .min(MIN_LEASE_SECONDS, {
      error: `expected at least ${MIN_LEASE_SECONDS} seconds: the copier's timeout (${COPIER_TIMEOUT_SECONDS} s in AWS and by default) plus ${LEASE_START_MARGIN_SECONDS} s to start the copy; a window whose lease ends before its copy could finish is left stale and never copied`,
    })
    .default(3600)
    .describe(
      `A planned window is not planned again for this long, unless its copy is recorded; at least the copier's timeout plus ${LEASE_START_MARGIN_SECONDS} s`,
    ),
  marginWarningSeconds: z
    .int({ error: "expected a whole number of seconds" })
    .min(0)
    .default(6 * 3600)
    .describe(
      "Warn (a line in the run's output, the status pages, the CloudWatch alarm) when a stream's margin, the time left until the source deletes the oldest second the backup lacks, is below this; keep it below the sources' archive depth (default 6 hours)",
    ),
  sources: z.array(sourceSchema).min(1, { error: "expected at least one source" }),
  prices: z
    .strictObject({
      region: z.string().optional().describe("Where these prices are from (shown next to every projection)"),
      standardGbMonth: z
        .number({ error: "expected a price in USD" })
        .nonnegative({ error: "expected 0 or more" })
        .optional()
        .describe("S3 Standard, USD per GB-month"),
      glacierIrGbMonth: z
        .number({ error: "expected a price in USD" })
        .nonnegative({ error: "expected 0 or more" })
        .optional()
        .describe("S3 Glacier Instant Retrieval, USD per GB-month"),
      glacierIrMinimumDays: z
        .int({ error: "expected a whole number of days" })
        .min(0)
        .optional()
        .describe("Days a GLACIER_IR object is billed for at least"),
      transitionPer1000: z
        .number({ error: "expected a price in USD" })
        .nonnegative({ error: "expected 0 or more" })
        .optional()
        .describe("S3 lifecycle transitions, USD per 1,000"),
      putPer1000: z
        .number({ error: "expected a price in USD" })
        .nonnegative({ error: "expected 0 or more" })
        .optional()
        .describe("S3 PUT, COPY, POST, LIST requests, USD per 1,000"),
      getPer1000: z
        .number({ error: "expected a price in USD" })
        .nonnegative({ error: "expected 0 or more" })
        .optional()
        .describe("S3 GET, HEAD requests, USD per 1,000"),
      lambdaGbSecond: z
        .number({ error: "expected a price in USD" })
        .nonnegative({ error: "expected 0 or more" })
        .optional()
        .describe("Lambda compute, USD per GB-second"),
      lambdaPerMillion: z
        .number({ error: "expected a price in USD" })
        .nonnegative({ error: "expected 0 or more" })
        .optional()
        .describe("Lambda invocations, USD per million"),
      sqsPerMillion: z
        .number({ error: "expected a price in USD" })
        .nonnegative({ error: "expected 0 or more" })
        .optional()
        .describe("SQS requests, USD per million"),
    })
    .optional()
    .describe(
      "Prices the `cost` report projects the month at, each overriding the built-in us-east-1 list price (functions/domain/prices.ts); default: the list prices",
    ),
  deployment: deploymentSchema,
  playback: z
    .strictObject({
      tokenKeysEnv: z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: "expected an environment variable name" })
        .default("FLUSSONIC_BACKUP_PLAYBACK_KEYS")
        .describe(
          "Environment variable holding the playback token keys (comma-separated secrets of 32+ characters, current first)",
        ),
    })
    .prefault({})
    .describe("Playback of the backup (`serve`, `playback-token`): where the token signing keys come from"),
  evidence: z
    .strictObject({
      legalHold: z
        .enum(["auto", "required", "off"], { error: 'expected "auto", "required" or "off"' })
        .default("auto")
        .describe(
          'Whether `hold` puts an S3 legal hold on each held window: "auto" when the bucket has Object Lock, "required" refuses a hold on a bucket without it, "off" never',
        ),
      signingKeyEnv: z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: "expected an environment variable name" })
        .default("FLUSSONIC_BACKUP_EXPORT_KEY")
        .describe(
          "Environment variable holding the PEM of the Ed25519 key that signs exports and day proofs (`export --key <file>` instead)",
        ),
      kmsKey: z
        .string()
        .regex(
          /^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)\/[A-Za-z0-9/_-]+|alias\/[A-Za-z0-9/_-]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/,
          {
            error: 'expected a KMS key ARN, alias ARN, key id or "alias/<name>"',
          },
        )
        .optional()
        .describe(
          "AWS KMS key (ECC_NIST_EDWARDS25519, the one deployment.exportSigningKey creates: its ARN is the stack output ExportSigningKeyArn) that signs exports and day proofs instead of a local key (`--key` and `--kms-key` override it)",
        ),
    })
    .prefault({})
    .describe("Evidence (`hold`, `export`, `prove`): legal holds and the signing key"),
});

export type BackupConfig = z.output<typeof configSchema>;
export type SourceConfig = BackupConfig["sources"][number];
export type AuthConfig = SourceConfig["auth"];
export type DeploymentConfig = BackupConfig["deployment"];

/** The cap and auth of each server of a `kind: "central"` source, defaults filled in. */
export function serverCaps(source: SourceConfig): {
  maxConcurrentCopies: number;
  maxBandwidthMbps: number;
  auth: "central" | "cluster_key";
} {
  return {
    maxConcurrentCopies: source.eachServer?.maxConcurrentCopies ?? 2,
    maxBandwidthMbps: source.eachServer?.maxBandwidthMbps ?? 100,
    auth: source.eachServer?.auth ?? "central",
  };
}

/**
 * The rate one copy of a source gets, in bits per second: its share of `mbps` (the source's cap in
 * force) and, for a central source, no more than its share of its server's own cap.
 */
export function copyBandwidthBps(source: SourceConfig, mbps: number): number {
  const share = (mbps * 1_000_000) / source.maxConcurrentCopies;
  if (source.kind !== "central") return share;
  const server = serverCaps(source);
  return Math.min(share, (server.maxBandwidthMbps * 1_000_000) / server.maxConcurrentCopies);
}
