/**
 * A central source's windows are sized for the rate one copy really gets: its share of the fleet's
 * cap, and of its server's own (eachServer), whichever is lower; so that a window still finishes
 * well within the copier's timeout on a server capped lower than the fleet's share.
 */
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../functions/config/config.ts";
import { streamWindowSeconds } from "../../functions/planner/plan-backup.ts";

const config = (eachServer: Record<string, unknown>) =>
  parseConfig(
    JSON.stringify({
      bucket: "fleet-backup",
      sources: [
        {
          name: "fleet",
          kind: "central",
          url: "https://central.example",
          maxConcurrentCopies: 20,
          maxBandwidthMbps: 1000,
          eachServer,
        },
      ],
    }),
    "c.json",
  );

describe("window length of a central source's streams", () => {
  it("follows each server's per-copy rate when it is below the fleet's per-copy share", () => {
    const bitrateBps = 4_000_000;
    // Fleet: 1000 Mbit/s over 20 copies = 50 Mbit/s a copy; a server: 2 Mbit/s over 2 copies = 1.
    const slow = config({ maxConcurrentCopies: 2, maxBandwidthMbps: 2 });
    const seconds = streamWindowSeconds(slow, slow.sources[0]!, bitrateBps, 900, "slices");
    // One window at 1 Mbit/s takes at most a third of the 900 s timeout.
    expect((seconds * bitrateBps) / 1_000_000).toBeLessThanOrEqual(300);
    const fast = config({ maxConcurrentCopies: 2, maxBandwidthMbps: 200 });
    expect(streamWindowSeconds(fast, fast.sources[0]!, bitrateBps, 900, "slices")).toBeGreaterThan(seconds);
  });
});
