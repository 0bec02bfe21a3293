/**
 * What the operator commands (status, verify, restore, redrive) work on: the configuration, the
 * S3/SQS endpoints chosen like `run` does (AWS variables, `--embedded [dir]`, or the S3 endpoint of
 * the AWS variables with the queues embedded in `--state-dir`: `--queues embedded`), or the demo's
 * backup (`--demo [dir]`: the configuration `npm start` wrote, its emulator state, and for status a
 * simulator started again with the demo's settings, which serves the same archive).
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import type { SQSClient } from "@aws-sdk/client-sqs";
import {
  type BackupConfig,
  loadConfigFile,
  resolveAllCredentials,
  type SourceCredentials,
} from "../../functions/config/config.ts";
import type { ArchiveSource } from "../../functions/source/flussonic.ts";
import { openSource } from "../../functions/source/open-source.ts";
import { BackupStore } from "../../functions/store/backup-store.ts";
import {
  createS3Client,
  createSqsClient,
  type Endpoints,
  endpointsFromEnv,
} from "../../local/aws-clients.ts";
import { type EmbeddedEmulator, startEmbedded } from "../../local/embedded.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";
import { errorContext } from "./error-messages.ts";
import {
  checkQueueChoice,
  DEFAULT_STATE_DIR,
  type QueueChoice,
  withEmbeddedQueues,
} from "./queue-options.ts";
import { UsageError } from "./usage-error.ts";

/** Options every operator command takes. */
export interface TargetOptions extends QueueChoice {
  /** `-c/--config <file>`. */
  config?: string | undefined;
  /** `--embedded [dir]` (true: the default directory). */
  embedded?: string | boolean | undefined;
  /** `--demo [dir]` (true: `.demo`). */
  demo?: string | boolean | undefined;
}

export interface BackupTarget {
  config: BackupConfig;
  endpoints: Endpoints;
  s3: S3Client;
  sqs: SQSClient;
  store: BackupStore;
  /** A Flussonic client per source (status only; created on first use). */
  flussonic(source: string): ArchiveSource;
  close(): Promise<void>;
}

/** Settings the demo writes next to its configuration so `--demo` can serve the same archive. */
export interface DemoSimulatorSettings {
  streams: number;
  days: number;
  seed: number;
  bitrateBps: number;
}

export async function openBackupTarget(
  o: TargetOptions,
  needs: { flussonic: boolean; queues?: boolean },
): Promise<BackupTarget> {
  const queues = checkQueueChoice(o, {
    embedded: o.embedded !== undefined && o.embedded !== false,
    demo: o.demo !== undefined && o.demo !== false,
  });
  let configFile: string;
  let embeddedDir: string | undefined;
  let demoDir: string | undefined;
  if (o.demo !== undefined && o.demo !== false) {
    if (o.config) throw new UsageError("--demo and --config: give one of them");
    demoDir = resolve(o.demo === true ? ".demo" : o.demo);
    configFile = join(demoDir, "config.json");
    if (!existsSync(configFile)) {
      throw new UsageError(`--demo: ${configFile} does not exist; run \`npm start\` first (it writes it)`);
    }
    embeddedDir = join(demoDir, "emulator");
  } else {
    if (!o.config) throw new UsageError("-c/--config <file> is required (or --demo for the demo's backup)");
    configFile = o.config;
    if (o.embedded !== undefined && o.embedded !== false) {
      embeddedDir = o.embedded === true ? DEFAULT_STATE_DIR : o.embedded;
      // An operator command looks at a backup `run --embedded` made; it never creates an empty one.
      if (!existsSync(embeddedDir)) {
        throw new UsageError(
          `--embedded ${embeddedDir}: no such directory; give the directory \`run --embedded\` keeps the backup in (the one after --embedded in your run command)`,
        );
      }
    }
  }
  errorContext.configFile = configFile;
  let config = loadConfigFile(configFile);
  errorContext.config = config;
  let credentials = new Map<string, SourceCredentials>();
  let sim: FlussonicSimulator | undefined;
  if (needs.flussonic) {
    if (demoDir) {
      const settings = JSON.parse(
        readFileSync(join(demoDir, "simulator.json"), "utf8"),
      ) as DemoSimulatorSettings;
      sim = await FlussonicSimulator.start(settings);
      const url = sim.url;
      config = { ...config, sources: config.sources.map((s) => ({ ...s, url })) };
    } else {
      credentials = resolveAllCredentials(config, configFile, process.env);
    }
  }
  let embedded: EmbeddedEmulator | undefined;
  let endpoints = endpointsFromEnv(process.env);
  if (embeddedDir !== undefined) {
    embedded = await startEmbedded(embeddedDir);
    endpoints = embedded.endpoints;
  } else if (queues === "embedded" && needs.queues) {
    // The backup is at the S3 endpoint of the AWS variables; the queues in the state directory.
    const stateDir = o.stateDir ?? DEFAULT_STATE_DIR;
    if (!existsSync(stateDir)) {
      throw new UsageError(
        `--state-dir ${stateDir}: no such directory; give the --state-dir that \`run --queues embedded\` keeps its queues in`,
      );
    }
    ({ endpoints, emulator: embedded } = await withEmbeddedQueues(endpoints, stateDir));
  }
  errorContext.endpoints = endpoints;
  errorContext.embedded = embeddedDir;
  const s3 = createS3Client(endpoints);
  const sqs = createSqsClient(endpoints);
  const clients = new Map<string, ArchiveSource>();
  const finalConfig = config;
  return {
    config: finalConfig,
    endpoints,
    s3,
    sqs,
    store: new BackupStore(s3, finalConfig.bucket, finalConfig.prefix),
    flussonic(source) {
      let c = clients.get(source);
      if (!c) {
        const s = finalConfig.sources.find((x) => x.name === source);
        if (!s) throw new UsageError(`no source "${source}" in the configuration`);
        c = openSource(s, credentials.get(source) ?? { type: "none" });
        clients.set(source, c);
      }
      return c;
    },
    async close() {
      await Promise.all([...clients.values()].map((c) => c.close()));
      s3.destroy();
      sqs.destroy();
      await embedded?.stop();
      await sim?.close();
    },
  };
}

/**
 * Runs a command body and sets the exit status from it; failures go to the CLI's one error
 * boundary (cli/main.ts), which prints them for the user.
 */
export async function operatorAction(body: () => Promise<number>): Promise<void> {
  process.exitCode = await body();
}

/** A source of the configuration by name (`--source`), or a usage error listing the names. */
export function sourceNamed(config: BackupConfig, name: string): BackupConfig["sources"][number] {
  const s = config.sources.find((x) => x.name === name);
  if (!s) {
    throw new UsageError(
      `--source: no source "${name}" in the configuration (sources: ${config.sources.map((x) => x.name).join(", ")})`,
    );
  }
  return s;
}
