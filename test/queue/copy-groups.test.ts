/**
 * The message groups of a Central source's windows (functions/queue/copy-groups.ts): each server's
 * windows spread round-robin over its eachServer.maxConcurrentCopies groups in the order sent, no
 * group for a `kind: "server"` source or a fleet capped at one copy, and deduplication ids that
 * change with the lease.
 */
import { describe, expect, it } from "vitest";
import { parseConfig, type SourceConfig } from "../../functions/config/config.ts";
import type { CopyMessage } from "../../functions/domain/archive.ts";
import { copyGroups, deduplicationId, serverGroup } from "../../functions/queue/copy-groups.ts";

function source(raw: Record<string, unknown>): SourceConfig {
  return parseConfig(
    JSON.stringify({ bucket: "fleet-backup", sources: [{ name: "fleet", retentionDays: 1, ...raw }] }),
    "t.json",
  ).sources[0]!;
}

const central = (each: number, fleet = 20) =>
  source({
    kind: "central",
    url: "https://central.example",
    maxConcurrentCopies: fleet,
    eachServer: { maxConcurrentCopies: each },
  });

const window = (stream: string, from: number, leaseUntil = 5000): CopyMessage => ({
  v: 1,
  source: "fleet",
  stream,
  from,
  duration: 600,
  format: "mp4",
  leaseUntil,
});

describe("message groups of a central source", () => {
  it("spreads each server's windows over its n groups in the order sent, the n first heading them", () => {
    const messages = [
      window("a.example/cam1", 0),
      window("b.example/cam1", 0),
      window("a.example/cam2", 0),
      window("a.example/cam1", 600),
      window("a.example/cam2", 600),
      window("b.example/cam1", 600),
      window("a.example/cam3", 0),
    ];
    for (const runAt of [1000, 1300, 1600, 1900]) {
      const groups = copyGroups(central(3), messages, runAt);
      const ofServer = (server: string) =>
        groups.filter((_, i) => messages[i]!.stream.startsWith(`${server}/`)) as string[];
      const a = ofServer("a.example");
      // Round-robin: the first 3 of a.example are in 3 different groups, then the round repeats.
      expect(new Set(a.slice(0, 3)).size).toBe(3);
      expect(a.slice(3)).toEqual(a.slice(0, 2));
      expect(a.every((g) => /^a\.example#[0-2]$/.test(g))).toBe(true);
      const b = ofServer("b.example");
      expect(b[0]).not.toBe(b[1]);
      expect(b.every((g) => /^b\.example#[0-2]$/.test(g))).toBe(true);
    }
  });

  it("starts the round at a group that varies from run to run, so small runs do not all load group 0", () => {
    const first = new Set(
      Array.from(
        { length: 40 },
        (_, i) => copyGroups(central(4), [window("a.example/cam1", 0)], 1000 + i * 300)[0],
      ),
    );
    expect(first.size).toBe(4);
  });

  it("gives no group to a server source or to a fleet capped at one copy (one group for all: the tighter cap)", () => {
    const server = source({ url: "https://s.example", maxConcurrentCopies: 4 });
    expect(copyGroups(server, [window("cam1", 0)], 1000)).toEqual([undefined]);
    expect(copyGroups(central(2, 1), [window("a.example/cam1", 0)], 1000)).toEqual([undefined]);
  });

  it("keeps groups and deduplication ids within SQS's 128 characters of punctuation and letters", () => {
    const long = `${"x".repeat(130)}.example`;
    expect(serverGroup(long, 1)).toMatch(/^[0-9a-f]{64}#1$/);
    expect(deduplicationId(window(`${long}/cam1`, 0))).toMatch(/^[0-9a-f]{64}$/);
    expect(deduplicationId(window("a.example/café", 0))).toMatch(/^[0-9a-f]{64}$/);
    expect(deduplicationId(window("a.example/cam1", 600))).toBe("a.example/cam1/600/600/5000");
  });

  it("changes a window's deduplication id with its lease (a re-plan is not dropped as a duplicate)", () => {
    expect(deduplicationId(window("a.example/cam1", 0, 5000))).not.toBe(
      deduplicationId(window("a.example/cam1", 0, 8600)),
    );
  });
});
