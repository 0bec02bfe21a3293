/**
 * Issue 21: the import rule (.dependency-cruiser.cjs, `npm run deps`) holds for the tree, and it
 * fails on an import that points the wrong way (checked on a copy of the rule's input with one
 * such import added, so the rule is known to bite).
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const depcruise = join("node_modules", ".bin", "depcruise");

async function cruise(...paths: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run(depcruise, [...paths, "--config", ".dependency-cruiser.cjs"], {
      timeout: 60_000,
    });
    return { code: 0, out: stdout };
  } catch (e) {
    const err = e as { code: number; stdout: string };
    return { code: err.code, out: err.stdout };
  }
}

describe("import rule", () => {
  it("passes on the tree: nothing in the product imports dev/ or test/", async () => {
    const r = await cruise("functions", "ops", "local", "cli", "simulator", "infra");
    expect(r.out).toContain("no dependency violations found");
    expect(r.code).toBe(0);
  });

  it("fails when the domain imports the store or a Lambda entry imports local code", async () => {
    const dir = mkdtempSync(join("functions", "domain", "tmp-rule-"));
    const lambdaFile = join("functions", "lambda", `tmp-rule-${process.pid}.ts`);
    try {
      writeFileSync(join(dir, "bad.ts"), 'export { BackupStore } from "../../store/backup-store.ts";\n');
      writeFileSync(lambdaFile, 'export { lineLog } from "../../local/line-log.ts";\n');
      const r = await cruise(dir, lambdaFile);
      expect(r.code).not.toBe(0);
      expect(r.out).toContain("domain-is-pure");
      expect(r.out).toContain("lambda-bundles-no-local-code");
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(lambdaFile, { force: true });
    }
  });
});
