/**
 * Figure 5: one planning run over many streams with weeks of fragmented ranges each (a simulated
 * index, dev/bench/simulated-index.ts), against the emulator: CPU and wall time of the planner's own
 * process and its S3/SQS requests. First run: an empty backup (no manifests). The second runs start
 * from the steady state: every stream has a manifest covering its archive but the newest window, as
 * the current planner writes manifests (coverage clipped at the retention start, so none is checked
 * against a listing of stored windows: that is a one-off for manifests of older versions), and a
 * planning run one schedule period earlier has leased what was due then. Second run in a fresh
 * process (a cold Lambda container): that run was made by another process. Third: the second run in
 * a long-lived process (the local service, a warm container), which made that run itself and holds
 * the manifests (read only when the listing of the source's manifests shows another ETag,
 * functions/store/manifest-cache.ts). Both second runs plan and write the same; they differ only in
 * what the process holds.
 * When a run misses the CPU target it is repeated, profiled (the measured run alone, by the
 * inspector's profiler in the planner's process), on the same state (the backup as it was before
 * the measured run) to show where time goes.
 */
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { DeleteObjectsCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { manifestKey } from "../../functions/domain/keys.ts";
import type { Manifest } from "../../functions/domain/manifest.ts";
import { clipRanges, totalSeconds } from "../../functions/domain/ranges.ts";
import { ensureBucket, ensureQueues } from "../../functions/queue/source-queues.ts";
import { forEachLimited } from "../../functions/shared/for-each-limited.ts";
import { createSqsClient } from "../../local/aws-clients.ts";
import type { BenchContext } from "./bench-context.ts";
import { cpuByArea, type HotFunction, hotFunctions } from "./cpu-profile.ts";
import { type FigureResult, verdict } from "./figures.ts";
import type { PlannerRunInput, PlannerRunOutput } from "./planner-run.ts";
import { runNodeScript } from "./processes.ts";
import { indexNow, SimulatedIndex } from "./simulated-index.ts";

const BUCKET = "bench-planner";
const SOURCE = "scale";
const PREFIX = "flussonic/";
/** CPU targets (issue 22): a second run under 3 s, a first run (a new backup) under 8 s. */
const CPU_LIMIT_SECONDS = { first: 8, second: 3 } as const;
/** S3 requests per stream that still count as O(streams). */
const S3_PER_STREAM_LIMIT = 2;
/**
 * Requests per source on top: the pause switch, the records listing, the listing of stream folders
 * (first run) and the deletion of compacted records; and the listing of the source's manifests, a
 * page per 1,000 streams (manifestListPages).
 */
const S3_PER_SOURCE = 4;
const manifestListPages = (streams: number) => Math.max(1, Math.ceil(streams / 1000));
/** The planner's default schedule, rate(5 minutes): the run before a warm process's measured run. */
const WARM_PERIOD_SECONDS = 300;

interface PlannerRun extends PlannerRunOutput {
  label: string;
  processWallSeconds: number;
  s3PerStream: number;
  s3Total: number;
  /** 1-minute load average of the machine before and after the measured run. */
  load: [number, number];
  profile?: HotFunction[];
  profileByArea?: { area: string; share: number }[];
}

export async function measurePlannerScale(ctx: BenchContext): Promise<FigureResult> {
  const days = 30;
  const shape = { streams: ctx.smoke ? 200 : 10_000, days, now: indexNow(days), seed: 7 };
  await ensureBucket(ctx.s3, BUCKET);
  const sqs = createSqsClient(ctx.emulator.endpoints);
  const queue = await ensureQueues(sqs, SOURCE, { visibilityTimeoutSeconds: 930, maxReceiveCount: 5 });
  sqs.destroy();
  const input: PlannerRunInput = {
    endpoints: ctx.emulator.endpoints,
    bucket: BUCKET,
    queueUrl: queue.url,
    source: SOURCE,
    index: shape,
    maxConcurrentCopies: 4,
    maxBandwidthMbps: 100,
  };
  const profileDir = join(ctx.outDir, "profiles");
  /** `prepare` sets the backup's state up before the run, and again before a profiled repeat. */
  const run = async (
    label: string,
    limit: number,
    prepare: () => Promise<void>,
    warmupAt?: number,
  ): Promise<PlannerRun & { limit: number }> => {
    await prepare();
    ctx.progress(`planner: ${label}, ${shape.streams} streams x ${days} days`);
    const loadBefore = loadavg()[0]!;
    const runInput = warmupAt === undefined ? input : { ...input, warmupAt };
    const r = await runNodeScript<PlannerRunOutput>("planner-run.ts", runInput);
    const loadAfter = loadavg()[0]!;
    const s3Requests = Object.values(r.output.s3Requests).reduce((n, v) => n + v, 0);
    const result: PlannerRun & { limit: number } = {
      ...r.output,
      label,
      limit,
      processWallSeconds: r.wallSeconds,
      s3PerStream: s3Requests / r.output.streams,
      s3Total: s3Requests,
      load: [loadBefore, loadAfter],
    };
    if (result.cpuSeconds >= limit && !ctx.smoke) {
      // The measured run changed the backup (manifests and leases written): the profiled repeat
      // starts from the same state as the measured run, or it would profile another case.
      await prepare();
      // Profiled from inside, the measured run alone: a warm process's run before it (which reads
      // and writes every manifest) would otherwise make most of the profile.
      ctx.progress(`planner: ${label} again, profiled`);
      rmSync(profileDir, { recursive: true, force: true });
      mkdirSync(profileDir, { recursive: true });
      const file = join(profileDir, "planner-run.cpuprofile");
      await runNodeScript<PlannerRunOutput>("planner-run.ts", { ...runInput, profileTo: file });
      if (existsSync(file)) {
        const all = hotFunctions(file, Number.POSITIVE_INFINITY);
        result.profile = all.slice(0, 15);
        result.profileByArea = cpuByArea(all).slice(0, 10);
      }
    }
    return result;
  };

  const first = await run("first run (no manifests)", CPU_LIMIT_SECONDS.first, () => deleteManifests(ctx));
  const index = new SimulatedIndex(shape);
  const steadyState = async () => {
    ctx.progress(
      `planner: writing ${shape.streams} manifests (the backup complete but for the newest window)`,
    );
    await writeSteadyStateManifests(ctx, index, shape.now, days);
  };
  // The run before the measured one, one schedule period earlier, made in a process of its own
  // (a cold Lambda container follows a run of another container): the fresh second run starts from
  // the same backup as the long-lived one (the leases of that run in the manifests), so the two
  // differ only in what the process holds.
  const runBefore = async () => {
    await steadyState();
    ctx.progress(`planner: the run ${WARM_PERIOD_SECONDS} s before, in a process of its own`);
    await runNodeScript<PlannerRunOutput>("planner-run.ts", {
      ...input,
      at: shape.now - WARM_PERIOD_SECONDS,
    });
  };
  const second = await run(
    `second run in a fresh process (a run ${WARM_PERIOD_SECONDS} s before in another)`,
    CPU_LIMIT_SECONDS.second,
    runBefore,
  );
  // The local service and a warm Lambda container: the run before (one schedule period earlier) in
  // the same process, which holds the manifests it wrote and reads them with If-None-Match.
  const warm = await run(
    `second run in a long-lived process (a run ${WARM_PERIOD_SECONDS} s before in it)`,
    CPU_LIMIT_SECONDS.second,
    steadyState,
    shape.now - WARM_PERIOD_SECONDS,
  );

  const rows: FigureResult["rows"] = [];
  for (const r of [first, second, warm]) {
    const s3 = Object.entries(r.s3Requests)
      .map(([k, v]) => `${v} ${k}`)
      .join(", ");
    rows.push(
      {
        figure: 5,
        what: `planner ${r.label}: CPU (wall)`,
        measured: `${r.cpuSeconds.toFixed(1)} s (${r.wallSeconds.toFixed(1)} s); simulated index ${r.indexCpuSeconds.toFixed(1)} s of it`,
        target: `< ${r.limit} s CPU`,
        verdict: verdict(r.cpuSeconds < r.limit),
      },
      {
        figure: 5,
        what: `planner ${r.label}: S3 requests per stream`,
        measured: `${r.s3PerStream.toFixed(2)} (${s3})`,
        target: `<= ${S3_PER_STREAM_LIMIT} (+ ${S3_PER_SOURCE + manifestListPages(r.streams)} per source)`,
        verdict: verdict(
          r.s3Total <= S3_PER_STREAM_LIMIT * r.streams + S3_PER_SOURCE + manifestListPages(r.streams) &&
            r.errors === 0,
        ),
      },
      {
        figure: 5,
        what: `planner ${r.label}: SQS SendMessageBatch for ${r.planned} windows`,
        measured: String(r.sqsBatchCalls),
        target: `<= ${Math.ceil(r.planned / 10)} (planned / 10)`,
        verdict: verdict(r.sqsBatchCalls <= Math.ceil(r.planned / 10)),
      },
    );
  }
  const notes = [
    `${shape.streams} streams, ${first.rangesPerStream.toFixed(0)} recorded ranges each on average over ${days} days; ` +
      "the index is in the planner's process (no HTTP, no JSON parsing of range lists; its own CPU, the simulated index, is shown and counts in the figure), S3 and SQS are the emulator in its own process. " +
      `Second runs: the manifests are as the current planner writes them (coverage clipped at the retention start; one written by an older version costs one listing of its stream's folder, once), and a run ${WARM_PERIOD_SECONDS} s earlier leased what was due then: in another process for the fresh run, in the same process for the long-lived one. ` +
      "SendMessageBatch calls are bounded by the planner's per-run budget (windows the copiers can start before the leases end), not by the archive size.",
    `Load average (1 min) before / after: first run ${first.load.map((l) => l.toFixed(2)).join(" / ")}, fresh second run ${second.load.map((l) => l.toFixed(2)).join(" / ")}, warm second run ${warm.load.map((l) => l.toFixed(2)).join(" / ")} (2 cores; CPU seconds grow when other jobs share them).`,
    `Garbage collection in the measured runs (scavenges / mark-compacts, main-thread pause, heap at the end): ${[
      gcOf("first run", first),
      gcOf("fresh second run", second),
      gcOf("warm second run", warm),
    ].join("; ")}.`,
  ];
  for (const r of [first, second, warm]) {
    if (!r.profileByArea) continue;
    const areas = r.profileByArea
      .slice(0, 6)
      .map((a) => `${a.area} ${(a.share * 100).toFixed(0)}%`)
      .join(", ");
    const top = (r.profile ?? [])
      .slice(0, 4)
      .map((h) => `${h.function} (${h.where}) ${(h.share * 100).toFixed(0)}%`)
      .join("; ");
    notes.push(
      `Planner ${r.label} misses the CPU target; profile (self time) by area: ${areas}. Top functions: ${top}.`,
    );
  }
  if (first.errors + second.errors + warm.errors > 0)
    notes.push(`planner errors: ${first.firstError ?? second.firstError ?? warm.firstError}`);
  return {
    figure: 5,
    title: "Planner scale (one planning run, simulated index)",
    rows,
    details: { shape, runs: [first, second, warm] },
    notes,
  };
}

function gcOf(name: string, r: PlannerRun): string {
  return `${name} ${r.gc.minor} / ${r.gc.major}, ${(r.gc.pauseMs / 1000).toFixed(2)} s, ${r.gc.heapMiB} MiB`;
}

/** The first run's state: no manifest at all (those of an earlier run and their snapshots deleted). */
async function deleteManifests(ctx: BenchContext): Promise<void> {
  for (const folder of ["manifests", "manifest-snapshots"])
    await deleteAll(ctx, `${PREFIX}.backup/${folder}/`);
}

async function deleteAll(ctx: BenchContext, Prefix: string): Promise<void> {
  for (;;) {
    const page = await ctx.s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix }));
    const keys = (page.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
    if (keys.length === 0) return;
    await ctx.s3.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: keys, Quiet: true } }));
  }
}

/** Manifests as copiers would have left them: everything recorded before the newest window stored. */
async function writeSteadyStateManifests(
  ctx: BenchContext,
  index: SimulatedIndex,
  now: number,
  days: number,
): Promise<void> {
  const retentionStart = Math.floor(now - days * 86_400);
  const storedUntil = Math.floor((now - 120) / 600) * 600 - 600;
  await forEachLimited(index.streams, 32, async (s) => {
    const covered = clipRanges(index.rangesOf(s.name), retentionStart, storedUntil);
    const seconds = totalSeconds(covered);
    const manifest: Manifest = {
      version: 1,
      source: SOURCE,
      stream: s.name,
      covered,
      leases: [],
      windows: Math.ceil(seconds / 600),
      bytes: Math.round((seconds * s.bitrateBps) / 8),
      coverageClipped: true,
      head: covered.at(-1)?.to ?? 0,
      updatedAt: now - 300,
    };
    await ctx.s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: manifestKey(PREFIX, SOURCE, s.name),
        Body: JSON.stringify(manifest),
        ContentType: "application/json",
      }),
    );
  });
}
