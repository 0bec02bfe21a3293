/**
 * The benchmark's results: one row per measured figure with its target and verdict, printed as a
 * table and written as JSON together with each figure's details.
 */

/** PASS/MISS against our target; "ref" for the peer (rclone) measured beside us; "skip" when not run. */
export type Verdict = "PASS" | "MISS" | "ref" | "info" | "skip";

export interface ResultRow {
  figure: number;
  /** What was measured, e.g. "s16 (16 Mbit/s, 1 copy): peak concurrent downloads". */
  what: string;
  measured: string;
  target: string;
  verdict: Verdict;
}

export interface FigureResult {
  figure: number;
  title: string;
  rows: ResultRow[];
  /** Raw numbers behind the rows (written to the JSON). */
  details: Record<string, unknown>;
  /** Why a figure misses or what the numbers include, in a sentence or two each. */
  notes: string[];
}

export function verdict(ok: boolean): Verdict {
  return ok ? "PASS" : "MISS";
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export function ratio(x: number): string {
  return `${x.toFixed(2)}x`;
}

/** A plain-text table (also valid Markdown, in Biome's format: columns at least 3 wide) of every figure's rows. */
export function resultsTable(figures: FigureResult[]): string {
  const header = ["#", "figure", "measured", "target", "result"];
  const rows = figures.flatMap((f) =>
    f.rows.map((r) =>
      // A "|" inside a cell would end it: written as "\|" (Markdown's escape).
      [String(r.figure), r.what, r.measured, r.target, r.verdict].map((c) => c.replaceAll("|", "\\|")),
    ),
  );
  const widths = header.map((h, i) => Math.max(3, h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...rows.map(line)].join("\n");
}
