/**
 * What a user reads when a command fails: the failures they can meet (an S3/SQS endpoint that is
 * not there, credentials refused, a bucket missing or not creatable, a queue attribute refused, a
 * source that is unreachable or refuses the login, a stream it does not know) told in one or two
 * lines naming the resource and what to do. The domain and adapters classify errors
 * (functions/domain/errors.ts, storeError, the Flussonic client); this edge module words them.
 */
import { HeadBucketCommand, S3ServiceException } from "@aws-sdk/client-s3";
import { SQSServiceException } from "@aws-sdk/client-sqs";
import type { BackupConfig, SourceConfig } from "../../functions/config/config.ts";
import { queueName } from "../../functions/queue/source-queues.ts";
import { createS3Client, type Endpoints } from "../../local/aws-clients.ts";

/** What the running command works on; commands fill it in as they learn it. */
export interface ErrorContext {
  configFile?: string | undefined;
  config?: BackupConfig | undefined;
  endpoints?: Endpoints | undefined;
  /** The embedded emulator's state directory when the endpoints are its (`--embedded`, `--demo`). */
  embedded?: string | undefined;
  /** What the command was doing, e.g. "create or open the bucket and the copy queues". */
  step?: string | undefined;
  /** Set by a probe after a failed `step`: whether the bucket exists (undefined: unknown). */
  bucketExists?: boolean | undefined;
}

export const errorContext: ErrorContext = {};

const NETWORK: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host name lookup failed",
  ETIMEDOUT: "connection timed out",
  ECONNRESET: "connection reset",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
};

const ACCESS = new Set([
  "AccessDenied",
  "AccessDeniedException",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "InvalidClientTokenId",
  "UnrecognizedClientException",
  "ExpiredToken",
  "ExpiredTokenException",
  "InvalidToken",
  "Forbidden",
  "MissingAuthenticationToken",
  "AllAccessDisabled",
]);

const CREATE_BUCKET = new Set([
  "BucketAlreadyExists",
  "InvalidBucketName",
  "IllegalLocationConstraintException",
  "InvalidLocationConstraint",
  "TooManyBuckets",
]);

/** The error and its causes, outermost first (AggregateError members included). */
function chain(error: unknown): unknown[] {
  const out: unknown[] = [];
  const visit = (e: unknown, depth: number) => {
    if (e === undefined || e === null || depth > 8 || out.includes(e)) return;
    out.push(e);
    if (e instanceof AggregateError) for (const m of e.errors) visit(m, depth + 1);
    visit((e as { cause?: unknown }).cause, depth + 1);
  };
  visit(error, 0);
  return out;
}

function awsError(
  error: unknown,
): { service: "S3" | "SQS"; e: S3ServiceException | SQSServiceException } | undefined {
  for (const e of chain(error)) {
    if (e instanceof S3ServiceException) return { service: "S3", e };
    if (e instanceof SQSServiceException) return { service: "SQS", e };
  }
  return undefined;
}

function networkCode(error: unknown): { code: string; port?: number; host?: string } | undefined {
  for (const e of chain(error)) {
    const x = e as { code?: unknown; port?: unknown; address?: unknown; hostname?: unknown };
    if (typeof x.code === "string" && x.code in NETWORK) {
      return {
        code: x.code,
        ...(typeof x.port === "number" ? { port: x.port } : {}),
        ...(typeof x.hostname === "string" ? { host: x.hostname } : {}),
      };
    }
  }
  return undefined;
}

function endpointName(service: "S3" | "SQS", ctx: ErrorContext): string {
  const url = service === "S3" ? ctx.endpoints?.s3Endpoint : ctx.endpoints?.sqsEndpoint;
  if (ctx.embedded !== undefined) return `the embedded emulator (state in ${ctx.embedded})`;
  return url
    ? `the ${service} endpoint ${url}`
    : `AWS ${service} in ${ctx.endpoints?.region ?? "the region"}`;
}

function configField(ctx: ErrorContext, field: string): string {
  return ctx.configFile ? `"${field}" in ${ctx.configFile}` : `"${field}" in the configuration`;
}

function queueNames(ctx: ErrorContext): string {
  const names = (ctx.config?.sources ?? []).map((s) => queueName(s.name));
  return names.length > 0 ? `${names.join(", ")} (and -dlq)` : "the copy queues";
}

/** Which endpoint a network error was about: by port when it says, else both. */
function unreachableService(n: { port?: number; host?: string }, ctx: ErrorContext): "S3" | "SQS" | "both" {
  const match = (url: string | undefined) => {
    if (!url) return false;
    const u = new URL(url);
    const port = Number(u.port || (u.protocol === "https:" ? 443 : 80));
    return (n.port === undefined || n.port === port) && (n.host === undefined || n.host === u.hostname);
  };
  const s3 = match(ctx.endpoints?.s3Endpoint);
  const sqs = match(ctx.endpoints?.sqsEndpoint);
  if (s3 && !sqs) return "S3";
  if (sqs && !s3) return "SQS";
  return "both";
}

const CREDENTIALS = "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)";

/**
 * One or two lines for an error a user can meet, or undefined for an unexpected one (the caller
 * prints its name and message and, with --verbose or DEBUG, the stack).
 */
export function explainError(error: unknown, ctx: ErrorContext = errorContext): string | undefined {
  const bucket = ctx.config ? `bucket "${ctx.config.bucket}"` : "the bucket";
  const source = sourceOf(error, ctx.config);
  if (source) return explainSourceError(messageOf(error), source, ctx);

  const aws = awsError(error);
  if (aws) {
    const { service, e } = aws;
    const code = e.name;
    const status = e.$metadata?.httpStatusCode;
    // HEAD answers have no body: the SDK knows only the status.
    const why = [
      code === "Unknown" || /^\d+$/.test(code) ? undefined : code,
      status ? `HTTP ${status}` : undefined,
    ]
      .filter(Boolean)
      .join(", ");
    const at = endpointName(service, ctx);
    if (
      service === "S3" &&
      ctx.bucketExists === false &&
      (CREATE_BUCKET.has(code) || ACCESS.has(code) || status === 403)
    ) {
      return (
        `${bucket} does not exist at ${at} and cannot be created (${why}).\n` +
        `Create it yourself, allow these credentials s3:CreateBucket, or correct ${configField(ctx, "bucket")}.`
      );
    }
    if (service === "S3" && code === "BucketAlreadyExists") {
      return `${bucket} belongs to another account (${at}): choose another name in ${configField(ctx, "bucket")}.`;
    }
    if (ACCESS.has(code) || status === 403 || status === 401) {
      const what = service === "S3" ? bucket : `the copy queues ${queueNames(ctx)}`;
      return (
        `${at} refused access to ${what} (${why}).\n` +
        `Check the credentials in ${CREDENTIALS} and that they may use ${what}${ctx.endpoints?.s3Endpoint || ctx.endpoints?.sqsEndpoint ? "" : ` in ${ctx.endpoints?.region}`}.`
      );
    }
    if (service === "S3" && (code === "NoSuchBucket" || (code === "NotFound" && ctx.step === undefined))) {
      return (
        `${bucket} does not exist at ${at}.\n` +
        `Check ${configField(ctx, "bucket")} and the endpoint, or run \`flussonic-backup run\` first (it creates the bucket).`
      );
    }
    if (service === "SQS" && /InvalidAttributeValue|InvalidParameterValue|InvalidAttributeName/.test(code)) {
      return (
        `${at} refused an attribute of the copy queues ${queueNames(ctx)}: ${e.message}\n` +
        "Check --copy-timeout (whole seconds, at most 43170) and the settings of an existing queue of that name."
      );
    }
    if (service === "SQS" && /QueueDoesNotExist|NonExistentQueue/.test(code)) {
      return (
        `The copy queues ${queueNames(ctx)} do not exist at ${at}.\n` +
        "Run `flussonic-backup run` once (it creates them), or check AWS_ENDPOINT_URL_SQS and AWS_REGION."
      );
    }
  }
  if (chain(error).some((e) => (e as Error)?.name === "CredentialsProviderError")) {
    return `No AWS credentials found: set ${CREDENTIALS}, or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL_SQS with any credentials for an emulator.`;
  }
  const net = networkCode(error);
  if (net) {
    const which = unreachableService(net, ctx);
    const what =
      which === "both"
        ? ctx.endpoints?.s3Endpoint === ctx.endpoints?.sqsEndpoint
          ? endpointName("S3", ctx).replace(" S3 endpoint", " S3/SQS endpoint")
          : `${endpointName("S3", ctx)} or ${endpointName("SQS", ctx)}`
        : endpointName(which, ctx);
    return (
      `Cannot reach ${what}: ${NETWORK[net.code]} (${net.code}).\n` +
      "Check AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL_SQS (or AWS_ENDPOINT_URL) and that the service (LocalStack, MinIO, ...) is running."
    );
  }
  return undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The configured source an error message of the Flussonic client is about (`source <name>: ...`). */
function sourceOf(error: unknown, config: BackupConfig | undefined): SourceConfig | undefined {
  if (!config) return undefined;
  for (const e of chain(error)) {
    const m = /^source (\S+?):/.exec(messageOf(e));
    const s = m ? config.sources.find((x) => x.name === m[1]) : undefined;
    if (s) return s;
  }
  return undefined;
}

/**
 * A planning or copy error of a source, with the source's URL, the configuration field to look at
 * and what to do; the message unchanged when it is none of the known kinds.
 */
export function explainSourceError(
  message: string,
  source: SourceConfig,
  ctx: ErrorContext = errorContext,
): string {
  const i = ctx.config?.sources.indexOf(source) ?? -1;
  const field = (f: string) => configField(ctx, i >= 0 ? `sources[${i}].${f}` : `${f}`);
  const at = `source ${source.name} (${source.url})`;
  const detail = message.replace(new RegExp(`^source ${escapeRegExp(source.name)}: `), "");
  if (/HTTP 40[13]\b/.test(message)) {
    const secret =
      source.auth.type === "basic"
        ? source.auth.passwordEnv
        : source.auth.type === "none"
          ? undefined
          : source.auth.tokenEnv;
    return `${at} refused the login: ${detail}; check ${field("auth")}${secret ? ` and the secret in ${secret}` : ""}.`;
  }
  if (/no Flussonic admin API at/.test(message)) {
    return `${at} answers no Flussonic admin API there (${detail}); check ${field("url")}: the address where Flussonic's admin API (/streamer/api/v3) answers, usually the server's base URL with no path (http://streamer1.example:8080).`;
  }
  if (/unknown to the source/.test(message)) {
    const stream = /stream "([^"]+)"/.exec(message)?.[1];
    return `${at} has no stream ${stream ? `"${stream}"` : "of that name"} (${detail}); check ${field("streams")} against the stream names in Flussonic.`;
  }
  if (
    /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|connect timeout|connection refused|host not found/.test(
      message,
    )
  ) {
    return `${at} is unreachable: ${detail}; check ${field("url")} and that Flussonic is running and reachable from here.`;
  }
  return message;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * After `step` failed: whether the bucket exists, for the message (a missing bucket that could not
 * be created reads differently from one that is there but refused). Best effort, one HeadBucket.
 */
export async function probeBucket(
  error: unknown,
  endpoints: Endpoints,
  bucket: string,
  step: string,
): Promise<void> {
  errorContext.step = step;
  if (awsError(error)?.service !== "S3") return;
  const s3 = createS3Client(endpoints);
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: AbortSignal.timeout(5000) });
    errorContext.bucketExists = true;
  } catch (error) {
    const status = error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
    errorContext.bucketExists = status === 404 ? false : undefined;
  } finally {
    s3.destroy();
  }
}
