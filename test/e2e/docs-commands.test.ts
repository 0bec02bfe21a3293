/**
 * Every shell command of README.md and docs/**\/*.md (the ```sh, ```bash and ```console blocks), run
 * as written by bash, in reading order: the README, then the pages in the order docs/README.md lists
 * them. A reader's setting, made once: a temporary checkout (this repository's top-level entries
 * linked into a fresh folder, so that what the commands write stays there) whose `my-config.json`
 * is the README's example configuration pointed at a Flussonic simulator this test starts (its
 * admin login `backup`/`secret`, as the README's simulator line sets it), with the AWS variables
 * pointing at an emulator process (for the pages' "any S3 endpoint" commands) and the PATH a
 * user's shell has (no node_modules/.bin). `npx flussonic-backup` runs what npx runs, the package's
 * bin with node_modules/.bin first on the PATH, through a two-line `npx` ahead on the PATH that
 * saves npm's start-up per command (other npx commands go to npm's; test/cli/readme.test.ts runs the
 * real npx on the package). A command the pages repeat word for word (comments aside) runs once.
 *
 * Servers (`serve`, `run` without `--once`, `npm run simulator`) are started, awaited until they say
 * they listen, and left running until the end of their page (the commands after them use them).
 * `START`/`END` in a `--demo` restore line are the range `npm start` printed (the README says to
 * copy that line). A block marked `<!-- docs-test: skip <reason> -->` is not run; each skip is
 * printed with its reason. Any other command must exit 0 (`status` may exit 1, as documented, when
 * the simulator's live edge made a window due after the run: never with a failed stream).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  brokenLinks,
  DOCS_ROOT,
  documentationPages,
  documentedConfig,
  type ShellBlock,
  shellBlocks,
} from "../../dev/kit/documented.ts";
import { type EmulatorProcess, startEmulatorProcess } from "../../dev/kit/emulator-process.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";

/** Pages another branch writes: links to them are not checked until they exist here. */
const WRITTEN_ELSEWHERE = new Set<string>();

/** Entries of the repository not linked into the temporary checkout (state of earlier runs, VCS). */
const NOT_LINKED = new Set([
  ".git",
  ".demo",
  ".flussonic-backup",
  "bench-results",
  "cdk.out",
  "reports",
  ".stryker-tmp",
]);
/** Copied rather than linked: commands write there (`npm run schema` writes config/schema.json). */
const COPIED = new Set(["config"]);

interface Server {
  pattern: RegExp;
  /** What it prints once it serves. */
  ready: RegExp;
}

const SERVERS: Server[] = [
  { pattern: /^npx flussonic-backup serve\b/, ready: /https?:\/\/[^\s/]+/ },
  { pattern: /^npm run simulator -- (?!.*--help)/, ready: /Flussonic simulator on http:\/\/\S+/ },
  {
    pattern: /^npx flussonic-backup run\b(?!.*--once)(?!.*--dry-run)/,
    ready: /^Running: planning every/m,
  },
];

interface Ran {
  command: string;
  code: number | null;
  output: string;
  ms: number;
}

function startShell(command: string, cwd: string, env: Record<string, string>) {
  const child = spawn("bash", ["-c", command], {
    cwd,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  child.stdout.on("data", (d: Buffer) => {
    output += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    output += d.toString();
  });
  const closed = new Promise<number | null>((r) => child.once("close", (code) => r(code)));
  return { child, output: () => output, closed };
}

/** SIGTERM to the command's process group (npm and the node under it), SIGKILL after 10 s. */
async function stopGroup(child: ChildProcess, closed: Promise<number | null>): Promise<number | null> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return closed;
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {
    return closed;
  }
  const killer = setTimeout(() => {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {}
  }, 10_000);
  const code = await closed;
  clearTimeout(killer);
  return code;
}

/** The package's `flussonic-backup` bin (package.json), what `npx flussonic-backup` executes. */
function packageBin(): string {
  const pkg = JSON.parse(readFileSync(join(DOCS_ROOT, "package.json"), "utf8")) as {
    bin: Record<string, string>;
  };
  return pkg.bin["flussonic-backup"]!;
}

/** The PATH of a user's shell: this one without node_modules/.bin (npm scripts put it first). */
function userPath(): string {
  return (process.env.PATH ?? "")
    .split(":")
    .filter((p) => !p.endsWith("node_modules/.bin"))
    .join(":");
}

async function runToEnd(command: string, cwd: string, env: Record<string, string>, ms: number): Promise<Ran> {
  const started = performance.now();
  const shell = startShell(command, cwd, env);
  const timer = setTimeout(() => void stopGroup(shell.child, shell.closed), ms);
  const code = await shell.closed;
  clearTimeout(timer);
  return { command, code, output: shell.output(), ms: performance.now() - started };
}

describe("the documentation's shell commands, run as written", () => {
  const pages = documentationPages();
  const blocks: ShellBlock[] = pages.flatMap(shellBlocks);
  let dir: string;
  let checkout: string;
  let sim: FlussonicSimulator;
  let emulator: EmulatorProcess;
  const transcript: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fb-docs-"));
    checkout = join(dir, "checkout");
    cpSync(join(DOCS_ROOT, "config"), join(checkout, "config"), { recursive: true });
    for (const entry of readdirSync(DOCS_ROOT)) {
      if (NOT_LINKED.has(entry) || COPIED.has(entry)) continue;
      symlinkSync(join(DOCS_ROOT, entry), join(checkout, entry));
    }
    [sim, emulator] = await Promise.all([
      // A few minutes of archive at a low bitrate: the README's 20-day retention copies all of it fast.
      FlussonicSimulator.start({
        streams: 2,
        days: 0.03,
        bitrateBps: 8000,
        seed: 5,
        auth: { basic: { username: "backup", password: "secret" } },
      }),
      startEmulatorProcess({ dir: join(dir, "emulator") }),
    ]);
    const bin = join(dir, "bin");
    mkdirSync(bin);
    const realNpx = execFileSync("bash", ["-c", "command -v npx"], {
      env: { PATH: userPath(), HOME: process.env.HOME ?? "" },
      encoding: "utf8",
    }).trim();
    writeFileSync(
      join(bin, "npx"),
      `#!/usr/bin/env bash\nif [ "$1" = flussonic-backup ]; then shift; PATH="${join(checkout, "node_modules/.bin")}:$PATH" exec "${join(checkout, packageBin())}" "$@"; fi\nexec "${realNpx}" "$@"\n`,
      { mode: 0o755 },
    );
    const config = documentedConfig();
    config.sources[0]!.url = sim.url;
    writeFileSync(join(checkout, "my-config.json"), JSON.stringify(config, null, 2));
  });

  afterAll(async () => {
    await emulator?.stop();
    await sim?.close();
    process.stdout.write(`Documentation commands:\n${transcript.join("\n")}\n`);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("README.md is at most 250 lines", () => {
    const lines = readFileSync(join(DOCS_ROOT, "README.md"), "utf8").split("\n").length - 1;
    expect(lines).toBeLessThanOrEqual(250);
  });

  it("every relative link of README.md and docs/ points at a page and a heading that exist", () => {
    const broken = pages
      .flatMap(brokenLinks)
      .filter((b) => ![...WRITTEN_ELSEWHERE].some((p) => b.includes(`(no file ${p})`)));
    expect(broken).toEqual([]);
  });

  it("no code comment points outside the repository", () => {
    const outside: string[] = [];
    const walk = (rel: string) => {
      for (const e of readdirSync(join(DOCS_ROOT, rel), { withFileTypes: true })) {
        const path = rel === "" ? e.name : `${rel}/${e.name}`;
        if (e.isDirectory()) {
          if (
            ![
              "node_modules",
              ".git",
              "cdk.out",
              "reports",
              ".demo",
              "bench-results",
              ".stryker-tmp",
            ].includes(e.name)
          )
            walk(path);
        } else if (/\.(ts|cjs|mjs|js|json)$/.test(e.name) && path !== "test/e2e/docs-commands.test.ts") {
          const text = readFileSync(join(DOCS_ROOT, path), "utf8");
          if (/\.\.\/shared\/design|shared\/design\//.test(text)) outside.push(path);
        }
      }
    };
    walk("");
    expect(outside).toEqual([]);
  });

  it("every block has commands, and every skip says why", () => {
    expect(blocks.length).toBeGreaterThan(10);
    for (const b of blocks) {
      expect(b.commands.length, `${b.page}:${b.line}`).toBeGreaterThan(0);
      if (b.skip !== undefined) expect(b.skip.length, `${b.page}:${b.line}`).toBeGreaterThan(10);
    }
  });

  it("every command runs as written, in reading order", async () => {
    const env: Record<string, string> = {
      PATH: `${join(dir, "bin")}:${userPath()}`,
      HOME: process.env.HOME ?? "",
      LANG: process.env.LANG ?? "C.UTF-8",
      ...emulator.env,
      STREAMER1_PASSWORD: "secret",
    };
    let demoRange: { from: string; to: string } | undefined;
    const ran = new Set<string>();
    for (const page of pages) {
      const running: { command: string; stop: () => Promise<number | null> }[] = [];
      try {
        for (const block of blocks.filter((b) => b.page === page)) {
          const where = `${block.page}:${block.line}`;
          if (block.skip !== undefined) {
            transcript.push(`skip ${where} (${block.skip}): ${block.commands.join("; ")}`);
            continue;
          }
          for (const written of block.commands) {
            let command = written;
            if (/--from START --to END/.test(command)) {
              expect(
                demoRange,
                `${where}: START and END come from the line \`npm start\` printed`,
              ).toBeDefined();
              command = command.replace(
                "--from START --to END",
                `--from ${demoRange!.from} --to ${demoRange!.to}`,
              );
            }
            const exported = /^export (\w+)=/.exec(command);
            if (exported) {
              const r = await runToEnd(`${command}\nprintf %s "$${exported[1]}"`, checkout, env, 10_000);
              expect(r.code, `${where}: ${command}\n${r.output}`).toBe(0);
              env[exported[1]!] = r.output;
              transcript.push(`ran  ${where}: ${written}`);
              continue;
            }
            const server = SERVERS.find((s) => s.pattern.test(command));
            if (server) {
              const started = performance.now();
              const shell = startShell(command, checkout, env);
              const deadline = started + 60_000;
              while (
                !server.ready.test(shell.output()) &&
                shell.child.exitCode === null &&
                performance.now() < deadline
              )
                await new Promise((r) => setTimeout(r, 100));
              expect(
                server.ready.test(shell.output()),
                `${where}: ${command} did not start:\n${shell.output()}`,
              ).toBe(true);
              running.push({ command, stop: () => stopGroup(shell.child, shell.closed) });
              transcript.push(
                `serve ${where}: ${written} (${Math.round(performance.now() - started)} ms to start)`,
              );
              continue;
            }
            const key = command.replace(/\s+#.*$/, "").replace(/\s+/g, " ");
            if (ran.has(key)) {
              transcript.push(`same ${where}: ${written} (ran above)`);
              continue;
            }
            ran.add(key);
            const r = await runToEnd(command, checkout, env, 150_000);
            transcript.push(`ran  ${where}: ${written} (exit ${r.code}, ${Math.round(r.ms)} ms)`);
            const demo =
              /restore --demo --source demo --stream cam1 --from (\S+) --to (\S+) --out cam1\.mp4/.exec(
                r.output,
              );
            if (/^npm start\b/.test(command) && demo) demoRange = { from: demo[1]!, to: demo[2]! };
            if (
              /flussonic-backup status\b/.test(command) &&
              r.code === 1 &&
              !/FAILED|could not/.test(r.output)
            )
              continue;
            expect(r.code, `${where}: ${command}\n${r.output.slice(-3000)}`).toBe(0);
          }
        }
      } finally {
        for (const s of running.reverse()) await s.stop();
      }
    }
    // Measured: 161 s at load average 18 on 2 cores, `npm start` (the full demo) 64 s of it.
  }, 300_000);
});
