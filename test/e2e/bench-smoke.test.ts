/**
 * The benchmark runs and produces all five figures (`npm run bench -- --smoke`: small sizes, so
 * only the shape of the results is checked here, never their values).
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const dir = mkdtempSync(join(tmpdir(), "fb-bench-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Results {
  smoke: boolean;
  table: string;
  figures: { figure: number; rows: { what: string; verdict: string; measured: string }[] }[];
}

describe("benchmark smoke run", () => {
  it("prints a table and writes JSON with rows for all five figures", async () => {
    const out = join(dir, "smoke.json");
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["dev/bench/main.ts", "--smoke", "--out", out],
      {
        cwd: join(import.meta.dirname, "../.."),
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    const results = JSON.parse(readFileSync(out, "utf8")) as Results;
    expect(results.smoke).toBe(true);
    expect(stdout).toContain(results.table);
    for (const figure of [1, 2, 3, 4, 5]) {
      const rows = results.figures.filter((f) => f.figure === figure).flatMap((f) => f.rows);
      expect(rows.length, `figure ${figure}`).toBeGreaterThan(0);
      expect(
        rows.every((r) => ["PASS", "MISS", "ref", "info", "skip"].includes(r.verdict)),
        `figure ${figure}`,
      ).toBe(true);
      // Measured, not crashed (a figure that throws is reported as a "<title>: failed" row).
      expect(
        rows.filter((r) => r.what.endsWith(": failed")),
        `figure ${figure}`,
      ).toEqual([]);
    }
  }, 300_000); // it shares the machine with the other main test files
});
