/**
 * Reading a config file: JSON with comments, parse errors with line and column, zod problems
 * with their JSON path (`sources[1].streams[0]`), duplicate names, inline secrets refused.
 */
import { readFileSync } from "node:fs";
import { type ParseError, parse as parseJsonc, printParseErrorCode } from "jsonc-parser";
import { z } from "zod";
import { type BackupConfig, configSchema, LEASE_START_MARGIN_SECONDS } from "./schema.ts";
/** A configuration problem: names the file, the JSON path and what is expected. */
export class ConfigError extends Error {
  readonly code = "FB_CONFIG";
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join("\n"));
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/** `sources[1].streams[0]` from a zod path. */
export function formatJsonPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    // A key that is not a plain name (empty, spaces, dots, quotes) is written as a JSON string.
    else if (typeof part !== "string" || !/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(part))
      out += `[${JSON.stringify(String(part))}]`;
    else out += out ? `.${part}` : part;
  }
  return out || "(top level)";
}

const INLINE_SECRET_KEYS = new Set(["password", "token", "secret"]);

/** Parses and validates configuration text; `file` only labels messages. Throws ConfigError. */
export function parseConfig(text: string, file: string): BackupConfig {
  const errors: ParseError[] = [];
  const data: unknown = parseJsonc(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length > 0) {
    // The first syntax error only: the ones after it are mostly its echoes.
    const first = errors[0]!;
    const { line, column } = positionOf(text, first.offset);
    throw new ConfigError([`${file}:${line}:${column}: not valid JSON: ${printParseErrorCode(first.error)}`]);
  }
  const result = configSchema.safeParse(data, { reportInput: true });
  const duplicates = duplicateNames(data).map((d) => `${file}: ${d}`);
  if (result.success && duplicates.length === 0) return result.data;
  const issues = result.success ? [] : result.error.issues;
  const problems = issues.flatMap((issue) => {
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => {
        const hint = INLINE_SECRET_KEYS.has(key)
          ? ": secrets never go in the file; put it in an environment variable and name it (passwordEnv, tokenEnv)"
          : "";
        return `${file}: ${formatJsonPath([...issue.path, key])}: unknown key "${key}"${hint}`;
      });
    }
    const got =
      "input" in issue && (typeof issue.input === "number" || typeof issue.input === "boolean")
        ? ` (got ${String(issue.input)})`
        : "";
    const message = (
      issue.code === "invalid_type" && issue.input === undefined ? requiredMessage(issue) : issue.message
    ).replace("ALLOW_FIELD", formatJsonPath([...issue.path.slice(0, -1), "allowCredentialsOverHttp"]));
    return [`${file}: ${formatJsonPath(issue.path)}: ${message}${got}`];
  });
  throw new ConfigError([...problems, ...duplicates]);
}

function requiredMessage(issue: z.core.$ZodIssue): string {
  return `is required: ${issue.message.replace(/^Invalid input: /, "").replace(/, received undefined$/, "")}`;
}

/**
 * Names given twice: sources, and streams within a source. Checked on the raw data so that they are
 * reported together with every other problem, not only once the rest is valid.
 */
function duplicateNames(data: unknown): string[] {
  const problems: string[] = [];
  const sources = (data as { sources?: unknown } | null)?.sources;
  if (!Array.isArray(sources)) return problems;
  const seenSources = new Set<string>();
  sources.forEach((source: unknown, i) => {
    const s = source as { name?: unknown; streams?: unknown } | null;
    if (typeof s?.name === "string") {
      if (seenSources.has(s.name)) problems.push(`sources[${i}].name: source "${s.name}" is defined twice`);
      seenSources.add(s.name);
    }
    if (!Array.isArray(s?.streams)) return;
    const seenStreams = new Set<string>();
    s.streams.forEach((entry: unknown, j) => {
      const name = typeof entry === "string" ? entry : (entry as { name?: unknown } | null)?.name;
      if (typeof name !== "string") return;
      if (seenStreams.has(name))
        problems.push(`sources[${i}].streams[${j}]: stream "${name}" is listed twice`);
      seenStreams.add(name);
    });
  });
  return problems;
}

function positionOf(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset).split("\n");
  return { line: before.length, column: (before.at(-1)?.length ?? 0) + 1 };
}

/**
 * Refuses a copier timeout the config's leases cannot carry (the config itself is checked against
 * the Lambda copier's timeout; a local run may set another with --copy-timeout): every window would
 * be left stale and nothing copied. Throws ConfigError naming the file, the field and the flag.
 */
export function checkLeaseCoversCopy(config: BackupConfig, file: string, copyTimeoutSeconds: number): void {
  const needed = copyTimeoutSeconds + LEASE_START_MARGIN_SECONDS;
  if (config.leaseSeconds >= needed) return;
  throw new ConfigError([
    `${file}: leaseSeconds: ${config.leaseSeconds} s is shorter than --copy-timeout ${copyTimeoutSeconds} s plus ${LEASE_START_MARGIN_SECONDS} s to start a copy, so every window would be left stale and nothing copied: set leaseSeconds to at least ${needed} or lower --copy-timeout`,
  ]);
}

/** Reads and validates a config file. Throws ConfigError naming the file. */
export function loadConfigFile(path: string): BackupConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError([
      `${path}: cannot read the config file${code === "ENOENT" ? ": no such file" : `: ${String(code)}`}`,
    ]);
  }
  return parseConfig(text, path);
}

/** JSON Schema of the config file, for editors (`$schema`). */
export function configJsonSchema(): unknown {
  return z.toJSONSchema(configSchema, { io: "input", target: "draft-2020-12" });
}
