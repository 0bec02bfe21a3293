/**
 * What the documentation says, read by the tests that hold it to what the program does: the README's
 * example configuration, the shell blocks of README.md and docs/**\/*.md with their skip markers,
 * and the relative links between the pages.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

/** The repository's root. */
export const DOCS_ROOT = resolve(import.meta.dirname, "../..");

/** The README's example configuration: the ```json block with "my-dvr-backup" (indented in its list item). */
export function documentedConfig(): { bucket: string; sources: Record<string, unknown>[] } {
  const text = readFileSync(join(DOCS_ROOT, "README.md"), "utf8");
  const block = [...text.matchAll(/```json\n([\s\S]*?)```/g)].find((m) => m[1]!.includes('"my-dvr-backup"'));
  if (!block) throw new Error("README.md: the example configuration (```json with my-dvr-backup) is gone");
  return JSON.parse(block[1]!.replace(/^ {3}/gm, ""));
}

/** One ```sh, ```bash or ```console block of a page. */
export interface ShellBlock {
  /** The page, relative to the repository (`README.md`, `docs/operations.md`). */
  page: string;
  /** 1-based line of the opening fence. */
  line: number;
  language: "sh" | "bash" | "console";
  /** The commands as written: continuation lines joined, `$ ` prompts removed, output lines left out. */
  commands: string[];
  /** The reason of a `<!-- docs-test: skip <reason> -->` right before the block. */
  skip?: string;
}

const SKIP = /^<!--\s*docs-test:\s*skip\s+(.+?)\s*-->$/;

/** Every shell block of a page, in order. */
export function shellBlocks(page: string): ShellBlock[] {
  const lines = readFileSync(join(DOCS_ROOT, page), "utf8").split("\n");
  const out: ShellBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const indent = open[1]!.length;
    let end = i + 1;
    while (end < lines.length && !/^\s*```\s*$/.test(lines[end]!)) end++;
    const language = open[2]!;
    if (language === "sh" || language === "bash" || language === "console") {
      let before = i - 1;
      while (before >= 0 && lines[before]!.trim() === "") before--;
      const skip = before >= 0 ? SKIP.exec(lines[before]!.trim())?.[1] : undefined;
      const body = lines.slice(i + 1, end).map((l) => l.slice(Math.min(indent, l.search(/\S|$/))));
      out.push({ page, line: i + 1, language, commands: commandsOf(body, language), skip });
    }
    i = end;
  }
  return out;
}

function commandsOf(body: string[], language: ShellBlock["language"]): string[] {
  const commands: string[] = [];
  let pending: string | undefined;
  for (const raw of body) {
    let line = raw;
    if (pending === undefined) {
      if (language === "console") {
        if (!line.startsWith("$ ")) continue; // the output shown after a command
        line = line.slice(2);
      }
      if (line.trim() === "" || line.trim().startsWith("#")) continue;
    }
    const joined = pending === undefined ? line : `${pending} ${line.trim()}`;
    if (/\\\s*$/.test(joined)) {
      pending = joined.replace(/\s*\\\s*$/, "");
      continue;
    }
    pending = undefined;
    commands.push(joined.trim());
  }
  if (pending !== undefined) commands.push(pending.trim());
  return commands;
}

/** README.md, then the pages in the order docs/README.md lists them, then any page it does not list. */
export function documentationPages(): string[] {
  const listed = [...readFileSync(join(DOCS_ROOT, "docs/README.md"), "utf8").matchAll(/\]\(([^)#]+\.md)\)/g)]
    .map((m) => `docs/${m[1]!}`)
    .filter((p) => p !== "docs/../README.md");
  const all = markdownUnder("docs");
  const pages = ["README.md", "docs/README.md", ...listed.filter((p) => all.includes(p))];
  return [...new Set([...pages, ...all])];
}

function markdownUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(DOCS_ROOT, dir), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) out.push(...markdownUnder(path));
    else if (entry.name.endsWith(".md")) out.push(path);
  }
  return out.sort();
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes. */
export function headingAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, "")
    .replace(/ /g, "-");
}

/** Relative links of a page whose file or heading does not exist: "page: target (why)". */
export function brokenLinks(page: string): string[] {
  const text = outsideFences(readFileSync(join(DOCS_ROOT, page), "utf8"));
  const broken: string[] = [];
  for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = m[1]!;
    if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
    const [path, anchor] = target.split("#") as [string, string | undefined];
    const file = path === "" ? join(DOCS_ROOT, page) : resolve(dirname(join(DOCS_ROOT, page)), path);
    if (!existsSync(file)) {
      broken.push(`${page}: ${target} (no file ${relative(DOCS_ROOT, file)})`);
      continue;
    }
    if (anchor === undefined || !file.endsWith(".md")) continue;
    const anchors = outsideFences(readFileSync(file, "utf8"))
      .split("\n")
      .filter((l) => /^#{1,6} /.test(l))
      .map((l) => headingAnchor(l.replace(/^#+ /, "")));
    if (!anchors.includes(anchor)) broken.push(`${page}: ${target} (no heading #${anchor})`);
  }
  return broken;
}

/** The page without its fenced blocks (a fence is a line of its own starting with ```). */
function outsideFences(text: string): string {
  let inside = false;
  return text
    .split("\n")
    .filter((line) => {
      if (/^\s*```/.test(line)) {
        inside = !inside;
        return false;
      }
      return !inside;
    })
    .join("\n");
}
