/**
 * `npm start`: the whole product on one machine. A simulated Flussonic (a handful of streams, a few
 * hours of archive with gaps, a live edge that moves with the real clock), the embedded S3/SQS
 * emulator kept in a directory, one `run --once`, and where to look afterwards.
 */

import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseConfig } from "../../functions/config/config.ts";
import { startEmbedded } from "../../local/embedded.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";
import { runWith } from "./run.ts";
import { isoTime } from "./time-arg.ts";

export interface DemoOptions {
  dir: string;
  streams: number;
  hours: number;
  out?: NodeJS.WriteStream;
}

export async function demoCommand(o: DemoOptions): Promise<number> {
  const out = o.out ?? process.stdout;
  if (!Number.isInteger(o.streams) || o.streams < 1 || o.streams > 50) {
    out.write(`--streams: expected a whole number from 1 to 50, got ${o.streams}\n`);
    return 2;
  }
  if (!(o.hours > 0 && o.hours <= 48)) {
    out.write(`--hours: expected a number of hours above 0 and at most 48, got ${o.hours}\n`);
    return 2;
  }
  const days = o.hours / 24;
  // Real H.264/AAC (generated once with ffmpeg) when ffmpeg is here, so that `restore --demo`
  // gives a playable file; otherwise synthetic bytes (everything but restore works the same).
  const media = hasFfmpeg() ? "real" : "synthetic";
  // The simulated server keeps 10 minutes more than the backup's retention, so that no copy races
  // the server deleting the oldest seconds of the window it is fetching.
  const simSettings = {
    streams: o.streams,
    days: days + 600 / 86_400,
    seed: 1,
    bitrateBps: 24_000,
    media,
  } as const;
  const sim = await FlussonicSimulator.start(simSettings);
  const dir = resolve(o.dir);
  const embedded = await startEmbedded(join(dir, "emulator"));
  try {
    out.write(`Simulated Flussonic at ${sim.url} with ${o.streams} streams, ${o.hours} h of archive each:\n`);
    for (const s of sim.streams()) {
      const ranges = sim.rangesOf(s.name);
      const gaps = ranges.length - 1;
      const last = ranges.at(-1)!;
      const kbps = Math.round((sim.body(s.name, last.to - 60, 60, "mp4").length * 8) / 60 / 1000);
      out.write(`  ${s.name}  ${kbps} kbit/s, ${gaps} gap(s) in the archive\n`);
    }
    out.write(
      media === "real"
        ? "Media: real H.264/AAC video (a test pattern made with ffmpeg): restored files play.\n"
        : "Media: synthetic bytes (ffmpeg not found): `restore --demo` needs real media, install ffmpeg.\n",
    );
    out.write(`Embedded S3/SQS emulator, state kept in ${dir}\n\n`);
    const configText = JSON.stringify({
      bucket: "demo-backup",
      sources: [
        { name: "demo", url: sim.url, retentionDays: days, maxConcurrentCopies: 2, maxBandwidthMbps: 80 },
      ],
    });
    const config = parseConfig(configText, "(demo configuration)");
    // For the operator commands' --demo (status, verify, restore, redrive): the configuration and
    // the simulator's settings (a simulator started again with them serves the same archive).
    writeFileSync(join(dir, "config.json"), `${configText}\n`);
    writeFileSync(join(dir, "simulator.json"), `${JSON.stringify(simSettings)}\n`);
    const restoreFrom = demoRestoreStart(sim.rangesOf("cam1"), days);
    const status = await runWith({
      config,
      credentials: new Map([["demo", { type: "none" }]]),
      endpoints: embedded.endpoints,
      once: true,
      verbose: false,
      copyTimeoutSeconds: 900,
      out,
    });
    out.write(
      [
        "",
        `The backup is in bucket "demo-backup" of the emulator (objects under ${join(dir, "emulator", "s3")}).`,
        "Layout: flussonic/<source>/<stream>/<UTC date>/<HHMMSS>Z-<seconds>s.mp4; manifests under flussonic/.backup/.",
        "Run `npm start` again: only what was recorded since is copied.",
        "Look at it with the operator commands (same data, --demo):",
        "  npx flussonic-backup status --demo [--html status.html]",
        "  npx flussonic-backup verify --demo",
        `  npx flussonic-backup restore --demo --source demo --stream cam1 --from ${isoTime(restoreFrom)} --to ${isoTime(restoreFrom + 600)} --out cam1.mp4`,
        "Watch it (player, timelines, a delayed channel): npx flussonic-backup serve --demo --no-auth, then open http://127.0.0.1:8090/",
        "Your own server: write a config (see config/example.jsonc), then",
        "  npx flussonic-backup run --config my-config.jsonc --once --embedded ./backup-state",
        "  (then the operator commands with the same --embedded ./backup-state instead of --demo)",
        "",
      ].join("\n"),
    );
    return status;
  } finally {
    await embedded.stop();
    await sim.close();
  }
}

/**
 * Start of the 10 minutes the demo's `restore` line offers: a whole 10-minute window of cam1 that
 * ended at least a quarter of an hour before the live edge (well past the settle margin, so the
 * demo copied it), the newest such inside one recorded range (the simulated archive has gaps,
 * which restore would rightly refuse), and inside the retention.
 */
export function demoRestoreStart(ranges: readonly { from: number; to: number }[], days: number): number {
  const now = ranges.at(-1)?.to ?? Math.floor(Date.now() / 1000);
  const latestEnd = now - 900;
  const oldest = now - days * 86_400;
  for (let i = ranges.length - 1; i >= 0; i--) {
    const r = ranges[i]!;
    const from = Math.floor(Math.min(r.to, latestEnd) / 600) * 600 - 600;
    if (from >= r.from && from >= oldest) return from;
  }
  return Math.floor(latestEnd / 600) * 600 - 600;
}

function hasFfmpeg(): boolean {
  return spawnSync("ffmpeg", ["-version"], { stdio: "ignore" }).status === 0;
}
