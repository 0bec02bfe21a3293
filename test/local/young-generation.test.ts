/**
 * issue 26 item 3: a run copying many small windows grew V8's new space to its maximum (2 x 64 MiB
 * on a machine with 24 GiB) and kept it. After boundYoungGeneration the new space stays small
 * however much short-lived garbage the process makes. Measured in a child process (a fresh heap).
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const module = fileURLToPath(new URL("../../local/young-generation.ts", import.meta.url));

function newSpaceMiB(bound: boolean): number {
  const script = `
    import { getHeapSpaceStatistics } from "node:v8";
    import { boundYoungGeneration } from ${JSON.stringify(module)};
    if (${bound}) boundYoungGeneration();
    let keep = [];
    for (let i = 0; i < 3e6; i++) { keep.push({ a: i, b: "x" + i }); if (keep.length > 50000) keep = []; }
    const space = getHeapSpaceStatistics().find((s) => s.space_name === "new_space");
    process.stdout.write(String(space.space_size / 1048576));
  `;
  return Number(execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" }));
}

describe("boundYoungGeneration", () => {
  it("keeps the new space at its first few MiB under a high rate of short-lived objects", () => {
    const bounded = newSpaceMiB(true);
    expect(bounded).toBeGreaterThan(0);
    expect(bounded).toBeLessThanOrEqual(4);
  });
});
