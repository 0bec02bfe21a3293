/**
 * What `run --once` prints when planning fails, run as a user runs it: the error once (in the
 * summary, explained), no empty coverage table, exit 1.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cli } from "../../dev/kit/cli-process.ts";

const dir = mkdtempSync(join(tmpdir(), "fb-cli-summary-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("run --once summary", () => {
  it("a source that cannot be asked: its error printed once, no empty table", async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as { port: number }).port;
    await new Promise<void>((r) => server.close(() => r()));
    const file = join(dir, "c.json");
    writeFileSync(
      file,
      JSON.stringify({
        bucket: "bkt",
        sources: [{ name: "s1", url: `http://127.0.0.1:${port}`, streams: "all" }],
      }),
    );
    const r = await cli(["run", "-c", file, "--embedded", join(dir, "state"), "--once"], { cwd: dir });
    expect(r.code).toBe(1);
    const both = `${r.stdout}${r.stderr}`;
    expect(both.match(/connection refused/g) ?? []).toHaveLength(1);
    expect(r.stdout).toContain(`s1: source s1 (http://127.0.0.1:${port}) is unreachable`);
    expect(r.stdout).not.toMatch(/^source\s+stream/m);
  });
});
