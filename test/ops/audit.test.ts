/**
 * The audit trail against the embedded emulator: each export, hold, release, rebuild and
 * `verify --repair` appends one write-once record, `audit` lists each action once, oldest first,
 * `--since` leaves out what came before, and no record carries the signing key.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { auditCommand } from "../../cli/commands/audit.ts";
import { exportCommand, exportKeyInitCommand } from "../../cli/commands/export.ts";
import { holdCommand, releaseCommand } from "../../cli/commands/hold.ts";
import { rebuildCommand } from "../../cli/commands/rebuild.ts";
import { verifyCommand } from "../../cli/commands/verify.ts";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { operatorTarget, TextSink } from "../../dev/kit/ops-target.ts";
import { auditFolder } from "../../functions/domain/keys.ts";
import { runOnce } from "../../local/once.ts";
import type { AuditRecord } from "../../ops/audit.ts";

const NOW0 = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
const MIN = 60;
const iso = (t: number) => new Date(t * 1000).toISOString();

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe("audit trail", () => {
  it("lists each action once, oldest first, with no secret; --since leaves out the older ones", async () => {
    const hh = await startHarness({
      sim: {
        media: "real",
        streams: [{ name: "cam1", bitrateBps: 16_000, ranges: [{ from: NOW0 - 2 * HOUR, to: NOW0 + 1 }] }],
      },
      source: { retentionDays: 1 / 24 },
    });
    h = hh;
    expect((await runOnce(await hh.runtime(), hh.tally)).ok).toBe(true);
    const config = operatorTarget(hh);
    const sink = () => ({ stdout: new TextSink(), stderr: new TextSink() });
    const range = { from: iso(NOW0 - 35 * MIN), to: iso(NOW0 - 25 * MIN) };
    let at = NOW0;
    const now = () => at++;
    const key = join(hh.dir, "key.pem");
    exportKeyInitCommand({ out: key, stdout: new TextSink() });

    const base = { config, source: "src1", stream: "cam1", by: "tester", now, ...range };
    expect(await holdCommand({ ...base, reason: "case 7", ...sink() })).toBe(0);
    expect(await exportCommand({ ...base, out: join(hh.dir, "clip.mp4"), key, env: {}, ...sink() })).toBe(0);
    expect(
      await releaseCommand({
        config,
        source: "src1",
        stream: "cam1",
        ...range,
        by: "tester",
        now,
        ...sink(),
      }),
    ).toBe(0);
    expect(
      await verifyCommand({
        config,
        source: "src1",
        repair: true,
        by: "tester",
        now,
        out: new TextSink(),
        progress: new TextSink(),
      }),
    ).toBe(0);
    expect(
      await rebuildCommand({
        config,
        source: "src1",
        by: "tester",
        out: new TextSink(),
        progress: new TextSink(),
      }),
    ).toBe(0);

    const json = new TextSink();
    expect(await auditCommand({ config, json: true, stdout: json })).toBe(0);
    const records = JSON.parse(json.text) as (AuditRecord & { key: string })[];
    expect(records.map((r) => r.action)).toEqual(["hold", "export", "release", "verify-repair", "rebuild"]);
    expect(records.every((r) => r.by === "tester" && r.key.startsWith(auditFolder(hh.config.prefix)))).toBe(
      true,
    );
    expect(records[1]).toMatchObject({
      source: "src1",
      stream: "cam1",
      from: NOW0 - 35 * MIN,
      to: NOW0 - 25 * MIN,
    });
    const pem = readFileSync(key, "utf8").split("\n")[1]!;
    expect(json.text).not.toContain(pem);
    // One object per action: the folder holds exactly these.
    expect((await hh.keys(auditFolder(hh.config.prefix))).length).toBe(5);

    const text = new TextSink();
    expect(await auditCommand({ config, since: String(NOW0 + 2), stdout: text })).toBe(0);
    const lines = text.text.trim().split("\n");
    expect(lines.map((l) => l.split(" ")[1])).toEqual(["release", "verify-repair", "rebuild"]);
    expect(lines[0]).toBe(
      `${iso(NOW0 + 2).replace(".000Z", "Z")} release by tester src1 "cam1" ${range.from.replace(".000Z", "Z")} – ${range.to.replace(".000Z", "Z")}: id=${records[0]!.detail!.id} reason=case 7`,
    );
  });
});
