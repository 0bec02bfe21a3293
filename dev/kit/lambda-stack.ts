/**
 * The CDK stack's Lambda functions run as they would be deployed, without AWS:
 *
 * - `synthesizeStack` runs the CDK app the way `cdk synth` does (the `app` command of cdk.json,
 *   with the cloud assembly directory in CDK_OUTDIR and the context in CDK_CONTEXT_JSON) and reads
 *   from the cloud assembly each function's code directory (the asset the template's `Code.S3Key`
 *   names, found through the assets manifest as `cdk deploy` finds it), handler, runtime, timeout,
 *   memory and environment variables: nothing is copied from the stack's source.
 * - `deployToEmulator` creates the template's buckets and queues (with the template's queue
 *   attributes: visibility timeout, retention, redrive to the DLQ) in an S3/SQS emulator and
 *   resolves the template's references to them, which CloudFormation would resolve at deploy time:
 *   `Ref` of a queue is its URL, here `<SQS endpoint>/<account>/<QueueName>` (the SDK sends to the
 *   queue URL's host, so it must be the emulator's); `Fn::GetAtt [queue, Arn]` is the ARN the
 *   emulator reports; `Ref` of a bucket is its name; `Fn::Join` joins. Anything else a variable
 *   might reference fails the resolution, so a new kind of reference cannot go unnoticed.
 * - `invokeFunction` runs one invocation in a child Node process (dev/kit/lambda-runner.ts):
 *   a fresh container per invocation, with only the environment Lambda would give it.
 */
import { execFile, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { CreateBucketCommand, type S3Client } from "@aws-sdk/client-s3";
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from "@aws-sdk/client-sqs";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const runner = fileURLToPath(new URL("./lambda-runner.ts", import.meta.url));

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface TemplateResource {
  Type: string;
  Properties?: Record<string, Json>;
}

export interface SynthesizedFunction {
  logicalId: string;
  description: string;
  /** `Handler` of the template, e.g. `index.handler`. */
  handler: string;
  runtime: string;
  timeoutSeconds: number;
  memorySize: number;
  /** The asset directory the template's code refers to (what `cdk deploy` zips and uploads). */
  codeDir: string;
  /** The template's environment variables, unresolved (strings or CloudFormation intrinsics). */
  environment: Record<string, Json>;
}

export interface SynthesizedStack {
  outDir: string;
  stackName: string;
  resources: Record<string, TemplateResource>;
  functions: SynthesizedFunction[];
  /** How long `cdk synth` took (ms). */
  synthMs: number;
}

/** Synthesizes the app for `configFile` into `outDir`, as `npm run synth -- -c config=<file>` does. */
export async function synthesizeStack(configFile: string, outDir: string): Promise<SynthesizedStack> {
  const cdkJson = JSON.parse(readFileSync(join(repoRoot, "cdk.json"), "utf8")) as {
    app: string;
    context?: Record<string, unknown>;
  };
  const [command, ...args] = cdkJson.app.split(" ");
  if (command !== "node") throw new Error(`cdk.json: expected a "node ..." app command, got ${cdkJson.app}`);
  const started = performance.now();
  try {
    await promisify(execFile)(process.execPath, args, {
      cwd: repoRoot,
      env: {
        // No CDK_DEFAULT_ACCOUNT/REGION: the stack stays environment-agnostic, as on a fresh clone.
        ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CDK_DEFAULT_"))),
        CDK_OUTDIR: outDir,
        CDK_CONTEXT_JSON: JSON.stringify({ ...cdkJson.context, config: configFile }),
      },
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (error) {
    const e = error as Error & { stderr?: string; stdout?: string };
    throw new Error(`cdk synth failed: ${e.message}\n${e.stdout ?? ""}\n${e.stderr ?? ""}`);
  }
  const synthMs = performance.now() - started;

  const manifest = JSON.parse(readFileSync(join(outDir, "manifest.json"), "utf8")) as {
    artifacts: Record<string, { type: string; properties?: { templateFile?: string; stackName?: string } }>;
  };
  const stacks = Object.entries(manifest.artifacts).filter(([, a]) => a.type === "aws:cloudformation:stack");
  if (stacks.length !== 1) throw new Error(`expected one stack in ${outDir}, found ${stacks.length}`);
  const [artifactId, stack] = stacks[0]!;
  const template = JSON.parse(readFileSync(join(outDir, stack.properties!.templateFile!), "utf8")) as {
    Resources: Record<string, TemplateResource>;
  };
  const assets = JSON.parse(readFileSync(join(outDir, `${artifactId}.assets.json`), "utf8")) as {
    files: Record<string, { source: { path: string }; destinations: Record<string, { objectKey: string }> }>;
  };
  const assetDirOfKey = new Map(
    Object.values(assets.files).flatMap((f) =>
      Object.values(f.destinations).map((d) => [d.objectKey, join(outDir, f.source.path)] as const),
    ),
  );

  const functions = Object.entries(template.Resources)
    .filter(([, r]) => r.Type === "AWS::Lambda::Function")
    .map(([logicalId, r]): SynthesizedFunction => {
      const p = r.Properties ?? {};
      const code = p.Code as { S3Key?: string; ZipFile?: string };
      const codeDir = code.S3Key ? assetDirOfKey.get(code.S3Key) : undefined;
      if (!codeDir) throw new Error(`${logicalId}: its code is not an asset of the cloud assembly`);
      return {
        logicalId,
        description: String(p.Description ?? ""),
        handler: String(p.Handler),
        runtime: String(p.Runtime),
        timeoutSeconds: Number(p.Timeout ?? 3),
        memorySize: Number(p.MemorySize ?? 128),
        codeDir,
        environment: ((p.Environment as { Variables?: Record<string, Json> } | undefined)?.Variables ??
          {}) as Record<string, Json>,
      };
    });
  return {
    outDir,
    stackName: stack.properties?.stackName ?? artifactId,
    resources: template.Resources,
    functions,
    synthMs,
  };
}

export interface EmulatorEndpoint {
  region: string;
  s3Endpoint: string;
  sqsEndpoint: string;
}

export interface DeployedQueue {
  logicalId: string;
  name: string;
  url: string;
  arn: string;
  properties: Record<string, Json>;
}

export interface Deployment {
  queues: Map<string, DeployedQueue>;
  buckets: Map<string, string>;
  /** Resolves a template value (string or intrinsic) against the created resources. */
  resolve(value: Json): string;
}

/** Queue properties of the template that are SQS queue attributes of the same name. */
const QUEUE_ATTRIBUTES = [
  "VisibilityTimeout",
  "MessageRetentionPeriod",
  "DelaySeconds",
  "MaximumMessageSize",
  "ReceiveMessageWaitTimeSeconds",
  "FifoQueue",
  "ContentBasedDeduplication",
];

/**
 * Creates the template's buckets and queues in the emulator (what `cdk deploy` would create in
 * AWS, minus what an emulator has no use for: encryption, policies, logging, lifecycle).
 */
export async function deployToEmulator(
  stack: SynthesizedStack,
  clients: { s3: S3Client; sqs: SQSClient },
  endpoint: EmulatorEndpoint,
): Promise<Deployment> {
  const queues = new Map<string, DeployedQueue>();
  const buckets = new Map<string, string>();
  const entries = Object.entries(stack.resources);

  const resolve = (value: Json): string => {
    if (typeof value === "string") return value;
    if (value && typeof value === "object" && !Array.isArray(value)) {
      if ("Ref" in value) {
        const id = String(value.Ref);
        const found = queues.get(id)?.url ?? buckets.get(id);
        if (found === undefined)
          throw new Error(`cannot resolve {Ref: ${id}}: not a created queue or bucket`);
        return found;
      }
      if ("Fn::GetAtt" in value) {
        const [id, attribute] = value["Fn::GetAtt"] as [string, string];
        const queue = queues.get(id);
        if (queue && attribute === "Arn") return queue.arn;
        if (queue && attribute === "QueueName") return queue.name;
        if (queue && attribute === "QueueUrl") return queue.url;
        const bucket = buckets.get(id);
        if (bucket && attribute === "Arn") return `arn:aws:s3:::${bucket}`;
        throw new Error(`cannot resolve {Fn::GetAtt: [${id}, ${attribute}]}`);
      }
      if ("Fn::Join" in value) {
        const [separator, parts] = value["Fn::Join"] as [string, Json[]];
        return parts.map(resolve).join(separator);
      }
    }
    throw new Error(`cannot resolve ${JSON.stringify(value)}: not a Ref, Fn::GetAtt or Fn::Join`);
  };

  for (const [id, r] of entries.filter(([, r]) => r.Type === "AWS::S3::Bucket")) {
    // A bucket without a name gets one from CloudFormation: `<stack>-<logical id>-<suffix>`.
    const name = String(r.Properties?.BucketName ?? `${stack.stackName}-${id}`.toLowerCase().slice(0, 63));
    await clients.s3.send(new CreateBucketCommand({ Bucket: name }));
    buckets.set(id, name);
  }
  // Queues that others redrive to first, so that the redrive policy can name their ARN.
  const queueEntries = entries
    .filter(([, r]) => r.Type === "AWS::SQS::Queue")
    .sort(
      ([, a], [, b]) =>
        Number("RedrivePolicy" in (a.Properties ?? {})) - Number("RedrivePolicy" in (b.Properties ?? {})),
    );
  for (const [id, r] of queueEntries) {
    const p = r.Properties ?? {};
    const name = String(p.QueueName ?? `${stack.stackName}-${id}`);
    const attributes: Record<string, string> = {};
    for (const key of QUEUE_ATTRIBUTES) if (p[key] !== undefined) attributes[key] = String(p[key]);
    if (p.RedrivePolicy) {
      const policy = p.RedrivePolicy as { deadLetterTargetArn: Json; maxReceiveCount: number };
      attributes.RedrivePolicy = JSON.stringify({
        deadLetterTargetArn: resolve(policy.deadLetterTargetArn),
        maxReceiveCount: policy.maxReceiveCount,
      });
    }
    const created = await clients.sqs.send(
      new CreateQueueCommand({ QueueName: name, Attributes: attributes }),
    );
    const { Attributes } = await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: created.QueueUrl, AttributeNames: ["QueueArn"] }),
    );
    const arn = Attributes!.QueueArn!;
    const account = arn.split(":")[4]!;
    queues.set(id, {
      logicalId: id,
      name,
      url: `${endpoint.sqsEndpoint}/${account}/${name}`,
      arn,
      properties: p,
    });
  }
  return { queues, buckets, resolve };
}

export interface InvokeSetup {
  fn: SynthesizedFunction;
  deployment: Deployment;
  endpoint: EmulatorEndpoint;
  /** Endpoint of the Secrets Manager stand-in. */
  secretsManagerEndpoint: string;
  /** Scratch directory for result files. */
  workDir: string;
}

/** Dummy credentials: the emulator and the double accept any; they only sign the requests. */
export const DUMMY_CREDENTIALS = { accessKeyId: "AKIDLAMBDATEST", secretAccessKey: "lambda-test-secret-key" };

/**
 * The access key a function's invocations sign with: one per function, as each has its own role in
 * AWS, so that a proxy in front of the emulator knows whose role a request must be allowed by
 * (dev/kit/role-policy-proxy.ts).
 */
export function accessKeyIdOf(fn: SynthesizedFunction): string {
  return `${DUMMY_CREDENTIALS.accessKeyId}${fn.logicalId.replace(/[^A-Za-z0-9]/g, "").toUpperCase()}`;
}

/**
 * The environment a deployed function's process gets: the template's variables (references
 * resolved), what the Lambda runtime sets, the region and the role's (here dummy) credentials, and
 * the service endpoints of the emulator (S3, SQS) and of the Secrets Manager double. Nothing of
 * the test's own environment is passed on.
 */
export function functionEnvironment(s: InvokeSetup): Record<string, string> {
  const variables = Object.fromEntries(
    Object.entries(s.fn.environment).map(([k, v]) => [k, s.deployment.resolve(v)]),
  );
  const name = `${s.fn.logicalId}`;
  return {
    ...variables,
    PATH: "/usr/local/bin:/usr/bin:/bin",
    LANG: "en_US.UTF-8",
    TZ: ":UTC",
    LAMBDA_TASK_ROOT: s.fn.codeDir,
    _HANDLER: s.fn.handler,
    AWS_EXECUTION_ENV: `AWS_Lambda_${s.fn.runtime}`,
    // Each invocation here is a new container: an on-demand cold start.
    AWS_LAMBDA_INITIALIZATION_TYPE: "on-demand",
    AWS_LAMBDA_FUNCTION_NAME: name,
    AWS_LAMBDA_FUNCTION_VERSION: "$LATEST",
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(s.fn.memorySize),
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${name}`,
    AWS_LAMBDA_LOG_STREAM_NAME: `2026/01/01/[$LATEST]${randomUUID().replaceAll("-", "")}`,
    AWS_REGION: s.endpoint.region,
    AWS_DEFAULT_REGION: s.endpoint.region,
    AWS_ACCESS_KEY_ID: accessKeyIdOf(s.fn),
    AWS_SECRET_ACCESS_KEY: DUMMY_CREDENTIALS.secretAccessKey,
    // No shared config or credentials files of the machine the test runs on.
    AWS_CONFIG_FILE: join(s.workDir, "no-aws-config"),
    AWS_SHARED_CREDENTIALS_FILE: join(s.workDir, "no-aws-credentials"),
    AWS_ENDPOINT_URL_S3: s.endpoint.s3Endpoint,
    AWS_ENDPOINT_URL_SQS: s.endpoint.sqsEndpoint,
    // The SDK's name for the Secrets Manager endpoint variable (service id "Secrets Manager").
    AWS_ENDPOINT_URL_SECRETS_MANAGER: s.secretsManagerEndpoint,
  };
}

/** How an invocation ended, its logs (stdout and stderr), its wall time and the Node.js version that ran it. */
export type InvokeOutcome = { logs: string; ms: number; node: string } & (
  | { ok: true; result: Json }
  | { ok: false; errorType: string; errorMessage: string }
);

/**
 * One invocation in a fresh Node process (a cold container), ended at the function's timeout.
 * `remainingMs` starts it with less time left, as if it had already run that long: it stands in for
 * an invocation that runs into its timeout, without waiting minutes for it.
 */
export async function invokeFunction(
  s: InvokeSetup,
  event: unknown,
  env: Record<string, string> = functionEnvironment(s),
  remainingMs: number = s.fn.timeoutSeconds * 1000,
): Promise<InvokeOutcome> {
  mkdirSync(s.workDir, { recursive: true });
  const requestId = randomUUID();
  const resultFile = join(s.workDir, `result-${requestId}.json`);
  const started = performance.now();
  const deadline = Date.now() + remainingMs;
  const child = spawn(process.execPath, [runner, resultFile, String(deadline), requestId], {
    cwd: s.fn.codeDir,
    env,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let logs = "";
  child.stdout.on("data", (c: Buffer) => {
    logs += c.toString("utf8");
  });
  child.stderr.on("data", (c: Buffer) => {
    logs += c.toString("utf8");
  });
  // Lambda ends an invocation at its timeout; so does this (tests time out sooner anyway).
  const timer = setTimeout(() => child.kill("SIGKILL"), remainingMs);
  child.stdin.end(JSON.stringify(event));
  const [code, signal] = (await new Promise((resolve) =>
    child.on("close", (c, sig) => resolve([c, sig])),
  )) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  const ms = performance.now() - started;
  let outcome: Record<string, Json>;
  try {
    outcome = JSON.parse(readFileSync(resultFile, "utf8"));
  } catch {
    return {
      ok: false,
      errorType: "Runtime.ExitError",
      errorMessage: `the process ended (code ${code}, signal ${signal}) without a result`,
      logs,
      ms,
      node: "",
    };
  }
  writeFileSync(resultFile, "");
  const node = String(outcome.node);
  return outcome.ok
    ? { ok: true, result: outcome.result ?? null, logs, ms, node }
    : {
        ok: false,
        errorType: String(outcome.errorType),
        errorMessage: String(outcome.errorMessage),
        logs,
        ms,
        node,
      };
}
