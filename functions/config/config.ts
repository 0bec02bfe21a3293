/**
 * The configuration contract: one JSON (or JSON with comments) file, parsed once at the edge with
 * zod and passed down typed. Secrets are never in the file: it names environment variables (local
 * runtime) and Secrets Manager secrets (AWS).
 */

import { readFileSync } from "node:fs";
import { inspect } from "node:util";
import { type ParseError, parse as parseJsonc, printParseErrorCode } from "jsonc-parser";
import { z } from "zod";
import {
  ALL_WINDOW_LENGTHS_SECONDS,
  ARCHIVE_FORMATS,
  type ArchiveFormat,
  WINDOW_LENGTHS_SECONDS,
} from "../domain/archive.ts";
import { HH_MM, isKnownTimeZone } from "../domain/bandwidth-schedule.ts";
import { SOURCE_NAME_RULE, STREAM_NAME_RULE, sourceNameProblem, streamNameProblem } from "../domain/names.ts";
import { DEFAULT_MIN_WINDOW_SECONDS } from "../domain/windows.ts";
import { COPIER_TIMEOUT_SECONDS } from "./limits.ts";

// Re-exported: callers that imported them from here keep working.
export { type ArchiveFormat, WINDOW_LENGTHS_SECONDS };

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
    if (source.streams === "all" && (source.auth.type === "token" || source.index === "playback")) {
      ctx.addIssue({
        code: "custom",
        path: ["streams"],
        message:
          'streams "all" needs the admin API to list streams; with a play token or index "playback" list the streams by name',
      });
    }
  });

/** An http:// URL to another machine: what is sent there crosses a network in clear. */
function inClear(url: string): boolean {
  const u = new URL(url);
  if (u.protocol !== "http:") return false;
  const host = u.hostname.replace(/^\[|\]$/g, "");
  return !(host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host));
}

/**
 * What a valid config does that the operator should hear about on every run and in `config check`:
 * credentials sent in clear because allowCredentialsOverHttp says so.
 */
export function configWarnings(config: BackupConfig): string[] {
  return config.sources.flatMap((s) =>
    s.auth.type !== "none" && s.allowCredentialsOverHttp
      ? [s.url, s.archiveUrl]
          .filter((u): u is string => u !== undefined && inClear(u))
          .map(
            (u) =>
              `source ${s.name}: its ${s.auth.type} credentials go in clear over ${u.replace(/\/$/, "")} (allowCredentialsOverHttp): anyone on the network path can read them`,
          )
      : [],
  );
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
        'Deploy playback (the playback handler behind CloudFront): {} enables it with defaults (README "Watch the backup in AWS")',
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
  leaseSeconds: z
    .int({ error: "expected a whole number of seconds" })
    .min(MIN_LEASE_SECONDS, {
      error: `expected at least ${MIN_LEASE_SECONDS} seconds: the copier's timeout (${COPIER_TIMEOUT_SECONDS} s in AWS and by default) plus ${LEASE_START_MARGIN_SECONDS} s to start the copy; a window whose lease ends before its copy could finish is left stale and never copied`,
    })
    .default(3600)
    .describe(
      `A planned window is not planned again for this long, unless its copy is recorded; at least the copier's timeout plus ${LEASE_START_MARGIN_SECONDS} s`,
    ),
  sources: z.array(sourceSchema).min(1, { error: "expected at least one source" }),
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
});

export type BackupConfig = z.output<typeof configSchema>;
export type SourceConfig = BackupConfig["sources"][number];
export type AuthConfig = SourceConfig["auth"];
export type DeploymentConfig = BackupConfig["deployment"];

/** A configuration problem: names the file, the JSON path and what is expected. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join("\n"));
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/** `sources[1].streams[0]` from a zod path. */
export function formatJsonPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    // A key that is not a plain name (empty, spaces, dots, quotes) is written as a JSON string.
    else if (typeof part !== "string" || !/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(part))
      out += `[${JSON.stringify(String(part))}]`;
    else out += out ? `.${part}` : part;
  }
  return out || "(top level)";
}

const INLINE_SECRET_KEYS = new Set(["password", "token", "secret"]);

/** Parses and validates configuration text; `file` only labels messages. Throws ConfigError. */
export function parseConfig(text: string, file: string): BackupConfig {
  const errors: ParseError[] = [];
  const data: unknown = parseJsonc(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length > 0) {
    // The first syntax error only: the ones after it are mostly its echoes.
    const first = errors[0]!;
    const { line, column } = positionOf(text, first.offset);
    throw new ConfigError([`${file}:${line}:${column}: not valid JSON: ${printParseErrorCode(first.error)}`]);
  }
  const result = configSchema.safeParse(data, { reportInput: true });
  const duplicates = duplicateNames(data).map((d) => `${file}: ${d}`);
  if (result.success && duplicates.length === 0) return result.data;
  const issues = result.success ? [] : result.error.issues;
  const problems = issues.flatMap((issue) => {
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => {
        const hint = INLINE_SECRET_KEYS.has(key)
          ? ": secrets never go in the file; put it in an environment variable and name it (passwordEnv, tokenEnv)"
          : "";
        return `${file}: ${formatJsonPath([...issue.path, key])}: unknown key "${key}"${hint}`;
      });
    }
    const got =
      "input" in issue && (typeof issue.input === "number" || typeof issue.input === "boolean")
        ? ` (got ${String(issue.input)})`
        : "";
    const message = (
      issue.code === "invalid_type" && issue.input === undefined ? requiredMessage(issue) : issue.message
    ).replace("ALLOW_FIELD", formatJsonPath([...issue.path.slice(0, -1), "allowCredentialsOverHttp"]));
    return [`${file}: ${formatJsonPath(issue.path)}: ${message}${got}`];
  });
  throw new ConfigError([...problems, ...duplicates]);
}

function requiredMessage(issue: z.core.$ZodIssue): string {
  return `is required: ${issue.message.replace(/^Invalid input: /, "").replace(/, received undefined$/, "")}`;
}

/**
 * Names given twice: sources, and streams within a source. Checked on the raw data so that they are
 * reported together with every other problem, not only once the rest is valid.
 */
function duplicateNames(data: unknown): string[] {
  const problems: string[] = [];
  const sources = (data as { sources?: unknown } | null)?.sources;
  if (!Array.isArray(sources)) return problems;
  const seenSources = new Set<string>();
  sources.forEach((source: unknown, i) => {
    const s = source as { name?: unknown; streams?: unknown } | null;
    if (typeof s?.name === "string") {
      if (seenSources.has(s.name)) problems.push(`sources[${i}].name: source "${s.name}" is defined twice`);
      seenSources.add(s.name);
    }
    if (!Array.isArray(s?.streams)) return;
    const seenStreams = new Set<string>();
    s.streams.forEach((entry: unknown, j) => {
      const name = typeof entry === "string" ? entry : (entry as { name?: unknown } | null)?.name;
      if (typeof name !== "string") return;
      if (seenStreams.has(name))
        problems.push(`sources[${i}].streams[${j}]: stream "${name}" is listed twice`);
      seenStreams.add(name);
    });
  });
  return problems;
}

function positionOf(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset).split("\n");
  return { line: before.length, column: (before.at(-1)?.length ?? 0) + 1 };
}

/**
 * Refuses a copier timeout the config's leases cannot carry (the config itself is checked against
 * the Lambda copier's timeout; a local run may set another with --copy-timeout): every window would
 * be left stale and nothing copied. Throws ConfigError naming the file, the field and the flag.
 */
export function checkLeaseCoversCopy(config: BackupConfig, file: string, copyTimeoutSeconds: number): void {
  const needed = copyTimeoutSeconds + LEASE_START_MARGIN_SECONDS;
  if (config.leaseSeconds >= needed) return;
  throw new ConfigError([
    `${file}: leaseSeconds: ${config.leaseSeconds} s is shorter than --copy-timeout ${copyTimeoutSeconds} s plus ${LEASE_START_MARGIN_SECONDS} s to start a copy, so every window would be left stale and nothing copied: set leaseSeconds to at least ${needed} or lower --copy-timeout`,
  ]);
}

/** Reads and validates a config file. Throws ConfigError naming the file. */
export function loadConfigFile(path: string): BackupConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError([
      `${path}: cannot read the config file${code === "ENOENT" ? ": no such file" : `: ${String(code)}`}`,
    ]);
  }
  return parseConfig(text, path);
}

/** A secret value that never prints itself: logs, errors and JSON show `***`. */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  /** The value, for the one place that puts it on the wire. */
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return "***";
  }
  toJSON(): string {
    return "***";
  }
  [inspect.custom](): string {
    return "Secret(***)";
  }
}

/** Credentials of one source, with secrets resolved. */
export type SourceCredentials =
  | { type: "none" }
  | { type: "basic"; username: string; password: Secret }
  | { type: "bearer"; token: Secret }
  | { type: "token"; token: Secret };

/** Looks up a source's secrets; `lookup` returns undefined when a secret is not set. */
export function resolveCredentials(
  auth: AuthConfig,
  lookup: (name: string) => string | undefined,
  where: string,
): SourceCredentials {
  const need = (name: string | undefined, field: string, secretField: string): Secret => {
    if (name === undefined) {
      throw new ConfigError([
        `${where}.auth.${field}: is required here: this runtime reads secrets from environment variables (${secretField} is read in AWS only)`,
      ]);
    }
    const value = lookup(name);
    if (value === undefined || value === "") {
      throw new ConfigError([`${where}.auth.${field}: environment variable ${name} is not set`]);
    }
    return new Secret(value);
  };
  switch (auth.type) {
    case "none":
      return { type: "none" };
    case "basic":
      return {
        type: "basic",
        username: auth.username,
        password: need(auth.passwordEnv, "passwordEnv", "passwordSecret"),
      };
    case "bearer":
      return { type: "bearer", token: need(auth.tokenEnv, "tokenEnv", "tokenSecret") };
    case "token":
      return { type: "token", token: need(auth.tokenEnv, "tokenEnv", "tokenSecret") };
  }
}

/** The Secrets Manager secret (name or ARN) of a source's credentials, if the config names one. */
export function authSecretReference(
  auth: AuthConfig,
): { field: string; secret: string | undefined } | undefined {
  switch (auth.type) {
    case "none":
      return undefined;
    case "basic":
      return { field: "passwordSecret", secret: auth.passwordSecret };
    case "bearer":
    case "token":
      return { field: "tokenSecret", secret: auth.tokenSecret };
  }
}

/** Builds a source's credentials from the value of its secret (read from Secrets Manager). */
export function credentialsFromSecret(auth: AuthConfig, value: string): SourceCredentials {
  switch (auth.type) {
    case "none":
      return { type: "none" };
    case "basic":
      return { type: "basic", username: auth.username, password: new Secret(value) };
    case "bearer":
      return { type: "bearer", token: new Secret(value) };
    case "token":
      return { type: "token", token: new Secret(value) };
  }
}

/** Resolves every source's credentials from `env`, reporting every missing variable at once. */
export function resolveAllCredentials(
  config: BackupConfig,
  file: string,
  env: NodeJS.ProcessEnv,
): Map<string, SourceCredentials> {
  const out = new Map<string, SourceCredentials>();
  const problems: string[] = [];
  config.sources.forEach((source, i) => {
    try {
      out.set(
        source.name,
        resolveCredentials(source.auth, (n) => env[n], `${file}: sources[${i}]`),
      );
    } catch (error) {
      if (error instanceof ConfigError) problems.push(...error.problems);
      else throw error;
    }
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}

/** Per-stream effective settings: the stream's overrides over the source's. */
export interface StreamSettings {
  name: string;
  retentionDays: number;
  format: ArchiveFormat;
}

/** The streams a source lists explicitly, with effective settings; undefined for "all". */
export function listedStreams(source: SourceConfig): StreamSettings[] | undefined {
  if (source.streams === "all") return undefined;
  return source.streams.map((entry) =>
    typeof entry === "string"
      ? { name: entry, retentionDays: source.retentionDays, format: source.format }
      : {
          name: entry.name,
          retentionDays: entry.retentionDays ?? source.retentionDays,
          format: entry.format ?? source.format,
        },
  );
}

/** Settings for a stream discovered with streams "all". */
export function defaultStreamSettings(source: SourceConfig, name: string): StreamSettings {
  return { name, retentionDays: source.retentionDays, format: source.format };
}

/** JSON Schema of the config file, for editors (`$schema`). */
export function configJsonSchema(): unknown {
  return z.toJSONSchema(configSchema, { io: "input", target: "draft-2020-12" });
}

export { STREAM_NAME_RULE };
