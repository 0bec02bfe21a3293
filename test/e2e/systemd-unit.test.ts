/**
 * The systemd unit of the README ("Run it as a service"), taken from the README itself so the two
 * cannot drift, passes `systemd-analyze verify` (skipped, saying why, where systemd is absent). The
 * README's checkout path /opt/flussonic-backup is replaced by this checkout, so the commands the
 * unit starts exist.
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, test } from "vitest";
import { ROOT } from "../../dev/kit/service-process.ts";

/** `<!-- systemd-unit: name -->` followed by an ```ini block. */
function readmeUnit(): { name: string; text: string } {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const m = /<!-- systemd-unit: (\S+) -->\s*```ini\n([\s\S]*?)```/.exec(readme);
  if (!m) throw new Error("README.md has no `<!-- systemd-unit: name -->` ini block");
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

test("the README's unit starts the service with its stop settings", () => {
  const { name, text } = readmeUnit();
  expect(name).toBe("flussonic-backup.service");
  const exec = /^ExecStart=(.*)$/m.exec(text)?.[1] ?? "";
  expect(exec).toMatch(/ run -c \S+/);
  expect(exec).not.toMatch(/--once/);
  // systemd must wait longer than the grace period before it kills.
  const grace = Number(/--grace-seconds (\d+)/.exec(exec)?.[1] ?? 30);
  expect(Number(/^TimeoutStopSec=(\d+)$/m.exec(text)?.[1])).toBeGreaterThan(grace);
  expect(text).toMatch(/^KillSignal=SIGTERM$/m);
});

test.skipIf(missing !== undefined)("systemd-analyze verify passes on the README's unit", async () => {
  const { name, text } = readmeUnit();
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
