/**
 * `flussonic-backup run`: the local runtime, once or on the config's schedule.
 */
import {
  type BackupConfig,
  checkLeaseCoversCopy,
  loadConfigFile,
  resolveAllCredentials,
  type SourceCredentials,
} from "../functions/config.ts";
import { type Endpoints, endpointsFromEnv } from "../local/aws-clients.ts";
import { type EmbeddedEmulator, startEmbedded } from "../local/embedded.ts";
import { lineLog } from "../local/line-log.ts";
import { formatSummary, OnceTally, runOnce } from "../local/once.ts";
import { Progress } from "../local/progress.ts";
import { LocalRuntime, rateMs } from "../local/runtime.ts";
import { errorContext, explainSourceError, probeBucket } from "./error-messages.ts";

export interface RunOptions {
  configFile: string;
  once: boolean;
  embedded: string | undefined;
  verbose: boolean;
  copyTimeoutSeconds: number;
}

export async function runCommand(o: RunOptions): Promise<number> {
  errorContext.configFile = o.configFile;
  const config = loadConfigFile(o.configFile);
  errorContext.config = config;
  checkLeaseCoversCopy(config, o.configFile, o.copyTimeoutSeconds);
  const credentials = resolveAllCredentials(config, o.configFile, process.env);
  let embedded: EmbeddedEmulator | undefined;
  let endpoints: Endpoints = endpointsFromEnv(process.env);
  if (o.embedded !== undefined) {
    embedded = await startEmbedded(o.embedded);
    endpoints = embedded.endpoints;
  }
  errorContext.endpoints = endpoints;
  errorContext.embedded = o.embedded !== undefined;
  try {
    return await runWith({
      config,
      credentials,
      endpoints,
      once: o.once,
      verbose: o.verbose,
      copyTimeoutSeconds: o.copyTimeoutSeconds,
    });
  } finally {
    await embedded?.stop();
  }
}

export interface RunWithOptions {
  config: BackupConfig;
  credentials: Map<string, SourceCredentials>;
  endpoints: Endpoints;
  once: boolean;
  verbose: boolean;
  copyTimeoutSeconds: number;
  out?: NodeJS.WriteStream;
}

/** Runs the pipeline with a resolved config; returns the exit status. */
export async function runWith(o: RunWithOptions): Promise<number> {
  const out = o.out ?? process.stdout;
  const logger = lineLog(o.verbose ? "info" : "warn");
  const tally = new OnceTally();
  const progress = new Progress(o.config);
  const rt = await LocalRuntime.create({
    config: o.config,
    credentials: o.credentials,
    endpoints: o.endpoints,
    logger,
    copyTimeoutSeconds: o.copyTimeoutSeconds,
    onEvent: (e) => {
      tally.add(e);
      progress.event(e);
    },
    onBytes: (source, n) => progress.bytes(source, n),
  }).catch(async (error: unknown) => {
    // For the message: a bucket that is missing (so could not be created) or there but refused.
    await probeBucket(o.endpoints, o.config.bucket, "create or open the bucket and the copy queues");
    throw error;
  });
  progress.start();
  try {
    if (o.once) {
      const summary = await runOnce(rt, tally, { onPlan: (r) => progress.planned(r) });
      progress.stop();
      for (const e of summary.planErrors) {
        const source = o.config.sources.find((s) => s.name === e.source);
        if (source) e.message = explainSourceError(e.message, source, { ...errorContext, config: o.config });
      }
      out.write(`${formatSummary(summary, rt.now())}\n`);
      return summary.ok ? 0 : 1;
    }
    return await runForever(rt, progress, rateMs(o.config.schedule), out);
  } finally {
    progress.stop();
    await rt.close();
  }
}

/** Plans now and then on the schedule, copies continuously, until SIGINT/SIGTERM. */
async function runForever(
  rt: LocalRuntime,
  progress: Progress,
  everyMs: number,
  out: NodeJS.WriteStream,
): Promise<number> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  out.write(`Running: planning every ${Math.round(everyMs / 1000)} s; Ctrl-C to stop.\n`);
  while (!stop.signal.aborted) {
    try {
      // Sources resumed or inside their allowed hours again get their copiers back.
      await rt.startCopiers();
      progress.planned(await rt.plan());
    } catch (error) {
      out.write(`planning failed: ${(error as Error).message}\n`);
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, everyMs);
      stop.signal.addEventListener("abort", () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  return 0;
}
