/**
 * A config that allows credentials over http:// (allowCredentialsOverHttp) is said so every planner
 * run (in AWS and locally: planBackup is both) and by `config check`.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cli } from "../../dev/kit/cli-process.ts";
import { parseConfig } from "../../functions/config/config.ts";
import { planBackup } from "../../functions/planner/plan-backup.ts";
import type { CopyQueue } from "../../functions/queue/copy-queue.ts";
import type { FlussonicClient } from "../../functions/source/flussonic.ts";
import type { BackupStore } from "../../functions/store/backup-store.ts";

const raw = {
  bucket: "my-dvr-backup",
  sources: [
    {
      name: "s1",
      url: "http://streamer1.example:8080",
      auth: { type: "basic", username: "backup", passwordEnv: "S1_PASSWORD" },
      allowCredentialsOverHttp: true,
      // Paused by config: the run asks nothing of the source or the store.
      paused: true,
    },
  ],
};
const WARNING =
  "source s1: its basic credentials go in clear over http://streamer1.example:8080 (allowCredentialsOverHttp): anyone on the network path can read them";

describe("credentials allowed over http://", () => {
  it("are warned about in every planner run", async () => {
    const warnings: unknown[][] = [];
    const logger = {
      debug: () => {},
      info: () => {},
      error: () => {},
      warn: (...args: unknown[]) => warnings.push(args),
    };
    const unused = new Proxy(
      {},
      {
        get: () => () => {
          throw new Error("not used by a paused source");
        },
      },
    );
    const deps = {
      config: parseConfig(JSON.stringify(raw), "cfg.json"),
      store: unused as BackupStore,
      queue: unused as CopyQueue,
      flussonic: () => unused as FlussonicClient,
      now: () => 1_800_000_000,
      copyTimeoutSeconds: 900,
      logger,
    };
    for (let run = 1; run <= 2; run++) {
      const report = await planBackup(deps);
      expect(report.sources[0]!.paused).toBe(true);
      expect(warnings).toHaveLength(run);
      expect(warnings[run - 1]![0]).toBe(WARNING);
    }
  });

  it("config check says it (and still passes)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fb-http-"));
    try {
      const file = join(dir, "cfg.json");
      writeFileSync(file, JSON.stringify(raw));
      const r = await cli(["config", "check", file, "--no-env"], { cwd: dir });
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`${file}: valid`);
      expect(r.stderr).toBe(`warning: ${WARNING}\n`);
      const { allowCredentialsOverHttp: _, ...refused } = raw.sources[0]!;
      writeFileSync(file, JSON.stringify({ ...raw, sources: [refused] }));
      const bad = await cli(["config", "check", file, "--no-env"], { cwd: dir });
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain(
        `${file}: sources[0].url: the basic credentials would go in clear over http://: use https://, or set sources[0].allowCredentialsOverHttp to true`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
