#!/usr/bin/env node
// The `flussonic-backup` command (the package's bin). Plain JavaScript syntax and a CommonJS scope
// (cli/package.json) on purpose: a Node too old to run TypeScript still reads this file far enough
// to say what to do, instead of failing on the `.ts` extension with a stack. The commands are in
// cli/commands/ (an ES module scope of their own).
{
  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
  // Type stripping without a flag: Node 22.18 and 23.6 or later (the project runs on Node 24).
  if (major < 22 || (major === 22 && minor < 18) || (major === 23 && minor < 6)) {
    process.stderr.write(
      `flussonic-backup needs Node 24, this is Node ${process.versions.node}: run it as \`npx flussonic-backup\` (after \`npm ci\`, which brings Node 24 for it) or put Node 24 on the PATH.\n`,
    );
    process.exit(1);
  }
  if (process.argv[2] === "run") {
    // `run` (the copies) starts again in its own process image with settings that a running Node
    // cannot take any more (see runtimeSettings below).
    const again = runtimeSettings();
    if (again) process.execve?.(again.file, again.args, again.env);
    // V8's young generation stays at its first size from here on: while the modules load it would
    // otherwise grow to 2 x 16 MiB and keep that for the whole run (local/young-generation.ts).
    require("node:v8").setFlagsFromString("--semi-space-growth-factor=1");
  }
  import("./commands/program.ts");
}

/**
 * How `run` re-executes itself (the same process: process.execve keeps its pid, its open files, so
 * stdin, stdout and stderr, and signals go to it; its exit status is the command's), or undefined
 * when it does not. Measured on a 1 GiB window (docs/bench-results.md, figure 4):
 * - `--liftoff-only`: the HTTP parser of the downloads and S3 requests (undici's llhttp, in
 *   WebAssembly) stays on V8's baseline compiler. Its optimising compile, on a background thread,
 *   needs a 15 MiB compiler zone once per process, memory that thread's malloc arena then keeps;
 *   the parser mostly hands body bytes on, so the baseline code costs no measurable time. A V8
 *   flag that a running process cannot set (v8.setFlagsFromString has no effect on WebAssembly).
 * - MALLOC_ARENA_MAX=2 (glibc, read at start only): Node's threads share two malloc arenas instead
 *   of up to 8 per core, each keeping the freed memory of its own thread.
 * FLUSSONIC_BACKUP_REEXEC=0 (or any value: it marks the re-executed process) runs without it; a
 * MALLOC_ARENA_MAX already set is kept.
 */
function runtimeSettings() {
  const proc = process;
  if (proc.env.FLUSSONIC_BACKUP_REEXEC !== undefined) return undefined;
  if (typeof proc.execve !== "function" || proc.platform === "win32") return undefined;
  try {
    require("node:fs").accessSync(proc.execPath, require("node:fs").constants.X_OK);
  } catch {
    // A failed execve would abort the process: go on without the settings instead.
    return undefined;
  }
  const flags = proc.execArgv.includes("--liftoff-only") ? [] : ["--liftoff-only"];
  return {
    file: proc.execPath,
    args: [proc.execPath, ...proc.execArgv, ...flags, __filename, ...proc.argv.slice(2)],
    env: { MALLOC_ARENA_MAX: "2", ...proc.env, FLUSSONIC_BACKUP_REEXEC: "1" },
  };
}
