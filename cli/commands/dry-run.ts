/**
 * `flussonic-backup run --dry-run`: one planner run as usual (the sources' indexes, the manifests,
 * the pending records, the budget), printed per source and stream (windows, seconds, estimated
 * bytes and time at the source's cap), with nothing changed: no queue message, no lease, no
 * manifest, catalog or record write, no bucket or queue created.
 */
import { HeadBucketCommand, S3ServiceException } from "@aws-sdk/client-s3";
import { loadConfigFile, resolveAllCredentials, type SourceConfig } from "../../functions/config/config.ts";
import { type PlanReport, planBackup, type SourcePlan } from "../../functions/planner/plan-backup.ts";
import { CopyQueue } from "../../functions/queue/copy-queue.ts";
import { openSource } from "../../functions/source/open-source.ts";
import { BackupStore } from "../../functions/store/backup-store.ts";
import {
  createS3Client,
  createSqsClient,
  type Endpoints,
  endpointsFromEnv,
} from "../../local/aws-clients.ts";
import { type EmbeddedEmulator, startEmbedded } from "../../local/embedded.ts";
import { lineLog } from "../../local/line-log.ts";
import { formatBytes, formatDuration } from "../../ops/progress.ts";
import { errorContext, explainSourceError } from "./error-messages.ts";
import { isoTime } from "./time-arg.ts";

export interface DryRunOptions {
  configFile: string;
  embedded: string | undefined;
  copyTimeoutSeconds: number;
  out?: { write(s: string): unknown };
}

/** Windows listed per stream before "… n more". */
const LISTED_WINDOWS = 12;

/** A backup whose bucket does not exist yet (`run` would create it): nothing stored, nothing pending. */
class EmptyBackupStore extends BackupStore {
  override async pendingRecords(): ReturnType<BackupStore["pendingRecords"]> {
    return { keys: [], byStream: new Map() };
  }
  override async *listObjects(): ReturnType<BackupStore["listObjects"]> {}
}

/** Exit status: 0, or 1 when planning failed for a source or stream. */
export async function dryRunCommand(o: DryRunOptions): Promise<number> {
  const out = o.out ?? process.stdout;
  errorContext.configFile = o.configFile;
  const config = loadConfigFile(o.configFile);
  errorContext.config = config;
  const credentials = resolveAllCredentials(config, o.configFile, process.env);
  let embedded: EmbeddedEmulator | undefined;
  let endpoints: Endpoints = endpointsFromEnv(process.env);
  if (o.embedded !== undefined) {
    // The dry run writes nothing, not even the emulator's database: the stored objects are read.
    embedded = await startEmbedded(o.embedded, { readOnly: true });
    endpoints = embedded.endpoints;
  }
  errorContext.endpoints = endpoints;
  errorContext.embedded = o.embedded;
  const s3 = createS3Client(endpoints);
  const sqs = createSqsClient(endpoints);
  const clients = new Map(
    config.sources.map((s) => [s.name, openSource(s, credentials.get(s.name) ?? { type: "none" })]),
  );
  try {
    const bucketExists = await s3.send(new HeadBucketCommand({ Bucket: config.bucket })).then(
      () => true,
      (error: unknown) => {
        if (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404) return false;
        throw error;
      },
    );
    const store = new (bucketExists ? BackupStore : EmptyBackupStore)(s3, config.bucket, config.prefix);
    const report = await planBackup({
      config,
      store,
      // Never sent to in a dry run.
      queue: new CopyQueue(sqs, (source) => {
        throw new Error(`dry run: nothing is queued (source ${source})`);
      }),
      flussonic: (name) => clients.get(name)!,
      now: () => Math.floor(Date.now() / 1000),
      copyTimeoutSeconds: o.copyTimeoutSeconds,
      logger: lineLog("error"),
      dryRun: true,
    });
    out.write(
      `Dry run: nothing queued, leased or written${bucketExists ? "" : ` (bucket "${config.bucket}" does not exist yet; \`run\` creates it)`}.\n`,
    );
    out.write(formatDryRun(report, config.sources));
    return report.sources.every((s) => s.errors.length === 0) ? 0 : 1;
  } finally {
    await Promise.all([...clients.values()].map((c) => c.close()));
    s3.destroy();
    sqs.destroy();
    await embedded?.stop();
  }
}

/** Per source and stream: what one planner run would queue. */
export function formatDryRun(report: PlanReport, sources: readonly SourceConfig[]): string {
  const lines: string[] = [];
  for (const s of report.sources) {
    const source = sources.find((x) => x.name === s.source)!;
    const capBps = source.maxBandwidthMbps * 1_000_000;
    const atCap = (bytes: number) => formatDuration((bytes * 8) / capBps);
    const seconds = (p: SourcePlan["planned"]) => p.reduce((n, m) => n + m.duration, 0);
    if (s.paused) {
      lines.push(`${s.source} (${source.url}): paused, nothing would be planned.`);
      continue;
    }
    lines.push(
      `${s.source} (${source.url}): would copy ${s.planned.length} window(s), ${formatDuration(seconds(s.planned))} of video, ` +
        `~${formatBytes(s.plannedBytes)}, ~${atCap(s.plannedBytes)} at the cap of ${source.maxBandwidthMbps} Mbit/s` +
        `${s.deferred > 0 ? `; ${s.deferred} more window(s) left for later runs` : ""}`,
    );
    for (const st of s.streams) {
      const windows = s.planned.filter((m) => m.stream === st.stream);
      lines.push(
        `  ${st.stream}: ${windows.length} window(s) of up to ${st.windowSeconds} s, ${formatDuration(seconds(windows))}, ` +
          `~${formatBytes(st.plannedBytes)}, ~${atCap(st.plannedBytes)} at the cap` +
          `${st.deferred > 0 ? `; ${st.deferred} deferred` : ""}; backed up ${formatDuration(st.backedUpSeconds)} of ${formatDuration(st.copyableSeconds)} due`,
      );
      const sorted = [...windows].sort((a, b) => a.from - b.from);
      for (const m of sorted.slice(0, LISTED_WINDOWS)) {
        lines.push(`    ${isoTime(m.from)} +${m.duration}s`);
      }
      if (sorted.length > LISTED_WINDOWS) lines.push(`    … ${sorted.length - LISTED_WINDOWS} more`);
    }
    for (const e of s.errors) {
      lines.push(
        `  planning failed${e.stream ? ` for ${e.stream}` : ""}: ${explainSourceError(e.message, source)}`,
      );
    }
  }
  return `${lines.join("\n")}\n`;
}
