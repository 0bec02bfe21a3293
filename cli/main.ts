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
  import("./commands/program.ts");
}
