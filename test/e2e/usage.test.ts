/**
 * The command line's own promises, run as a user runs the program (the package's bin in a child
 * process): a usage mistake exits 2 with commander's one-line reason, --help and --version exit 0,
 * defaults read as written, and each command's help speaks only of what it takes.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BIN, cli, ROOT } from "../../dev/kit/cli-process.ts";

/** The machine's own `node` (the PATH without node_modules/.bin) and its major version. */
const machinePath = (process.env.PATH ?? "")
  .split(":")
  .filter((p) => !p.endsWith("node_modules/.bin"))
  .join(":");
const machineNode = spawnSync("node", ["--version"], { env: { PATH: machinePath }, encoding: "utf8" });
const machineMajor = machineNode.status === 0 ? Number(/^v(\d+)/.exec(machineNode.stdout)?.[1]) : undefined;

const dir = mkdtempSync(join(tmpdir(), "fb-cli-usage-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("usage of the command line", () => {
  it.concurrent("a missing required option exits 2 and names the option", async () => {
    const r = await cli(["restore", "--source", "s", "--stream", "x", "--from", "0", "--to", "60"], {
      cwd: dir,
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error: required option '--out <file>' not specified");
  });

  it.concurrent("an unknown option exits 2 and names it", async () => {
    const r = await cli(["status", "--bogus"], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error: unknown option '--bogus'");
  });

  it.concurrent("an unknown command exits 2", async () => {
    const r = await cli(["bakup"], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error: unknown command 'bakup'");
  });

  it.concurrent("--version prints the package's version and exits 0", async () => {
    const version = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string })
      .version;
    const r = await cli(["--version"], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(`flussonic-backup ${version}`);
  });

  it.concurrent("--help exits 0; numeric defaults read as numbers, not quoted text", async () => {
    const [run, serve, token] = await Promise.all([
      cli(["run", "--help"], { cwd: dir }),
      cli(["serve", "--help"], { cwd: dir }),
      cli(["playback-token", "--help"], { cwd: dir }),
    ]);
    for (const r of [run, serve, token]) expect(r.code).toBe(0);
    const help = `${run.stdout}${serve.stdout}${token.stdout}`.replace(/\s+/g, " ");
    expect(help).toContain("(default: 900)");
    expect(help).toContain("(default: 30)");
    expect(help).toContain("(default: 8090)");
    expect(help).toContain("(default: 86400)");
    expect(help).not.toMatch(/default: "\d+"/);
  });

  it.concurrent("only the commands that take --from/--to explain time formats", async () => {
    const [serve, status, restore, verify] = await Promise.all(
      ["serve", "status", "restore", "verify"].map((c) => cli([c, "--help"], { cwd: dir })),
    );
    expect(serve?.stdout).not.toContain("Times:");
    expect(status?.stdout).not.toContain("Times:");
    expect(restore?.stdout).toContain("Times: ISO 8601");
    expect(verify?.stdout).toContain("Times: ISO 8601");
  });

  it.concurrent("run's window log has its own name; the old -v/--verbose spelling still works, with a note", async () => {
    const r = await cli(["run", "--help"], { cwd: dir });
    expect(r.stdout).toContain("--log-windows");
    expect(r.stdout.replace(/\s+/g, " ")).toContain("-v, --verbose old name of --log-windows (kept working)");
    // The old spelling is accepted: the run then fails on the missing file (exit 2), after the note.
    const old = await cli(["run", "-v", "-c", join(dir, "missing.json"), "--once"], { cwd: dir });
    expect(old.code).toBe(2);
    expect(old.stderr).toContain(
      "note: run --verbose logs every window as before; its own name is now --log-windows",
    );
  });

  it.concurrent("`node cli/main.ts` on a Node too old for TypeScript says to use npx or Node 24, no stack", async (ctx) => {
    if (machineMajor === undefined || machineMajor >= 22) {
      ctx.skip(`the machine's node is ${machineNode.stdout.trim() || "missing"}, not an old one to try`);
    }
    const r = spawnSync("node", [BIN, "--version"], {
      cwd: dir,
      env: { PATH: machinePath },
      encoding: "utf8",
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      `flussonic-backup needs Node 24, this is Node ${machineNode.stdout.trim().slice(1)}: run it as \`npx flussonic-backup\` (after \`npm ci\`, which brings Node 24 for it) or put Node 24 on the PATH.\n`,
    );
  });
});
