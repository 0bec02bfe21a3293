/**
 * Test harness: a simulated Flussonic source, the embedded S3/SQS emulator (on disk, so that
 * multipart leftovers can be inspected) and a local runtime wired to both.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { type BackupConfig, parseConfig, type SourceCredentials } from "../../functions/config/config.ts";
import type { CopierEvent } from "../../functions/copier/copy-messages.ts";
import type { BackupStore } from "../../functions/store/backup-store.ts";
import { type EmbeddedEmulator, startEmbedded } from "../../local/embedded.ts";
import { lineLog } from "../../local/line-log.ts";
import { OnceTally } from "../../local/once.ts";
import { LocalRuntime, type RuntimeOptions } from "../../local/runtime.ts";
import { FlussonicSimulator, type SimulatorOptions } from "../../simulator/simulator.ts";

export const HOUR = 3600;

/** A fixed clock, moved by tests; starts on a UTC hour + 17 minutes so that edges are unaligned. */
export class TestClock {
  seconds: number;
  constructor(seconds = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000)) {
    this.seconds = seconds;
  }
  now = (): number => this.seconds;
  advance(s: number): void {
    this.seconds += s;
  }
}

export interface Harness {
  dir: string;
  clock: TestClock;
  sim: FlussonicSimulator;
  /** Every source's simulator by source name (src1 is `sim`). */
  sims: Map<string, FlussonicSimulator>;
  emulator: EmbeddedEmulator;
  config: BackupConfig;
  tally: OnceTally;
  logs: string[];
  runtime(overrides?: Partial<RuntimeOptions>): Promise<LocalRuntime>;
  /** Every key under the bucket (with the prefix). */
  keys(prefix?: string): Promise<string[]>;
  getObject(key: string): Promise<Buffer>;
  s3(): S3Client;
  /** The first runtime's store. */
  store(): BackupStore;
  /** Multipart uploads the emulator still holds (orphans). */
  openMultipartUploads(): string[];
  /** Parts uploaded to the multipart uploads still open. */
  uploadedParts(): number;
  close(): Promise<void>;
}

export interface HarnessOptions {
  sim?: Omit<SimulatorOptions, "now">;
  source?: Record<string, unknown>;
  config?: Record<string, unknown>;
  credentials?: SourceCredentials;
  /** More sources, each with its own simulator. */
  more?: { name: string; sim?: Omit<SimulatorOptions, "now">; source?: Record<string, unknown> }[];
}

export async function startHarness(o: HarnessOptions = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), "fb-test-"));
  const clock = new TestClock();
  const sim = await FlussonicSimulator.start({ streams: 3, days: 1, ...o.sim, now: clock.now });
  const sims = new Map([["src1", sim]]);
  for (const m of o.more ?? []) {
    sims.set(m.name, await FlussonicSimulator.start({ streams: 2, days: 1, ...m.sim, now: clock.now }));
  }
  const emulator = await startEmbedded(join(dir, "emulator"));
  const config = parseConfig(
    JSON.stringify({
      bucket: "test-backup",
      retentionDays: undefined,
      ...o.config,
      sources: [
        {
          name: "src1",
          url: sim.url,
          retentionDays: 0.25,
          maxConcurrentCopies: 2,
          maxBandwidthMbps: 10_000,
          ...o.source,
        },
        ...(o.more ?? []).map((m) => ({
          name: m.name,
          url: sims.get(m.name)!.url,
          retentionDays: 0.25,
          maxConcurrentCopies: 2,
          maxBandwidthMbps: 10_000,
          ...m.source,
        })),
      ],
    }),
    "test-config.json",
  );
  const tally = new OnceTally({ keepEvents: true });
  const logs: string[] = [];
  const runtimes: LocalRuntime[] = [];
  const h: Harness = {
    dir,
    clock,
    sim,
    sims,
    emulator,
    config,
    tally,
    logs,
    async runtime(overrides = {}) {
      const rt = await LocalRuntime.create({
        config,
        credentials: new Map([["src1", o.credentials ?? { type: "none" }]]),
        endpoints: emulator.endpoints,
        logger: lineLog("info", (l) => logs.push(l)),
        now: clock.now,
        copyTimeoutSeconds: 60,
        retryBaseSeconds: 1,
        waitTimeSeconds: 1,
        onEvent: (e: CopierEvent) => tally.add(e),
        ...overrides,
      });
      runtimes.push(rt);
      return rt;
    },
    async keys(prefix = "") {
      const store = runtimes[0]?.store;
      if (!store) throw new Error("start a runtime first");
      const out: string[] = [];
      for await (const o of store.listObjects(prefix)) out.push(o.key);
      return out.sort();
    },
    async getObject(key) {
      const res = await h.s3().send(new GetObjectCommand({ Bucket: config.bucket, Key: key }));
      return Buffer.from(await res.Body!.transformToByteArray());
    },
    store() {
      const store = runtimes[0]?.store;
      if (!store) throw new Error("start a runtime first");
      return store;
    },
    s3() {
      const s3 = runtimes[0]?.s3;
      if (!s3) throw new Error("start a runtime first");
      return s3;
    },
    openMultipartUploads() {
      const mp = join(dir, "emulator", "s3", "_multipart");
      return existsSync(mp) ? readdirSync(mp) : [];
    },
    uploadedParts() {
      const mp = join(dir, "emulator", "s3", "_multipart");
      return h.openMultipartUploads().reduce((n, id) => n + readdirSync(join(mp, id)).length, 0);
    },
    async close() {
      for (const rt of runtimes) await rt.close();
      await emulator.stop();
      for (const s of sims.values()) await s.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}
