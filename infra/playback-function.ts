/**
 * A Lambda function of playback (the playback handler, the signing-key custom resource) made the
 * way infra/backup-function.ts makes the backup's: its own role that starts with writing its own
 * log group, a log group with a retention, nodejs24.x on arm64, the entry bundled by esbuild from
 * functions/lambda/ (ESM, the AWS SDK bundled) or a stub for template tests. `files` are copied
 * beside the bundle (the page and hls.js the playback function serves).
 */
import { fileURLToPath } from "node:url";
import { type Duration, RemovalPolicy } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import { NodejsFunction, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import type { FunctionCode } from "./backup-function.ts";

export interface PlaybackFunctionProps {
  /** The entry `functions/lambda/<entry>.ts`. */
  entry: "playback" | "playback-signing-key";
  description: string;
  memorySize: number;
  timeout: Duration;
  environment: Record<string, string>;
  code: FunctionCode;
  /** Files (paths from the repository root) copied into the bundle's directory, under `dir`. */
  files?: { dir: string; paths: string[] };
}

const repoRoot = fileURLToPath(new URL("..", import.meta.url));

export class PlaybackFunction extends Construct {
  readonly function: lambda.Function;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: PlaybackFunctionProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, "Logs", {
      retention: logs.RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.role = new iam.Role(this, "Role", {
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      description: `flussonic-backup ${props.entry}: only the keys and secrets it reads`,
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
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize,
      timeout: props.timeout,
      environment: { ...props.environment, NODE_OPTIONS: "--enable-source-maps" },
    };
    const files = props.files;
    this.function =
      props.code === "bundle"
        ? new NodejsFunction(this, "Function", {
            ...common,
            entry: `${repoRoot}functions/lambda/${props.entry}.ts`,
            handler: "handler",
            projectRoot: repoRoot,
            depsLockFilePath: `${repoRoot}package-lock.json`,
            bundling: {
              forceDockerBundling: false,
              format: OutputFormat.ESM,
              target: "node24",
              minify: true,
              sourceMap: true,
              externalModules: [],
              mainFields: ["module", "main"],
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
