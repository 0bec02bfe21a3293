/**
 * The systemd unit of docs/service.md, taken from the page itself so the two cannot drift, passes
 * `systemd-analyze verify` (skipped, saying why, where systemd is absent). The page's checkout path /opt/flussonic-backup is replaced by this checkout, so the commands the
 * unit starts exist.
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, test } from "vitest";
import { ROOT } from "../../dev/kit/service-process.ts";

/** `<!-- systemd-unit: name -->` followed by an ```ini block. */
function documentedUnit(): { name: string; text: string } {
  const page = readFileSync(join(ROOT, "docs/service.md"), "utf8");
  const m = /<!-- systemd-unit: (\S+) -->\s*```ini\n([\s\S]*?)```/.exec(page);
  if (!m) throw new Error("docs/service.md has no `<!-- systemd-unit: name -->` ini block");
  return { name: m[1]!, text: m[2]! };
}

function systemdAnalyze(): string | undefined {
  try {
    execFileSync("systemd-analyze", ["--version"], { stdio: "ignore" });
    return undefined;
  } catch {
    return "systemd-analyze is not installed on this machine";
  }
}

const missing = systemdAnalyze();
if (missing) console.warn(`skipping the systemd unit check: ${missing}`);

test("the documented unit starts the service with its stop settings", () => {
  const { name, text } = documentedUnit();
  expect(name).toBe("flussonic-backup.service");
  const exec = /^ExecStart=(.*)$/m.exec(text)?.[1] ?? "";
  expect(exec).toMatch(/ run -c \S+/);
  expect(exec).not.toMatch(/--once/);
  // systemd must wait longer than the grace period before it kills.
  const grace = Number(/--grace-seconds (\d+)/.exec(exec)?.[1] ?? 30);
  expect(Number(/^TimeoutStopSec=(\d+)$/m.exec(text)?.[1])).toBeGreaterThan(grace);
  expect(text).toMatch(/^KillSignal=SIGTERM$/m);
});

test.skipIf(missing !== undefined)("systemd-analyze verify passes on the documented unit", async () => {
  const { name, text } = documentedUnit();
  const dir = mkdtempSync(join(tmpdir(), "fb-unit-"));
  try {
    const file = join(dir, name);
    writeFileSync(file, text.replaceAll("/opt/flussonic-backup", ROOT));
    const result = await new Promise<{ code: number; stderr: string }>((done) =>
      execFile("systemd-analyze", ["verify", file], (error, _stdout, stderr) =>
        done({ code: error ? Number(error.code ?? 1) : 0, stderr }),
      ),
    );
    expect(result.code, result.stderr).toBe(0);
    // Unknown keys and bad values are warnings (exit 0): none may name this unit.
    expect(result.stderr.split("\n").filter((l) => l.includes(name))).toEqual([]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
