/**
 * issue 15 item 5: a lease shorter than the copy timeout leaves every window stale (nothing is
 * copied, and the run used to say "ok"). The config refuses it, and so do `run` and `status`
 * against their --copy-timeout.
 */
import { describe, expect, it } from "vitest";
import { ConfigError, checkLeaseCoversCopy, parseConfig } from "../../functions/config/config.ts";

const minimal = { bucket: "my-dvr-backup", sources: [{ name: "s1", url: "http://streamer1.example:8080" }] };

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe("leaseSeconds must outlast a copy", () => {
  it("refuses leaseSeconds shorter than the Lambda copier's 900 s timeout plus 300 s to start, naming file and field", () => {
    const p = problems(() => parseConfig(JSON.stringify({ ...minimal, leaseSeconds: 600 }), "cfg.json"));
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(
      /^cfg\.json: leaseSeconds: expected at least 1200 seconds: the copier's timeout \(900 s/,
    );
    expect(p[0]).toContain("(got 600)");
    expect(
      problems(() => parseConfig(JSON.stringify({ ...minimal, leaseSeconds: 1199 }), "cfg.json")),
    ).toHaveLength(1);
    expect(parseConfig(JSON.stringify({ ...minimal, leaseSeconds: 1200 }), "cfg.json").leaseSeconds).toBe(
      1200,
    );
  });

  it("refuses a --copy-timeout the config's leases cannot carry, naming the file, the field and the flag", () => {
    const config = parseConfig(JSON.stringify({ ...minimal, leaseSeconds: 1500 }), "cfg.json");
    expect(() => checkLeaseCoversCopy(config, "cfg.json", 900)).not.toThrow();
    expect(() => checkLeaseCoversCopy(config, "cfg.json", 1200)).not.toThrow();
    expect(problems(() => checkLeaseCoversCopy(config, "cfg.json", 1201))).toEqual([
      "cfg.json: leaseSeconds: 1500 s is shorter than --copy-timeout 1201 s plus 300 s to start a copy, so every window would be left stale and nothing copied: set leaseSeconds to at least 1501 or lower --copy-timeout",
    ]);
  });
});
