/**
 * A Lambda function of the product (planner, copier, and playback's: infra/playback-function.ts):
 * its own role that starts with no permission but writing its own log group, its log group with a
 * retention, and the code, bundled by esbuild from functions/lambda/ (or a stub, for template tests
 * that need no bundle), with any `files` copied beside the bundle.
 */
import { fileURLToPath } from "node:url";
import { type Duration, RemovalPolicy } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import { NodejsFunction, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";

/** `bundle`: esbuild the real handler (deployments, `npm run synth`); `stub`: inline code (tests). */
export type FunctionCode = "bundle" | "stub";

export interface BackupFunctionProps {
  /** The entry `functions/lambda/<name>.ts`. */
  name: "planner" | "copier" | "playback" | "playback-signing-key";
  description: string;
  /** What the role may do, for its description (default: its queues, prefixes and secrets). */
  roleScope?: string;
  memorySize: number;
  timeout: Duration;
  environment: Record<string, string>;
  code: FunctionCode;
  /**
   * Files (paths from the repository root) copied into the bundle's directory, under `dir`;
   * `optional` ones only when present (an optional dependency of another platform is not).
   */
  files?: { dir: string; paths: string[]; optional?: string[] };
  /** Default arm64 (Graviton); x86_64 for a function that runs an x86-64 binary. */
  architecture?: "arm64" | "x86_64";
  /** Concurrency reserved for (and the most used by) the function; default: the account's pool. */
  reservedConcurrency?: number;
  /** Node/V8 flags added to NODE_OPTIONS (after --enable-source-maps). */
  nodeFlags?: readonly string[];
}

const repoRoot = fileURLToPath(new URL("..", import.meta.url));

export class BackupFunction extends Construct {
  readonly function: lambda.Function;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: BackupFunctionProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, "Logs", {
      retention: logs.RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // An own role instead of AWSLambdaBasicExecutionRole: that managed policy may write any log group.
    this.role = new iam.Role(this, "Role", {
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      description: `flussonic-backup ${props.name}: ${props.roleScope ?? "only its queues, prefixes and secrets"}`,
    });
    this.role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
        resources: [this.logGroup.logGroupArn],
      }),
    );
    const common = {
      description: props.description,
      role: this.role,
      logGroup: this.logGroup,
      // nodejs24.x: the Node the project develops and tests on (the `node` dev dependency).
      runtime: lambda.Runtime.NODEJS_24_X,
      // Graviton: about 20% cheaper per GB-second than x86, and nothing here is x86-specific.
      architecture: props.architecture === "x86_64" ? lambda.Architecture.X86_64 : lambda.Architecture.ARM_64,
      memorySize: props.memorySize,
      timeout: props.timeout,
      environment: {
        ...props.environment,
        NODE_OPTIONS: ["--enable-source-maps", ...(props.nodeFlags ?? [])].join(" "),
      },
      ...(props.reservedConcurrency ? { reservedConcurrentExecutions: props.reservedConcurrency } : {}),
    };
    const files = props.files;
    this.function =
      props.code === "bundle"
        ? new NodejsFunction(this, "Function", {
            ...common,
            entry: `${repoRoot}functions/lambda/${props.name}.ts`,
            handler: "handler",
            projectRoot: repoRoot,
            depsLockFilePath: `${repoRoot}package-lock.json`,
            bundling: {
              // esbuild from the dev dependencies: no Docker needed to synthesize or deploy.
              forceDockerBundling: false,
              format: OutputFormat.ESM,
              target: "node24",
              minify: true,
              sourceMap: true,
              // Bundle the AWS SDK too: the versions the tests ran with, not the runtime's.
              externalModules: [],
              mainFields: ["module", "main"],
              // Some dependencies are CommonJS and call require(): give the ES module one.
              banner:
                "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
              ...(files
                ? {
                    commandHooks: {
                      beforeBundling: () => [],
                      beforeInstall: () => [],
                      afterBundling: (inputDir: string, outputDir: string) => [
                        `mkdir -p "${outputDir}/${files.dir}"`,
                        ...files.paths.map((p) => `cp "${inputDir}/${p}" "${outputDir}/${files.dir}/"`),
                        ...(files.optional ?? []).map(
                          (p) =>
                            `if [ -f "${inputDir}/${p}" ]; then cp "${inputDir}/${p}" "${outputDir}/${files.dir}/"; fi`,
                        ),
                      ],
                    },
                  }
                : {}),
            },
          })
        : new lambda.Function(this, "Function", {
            ...common,
            code: lambda.Code.fromInline("exports.handler = async () => ({});"),
            handler: "index.handler",
          });
  }
}
