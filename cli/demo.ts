/**
 * `npm start`: the whole product on one machine. A simulated Flussonic (a handful of streams, a few
 * hours of archive with gaps, a live edge that moves with the real clock), the embedded S3/SQS
 * emulator kept in a directory, one `run --once`, and where to look afterwards.
 */
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseConfig } from "../functions/config.ts";
import { startEmbedded } from "../local/embedded.ts";
import { FlussonicSimulator } from "../tools/simulator/simulator.ts";
import { runWith } from "./run.ts";

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
  const simSettings = { streams: o.streams, days, seed: 1, bitrateBps: 24_000 };
  const sim = await FlussonicSimulator.start(simSettings);
  const dir = resolve(o.dir);
  const embedded = await startEmbedded(join(dir, "emulator"));
  try {
    out.write(`Simulated Flussonic at ${sim.url} with ${o.streams} streams, ${o.hours} h of archive each:\n`);
    for (const s of sim.streams()) {
      const ranges = sim.rangesOf(s.name);
      const gaps = ranges.length - 1;
      out.write(`  ${s.name}  ${s.bitrateBps / 1000} kbit/s, ${gaps} gap(s) in the archive\n`);
    }
    out.write(`Embedded S3/SQS emulator, state kept in ${dir}\n\n`);
    const configText = JSON.stringify({
      bucket: "demo-backup",
      sources: [
        { name: "demo", url: sim.url, retentionDays: days, maxConcurrentCopies: 2, maxBandwidthMbps: 40 },
      ],
    });
    const config = parseConfig(configText, "(demo configuration)");
    // For the operator commands' --demo (status, verify, restore, redrive): the configuration and
    // the simulator's settings (a simulator started again with them serves the same archive).
    writeFileSync(join(dir, "config.json"), `${configText}\n`);
    writeFileSync(join(dir, "simulator.json"), `${JSON.stringify(simSettings)}\n`);
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
        "Your own server: write a config (see config/example.jsonc), then",
        "  npx flussonic-backup run --config my-config.jsonc --once --embedded",
        "",
      ].join("\n"),
    );
    return status;
  } finally {
    await embedded.stop();
    await sim.close();
  }
}
