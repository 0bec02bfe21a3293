/**
 * The soak (issue 14 §4): the whole backup running for N minutes against simulators with a moving
 * live edge, under random source faults, S3 faults (dev/kit/s3-fault-proxy.ts), pauses and
 * resumes, and copiers killed with SIGKILL now and then; every minute and at the end one row of
 * figures: coverage of what is due, lag per stream, RSS, open file descriptors and sockets of every
 * process, queue depths, corrupt objects (verify of the windows stored lately; all of them at the
 * end) and orphaned multipart uploads.
 *
 *   npm run soak -- --minutes 30 [--sources 3] [--streams 3] [--copiers 3] [--seed 1]
 *
 * Processes: this one (simulators, S3 fault proxy, planner every 20 s, the measurements), the
 * embedded S3/SQS emulator (dev/kit/emulator-process.ts) and the copiers (dev/soak/copier.ts).
 * Not part of `npm test`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ListMultipartUploadsCommand } from "@aws-sdk/client-s3";
import { parseConfig } from "../../functions/config/config.ts";
import type { PlanReport } from "../../functions/planner/plan-backup.ts";
import { queueDepth } from "../../functions/queue/source-queues.ts";
import { BackupStore } from "../../functions/store/backup-store.ts";
import { createS3Client } from "../../local/aws-clients.ts";
import { lineLog } from "../../local/line-log.ts";
import { LocalRuntime } from "../../local/runtime.ts";
import { verifyBackup } from "../../ops/verify.ts";
import { FlussonicSimulator, type SimFaults } from "../../simulator/simulator.ts";
import { startEmulatorProcess } from "../kit/emulator-process.ts";
import { type FaultRule, S3FaultProxy } from "../kit/s3-fault-proxy.ts";

const { values: args } = parseArgs({
  options: {
    minutes: { type: "string", default: "5" },
    sources: { type: "string", default: "3" },
    streams: { type: "string", default: "3" },
    copiers: { type: "string", default: "3" },
    seed: { type: "string", default: "1" },
    "bitrate-kbps": { type: "string", default: "400" },
    "big-kbps": { type: "string", default: "1600" },
    "no-s3-faults": { type: "boolean", default: false },
  },
});
const MINUTES = Number(args.minutes);
const SOURCES = Number(args.sources);
const STREAMS = Number(args.streams);
const COPIERS = Number(args.copiers);
if (![MINUTES, SOURCES, STREAMS, COPIERS].every((n) => Number.isFinite(n) && n > 0)) {
  process.stderr.write("soak: --minutes, --sources, --streams and --copiers take positive numbers\n");
  process.exit(2);
}

let seed = Number(args.seed) || 1;
/** Deterministic choices (mulberry32), so a run can be repeated with --seed. */
function random(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
const nowSeconds = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync(join(tmpdir(), "fb-soak-"));
const logLines: string[] = [];
const log = lineLog("warn", (l) => {
  logLines.push(l);
  if (logLines.length > 200) logLines.shift();
});
const started = nowSeconds();

// The sources: streams recorded since 20 minutes before the start, still recording (live edge).
const sims: FlussonicSimulator[] = [];
for (let i = 0; i < SOURCES; i++) {
  sims.push(
    await FlussonicSimulator.start({
      streams: Array.from({ length: STREAMS }, (_, j) => ({
        name: `cam${j + 1}`,
        // cam1 of each source is big enough for multipart uploads (windows over the 5 MiB part).
        bitrateBps:
          j === 0 ? Number(args["big-kbps"]) * 1000 : Number(args["bitrate-kbps"]) * 1000 * (0.5 + random()),
        ranges: [{ from: started - 20 * 60, to: Number.POSITIVE_INFINITY }],
      })),
      liveOnlyStreams: 0,
      seed: i + 1,
    }),
  );
}
const emulator = await startEmulatorProcess({ dir: join(dir, "emulator") });
const proxy = await S3FaultProxy.start(emulator.endpoints.s3Endpoint ?? "");
const faulty = { ...emulator.endpoints, s3Endpoint: proxy.url };
const configText = JSON.stringify({
  bucket: "soak-backup",
  maxWindowSeconds: 60,
  settleSeconds: 30,
  leaseSeconds: 1200,
  sources: sims.map((sim, i) => ({
    name: `src${i + 1}`,
    url: sim.url,
    retentionDays: 1,
    maxConcurrentCopies: 2,
    maxBandwidthMbps: 40,
    ...(i === 1
      ? { streams: [{ name: "cam1" }, { name: "cam2", format: "ts" }, { name: "cam3" }].slice(0, STREAMS) }
      : {}),
  })),
});
const config = parseConfig(configText, "soak-config.json");
// The planner (this process) goes through the faulty S3 like the copiers; measurements do not.
const planner = await LocalRuntime.create({
  config,
  credentials: new Map(),
  endpoints: faulty,
  logger: log,
  copyTimeoutSeconds: 60,
  maxReceiveCount: 10,
  retryBaseSeconds: 2,
});
const s3 = createS3Client(emulator.endpoints);
const store = new BackupStore(s3, config.bucket, config.prefix);

// The copiers, in processes of their own, on the faulty S3.
interface Copier {
  child: ChildProcess;
  exited: Promise<void>;
}
const copiers: (Copier | undefined)[] = [];
const copierScript = new URL("./copier.ts", import.meta.url).pathname;
function startCopier(slot: number): void {
  const child = spawn(process.execPath, [copierScript], {
    env: { ...process.env, FB_SOAK_COPIER: JSON.stringify({ config: configText, endpoints: faulty }) },
    stdio: ["ignore", "ignore", "pipe"],
  });
  child.stderr?.on("data", (d: Buffer) => log.debug(d.toString()));
  const exited = new Promise<void>((r) => child.on("close", () => r()));
  copiers[slot] = { child, exited };
}
for (let i = 0; i < COPIERS; i++) startCopier(i);

// Chaos.
const counts = { killed: 0, pauses: 0, sourceFaults: 0, s3Faults: 0, s3Faulted: 0, plans: 0, planErrors: 0 };
const SOURCE_FAULTS: SimFaults[] = [
  { errorRate: 0.3, errorStatus: 503, retryAfterSeconds: 1 },
  { errorRate: 0.2, errorStatus: 500 },
  { resetAfterBytes: 200_000, bodyFaultRate: 0.3 },
  { truncateAfterFragments: 5, bodyFaultRate: 0.3 },
  { latencyMs: 1500 },
  { bodyBytesPerSecond: 100_000, bodyFaultRate: 0.3 },
  { target: "index", errorRate: 0.3, errorStatus: 502 },
];
const S3_FAULTS: FaultRule[] = [
  { op: "UploadPart", fault: "slow-down" },
  { op: "UploadPart", fault: "reset-request" },
  { op: "CompleteMultipartUpload", fault: "drop-response" },
  { op: "CompleteMultipartUpload", fault: "500" },
  { op: "CreateMultipartUpload", fault: "request-timeout" },
  { op: "PutObject", kind: "record", fault: "drop-response" },
  { op: "PutObject", kind: "record", fault: "500" },
  { op: "PutObject", kind: ["manifest", "catalog"], fault: "slow-down" },
  { op: "GetObject", fault: "500" },
  { op: "GetObject", kind: "manifest", fault: "reset-response" },
  { op: "ListObjectsV2", fault: "slow-down" },
  { op: "HeadObject", fault: "500" },
  { op: "HeadObject", fault: "expired-token" },
  { op: "PutObject", kind: "window", fault: "delay", delayMs: 3000 },
];
let chaosOn = true;
const paused = new Set<string>();

async function chaos(): Promise<void> {
  const next = { kill: 60 + random() * 120, pause: 90 + random() * 120, source: 20, s3: 15 };
  let t = 0;
  while (chaosOn) {
    await sleep(5000);
    t += 5;
    if (!chaosOn) break;
    if (t >= next.kill) {
      const slot = Math.floor(random() * COPIERS);
      const c = copiers[slot];
      if (c) {
        c.child.kill("SIGKILL");
        await c.exited;
        counts.killed++;
        setTimeout(() => chaosOn && startCopier(slot), 5000);
      }
      next.kill = t + 90 + random() * 120;
    }
    if (t >= next.pause) {
      const source = pick(config.sources).name;
      if (!paused.has(source)) {
        paused.add(source);
        counts.pauses++;
        await store.writeControl(source, { paused: true, reason: "soak", at: nowSeconds() });
        setTimeout(
          () => {
            void store.writeControl(source, undefined).finally(() => paused.delete(source));
          },
          (45 + random() * 60) * 1000,
        );
      }
      next.pause = t + 120 + random() * 120;
    }
    if (t >= next.source) {
      const sim = pick(sims);
      sim.setFaults(pick(SOURCE_FAULTS));
      counts.sourceFaults++;
      setTimeout(() => sim.setFaults({}), (20 + random() * 40) * 1000);
      next.source = t + 20 + random() * 30;
    }
    if (t >= next.s3 && !args["no-s3-faults"]) {
      proxy.inject({
        ...pick(S3_FAULTS),
        times: 1 + Math.floor(random() * 3),
        skip: Math.floor(random() * 5),
      });
      counts.s3Faults++;
      next.s3 = t + 10 + random() * 20;
    }
  }
}

// The planner every 20 s.
let lastPlan: PlanReport | undefined;
const streamState = new Map<string, { copyable: number; backedUp: number; head: number }>();
let planning = true;
async function plannerLoop(): Promise<void> {
  while (planning) {
    try {
      const report = await planner.plan();
      lastPlan = report;
      counts.plans++;
      for (const s of report.sources) {
        counts.planErrors += s.errors.length;
        for (const st of s.streams) {
          streamState.set(`${s.source}/${st.stream}`, {
            copyable: st.copyableSeconds,
            backedUp: st.backedUpSeconds,
            head: st.head,
          });
        }
      }
    } catch (error) {
      counts.planErrors++;
      log.warn("soak: planner run failed", { error: (error as Error).message });
    }
    await sleep(20_000);
  }
}

// Measurements.
interface ProcFigures {
  rssMiB: number;
  fds: number;
  sockets: number;
}
function proc(pid: number | undefined): ProcFigures | undefined {
  if (!pid) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    let fds = 0;
    let sockets = 0;
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      fds++;
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:")) sockets++;
      } catch {
        // closed meanwhile
      }
    }
    return { rssMiB: rssKiB / 1024, fds, sockets };
  } catch {
    return undefined;
  }
}

interface Row {
  minute: string;
  duePct: number;
  lagP50: number;
  lagMax: number;
  lags: Map<string, number>;
  queue: number;
  inFlight: number;
  dlq: number;
  verified: number;
  corrupt: number;
  missing: number;
  unrecorded: number;
  orphans: number;
  openUploads: number;
  procs: Map<string, ProcFigures>;
}
const rows: Row[] = [];
let verifiedUpTo = started - 20 * 60;
/** S3 requests faulted, by operation and fault. */
const faultedBy = new Map<string, number>();

async function measure(label: string, fullVerify: boolean): Promise<Row> {
  const now = nowSeconds();
  let copyable = 0;
  let backedUp = 0;
  const lags = new Map<string, number>();
  for (const [name, s] of streamState) {
    copyable += s.copyable;
    backedUp += s.backedUp;
    lags.set(name, s.head > 0 ? now - s.head : Number.NaN);
  }
  const sortedLags = [...lags.values()].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  let queue = 0;
  let inFlight = 0;
  let dlq = 0;
  for (const q of planner.queues.values()) {
    const d = await queueDepth(planner.sqs, q.url);
    queue += d.visible + d.delayed;
    inFlight += d.inFlight;
    const dead = await queueDepth(planner.sqs, q.deadLetterUrl);
    dlq += dead.visible + dead.inFlight + dead.delayed;
  }
  // Verify what was stored since the last check (all of it at the end): size and SHA-256 against
  // the records and catalogs, media completeness.
  // Each minute only the span every stream has stored since the last check (copies in flight
  // meanwhile would show as objects without a record).
  const heads = [...streamState.values()].map((s) => s.head);
  const to = Math.min(...heads, now - 90);
  const report =
    fullVerify || to > verifiedUpTo
      ? await verifyBackup({
          config,
          store,
          from: fullVerify ? undefined : verifiedUpTo,
          to: fullVerify ? undefined : to,
        })
      : { checked: 0, problems: [] };
  if (!fullVerify && to > verifiedUpTo) verifiedUpTo = to;
  const kinds = (k: string[]) => report.problems.filter((p) => k.includes(p.kind)).length;
  // Uploads older than a copy could take (plus the copier's stale-upload margin) are orphans.
  const uploads = (await s3.send(new ListMultipartUploadsCommand({ Bucket: config.bucket }))).Uploads ?? [];
  const orphans = uploads.filter(
    (u) => u.Initiated && now - u.Initiated.getTime() / 1000 > 60 + 60 + 60,
  ).length;
  const procs = new Map<string, ProcFigures>();
  const add = (name: string, pid: number | undefined) => {
    const f = proc(pid);
    if (f) procs.set(name, f);
  };
  add("soak", process.pid);
  add("emulator", emulator.pid);
  for (const [i, c] of copiers.entries()) {
    add(`copier${i + 1}`, c?.child.exitCode === null ? c.child.pid : undefined);
  }
  const row: Row = {
    minute: label,
    duePct: copyable > 0 ? (100 * backedUp) / copyable : 0,
    lagP50: sortedLags[Math.floor(sortedLags.length / 2)] ?? Number.NaN,
    lagMax: sortedLags.at(-1) ?? Number.NaN,
    lags,
    queue,
    inFlight,
    dlq,
    verified: report.checked,
    corrupt: kinds(["corrupt", "short", "replaced"]),
    missing: kinds(["missing"]),
    unrecorded: kinds(["unrecorded"]),
    orphans,
    openUploads: uploads.length,
    procs,
  };
  rows.push(row);
  // The proxy's request log is for tests; the soak keeps only its counts.
  for (const r of proxy.log) {
    if (!r.fault) continue;
    counts.s3Faulted++;
    const k = `${r.op} ${r.fault}`;
    faultedBy.set(k, (faultedBy.get(k) ?? 0) + 1);
  }
  proxy.log.length = 0;
  return row;
}

const HEADER =
  "| min | due covered | lag p50/max s | queue/in flight/DLQ | verified | corrupt | missing | unrecorded | orphans (open) | RSS MiB soak/emu/copiers | fds soak/emu/copiers | sockets soak/emu/copiers |";
const RULE = `|${HEADER.slice(1, -1)
  .split("|")
  .map((c) => "-".repeat(c.length))
  .join("|")}|`;
function copierFigure(r: Row, f: (p: ProcFigures) => number): string {
  return [...r.procs]
    .filter(([n]) => n.startsWith("copier"))
    .map(([, p]) => f(p).toFixed(0))
    .join(",");
}
function formatRow(r: Row): string {
  const p = (name: string, f: (p: ProcFigures) => number) => {
    const x = r.procs.get(name);
    return x ? f(x).toFixed(0) : "-";
  };
  const cells = [
    r.minute,
    `${r.duePct.toFixed(1)}%`,
    Number.isFinite(r.lagMax) ? `${r.lagP50}/${r.lagMax}` : "-",
    `${r.queue}/${r.inFlight}/${r.dlq}`,
    String(r.verified),
    String(r.corrupt),
    String(r.missing),
    String(r.unrecorded),
    `${r.orphans} (${r.openUploads})`,
    `${p("soak", (x) => x.rssMiB)}/${p("emulator", (x) => x.rssMiB)}/${copierFigure(r, (x) => x.rssMiB)}`,
    `${p("soak", (x) => x.fds)}/${p("emulator", (x) => x.fds)}/${copierFigure(r, (x) => x.fds)}`,
    `${p("soak", (x) => x.sockets)}/${p("emulator", (x) => x.sockets)}/${copierFigure(r, (x) => x.sockets)}`,
  ];
  return `| ${cells.join(" | ")} |`;
}

const out = (s: string) => process.stdout.write(`${s}\n`);
out(
  `soak: ${MINUTES} min, ${SOURCES} source(s) x ${STREAMS} stream(s), ${COPIERS} copier process(es), ` +
    `S3 faults ${args["no-s3-faults"] ? "off" : "on"}, state in ${dir}`,
);
out(HEADER);
out(RULE);
const chaosDone = chaos();
const planDone = plannerLoop();
for (let m = 1; m <= MINUTES; m++) {
  await sleep(Math.max(0, started + m * 60 - nowSeconds()) * 1000);
  out(formatRow(await measure(String(m), false)));
}

// The end: faults off, every source resumed, copiers left to catch up (at most 3 minutes), then a
// verify of everything stored.
chaosOn = false;
await chaosDone;
proxy.clear();
for (const sim of sims) sim.setFaults({});
for (const s of config.sources) await store.writeControl(s.name, undefined);
for (let i = 0; i < COPIERS; i++) if (!copiers[i] || copiers[i]!.child.exitCode !== null) startCopier(i);
const settleUntil = Date.now() + 180_000;
while (Date.now() < settleUntil) {
  await sleep(10_000);
  const caughtUp = [...streamState.values()].every((s) => s.backedUp >= s.copyable);
  if (caughtUp && lastPlan && lastPlan.at > nowSeconds() - 25) break;
}
out(formatRow(await measure("end", true)));
planning = false;
await planDone;

out("");
out("Lag per stream at the end (seconds behind the real time; the settle margin is 30 s, windows 60 s):");
const last = rows.at(-1)!;
out(
  [...last.lags]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([n, l]) => `${n} ${l}`)
    .join(", "),
);
out(
  `Chaos: ${counts.killed} copier(s) killed (SIGKILL), ${counts.pauses} pause(s), ${counts.sourceFaults} source fault spell(s), ` +
    `${counts.s3Faults} S3 fault rule(s) injected, ${counts.s3Faulted} S3 request(s) faulted; ${counts.plans} planner run(s), ` +
    `${counts.planErrors} planning error(s) (faults; each retried by the next run).`,
);
const first = rows[0]!;
const rssGrowth = (name: string) => {
  const a = first.procs.get(name)?.rssMiB;
  const b = last.procs.get(name)?.rssMiB;
  return a !== undefined && b !== undefined ? `${a.toFixed(0)} -> ${b.toFixed(0)} MiB` : "-";
};
out(
  `S3 requests faulted: ${
    [...faultedBy]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, n]) => `${k} ${n}`)
      .join(", ") || "none"
  }.`,
);
out(`RSS first minute -> end: soak ${rssGrowth("soak")}, emulator ${rssGrowth("emulator")}.`);
const ok = last.corrupt === 0 && last.orphans === 0 && last.missing === 0 && last.unrecorded === 0;
out(ok ? "No corrupt object, no missing window, no orphaned upload." : "PROBLEMS: see the last row.");
if (!ok) for (const l of logLines.slice(-20)) out(`  ${l}`);

for (const c of copiers) {
  if (c && c.child.exitCode === null) {
    c.child.kill("SIGTERM");
    await c.exited;
  }
}
await planner.close();
await proxy.close();
for (const sim of sims) await sim.close();
await emulator.stop();
rmSync(dir, { recursive: true, force: true });
process.exit(ok ? 0 : 1);
