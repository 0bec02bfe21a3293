/**
 * Automatic day proofs: with a signing key configured, the first planner run after midnight whose
 * day is stored writes the day's proof once (write-once key), and later runs do not write it again;
 * without a key nothing is written and nothing more is asked of S3. Against the simulator and the
 * embedded emulator; the days due are also checked on their own (dueDays).
 */
import { generateKeyPairSync } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import type { DayProof } from "../../functions/domain/evidence.ts";
import { proofKey, provenKey } from "../../functions/domain/keys.ts";
import { dueDays } from "../../functions/planner/day-proofs.ts";
import type { PlanReport } from "../../functions/planner/plan-backup.ts";
import { runOnce } from "../../local/once.ts";
import { checkProof } from "../../ops/prove.ts";

const NOW0 = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
const DAY = 86400;
const MID = Math.floor(NOW0 / DAY) * DAY + DAY; // 2026-11-21 00:00
const ENV = "FLUSSONIC_BACKUP_EXPORT_KEY";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
  delete process.env[ENV];
});

async function runs(hh: Harness) {
  const rt = await hh.runtime();
  return async () => {
    const proofs: string[] = [];
    const r = await runOnce(rt, hh.tally, {
      onPlan: (p: PlanReport) => proofs.push(...p.sources.flatMap((s) => s.proofs ?? [])),
    });
    expect(r.ok).toBe(true);
    return proofs;
  };
}

describe("day proofs made by the planner", () => {
  it("a run after midnight writes yesterday's proof once; a second run does not write it again", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    process.env[ENV] = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const hh = await startHarness({
      sim: { streams: [{ name: "cam1", bitrateBps: 8000, ranges: [{ from: NOW0 - HOUR, to: MID + DAY }] }] },
      source: { retentionDays: 0.5 },
    });
    h = hh;
    const run = await runs(hh);
    // Before midnight: no day is over inside the retention.
    expect(await run()).toEqual([]);
    const key = proofKey(hh.config.prefix, "src1", "cam1", "2026-11-20");
    expect(await hh.keys(key)).toEqual([]);

    hh.clock.seconds = MID + 10 * 60;
    // The run copies 12:10 – 24:00 first (the day lacks it), then proves the day, once.
    expect(await run()).toEqual(["cam1 2026-11-20"]);
    const proof = JSON.parse((await hh.getObject(key)).toString()) as DayProof;
    expect(proof.day).toBe("2026-11-20");
    expect(proof.stored.at(-1)!.to).toBe(MID);
    expect(proof.windows.at(-1)!.from + proof.windows.at(-1)!.duration).toBe(MID);
    expect(proof.missed).toEqual([]);
    expect((await checkProof(hh.store(), proof, publicKey)).filter((l) => l.startsWith("FAILED"))).toEqual(
      [],
    );

    hh.clock.advance(5 * 60);
    expect(await run()).toEqual([]);
    expect(JSON.parse((await hh.getObject(key)).toString())).toEqual(proof);
    expect(JSON.parse((await hh.getObject(provenKey(hh.config.prefix, "src1"))).toString())).toEqual({
      v: 1,
      streams: { cam1: "2026-11-20" },
    });
  });

  it("without a signing key no proof is written (nothing under .backup/proofs/)", async () => {
    const hh = await startHarness({
      sim: { streams: [{ name: "cam1", bitrateBps: 8000, ranges: [{ from: NOW0 - HOUR, to: MID + DAY }] }] },
      source: { retentionDays: 0.5 },
    });
    h = hh;
    const run = await runs(hh);
    await run();
    hh.clock.seconds = MID + 10 * 60;
    expect(await run()).toEqual([]);
    expect(await hh.keys(`${hh.config.prefix}.backup/proofs/`)).toEqual([]);
  });
});

describe("dueDays", () => {
  const settle = 120;
  it("a day is due once over for settleSeconds, inside the retention, not yet proven, and stored (or a day late)", () => {
    const day = "2026-11-20";
    expect(dueDays(MID + 60, settle, undefined, [], MID - DAY / 2)).toEqual([]);
    expect(dueDays(MID + 121, settle, undefined, [], MID - DAY / 2)).toEqual([day]);
    expect(dueDays(MID + 121, settle, day, [], MID - DAY / 2)).toEqual([]);
    expect(dueDays(MID + 121, settle, undefined, [], MID)).toEqual([]);
    const lacking = [{ from: MID - 600, to: MID }];
    expect(dueDays(MID + 121, settle, undefined, lacking, MID - DAY / 2)).toEqual([]);
    // A day later whatever is still missing is stated as missed.
    expect(dueDays(MID + DAY + 1, settle, undefined, lacking, MID - DAY / 2)).toEqual([day]);
    // Two days back at most, oldest first.
    expect(dueDays(MID + 3 * DAY + settle, settle, undefined, [], 0)).toEqual(["2026-11-22", "2026-11-23"]);
  });
});
