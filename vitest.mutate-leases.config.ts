import { defineConfig } from "vitest/config";

/**
 * The tests `npm run mutate:leases` (stryker.leases.json) runs against each mutant of the planner's
 * lease decisions: the planner tests that check leases through what the next run queues and writes
 * (in process against the embedded emulator, a few seconds each), the manifest race lost in part or
 * for good, the retention race (a stream in danger: deadline order with leased copies counted), the
 * queue test that leases only what SQS took, and the domain tests of the manifest, windows and the
 * lease setting.
 */
export default defineConfig({
  test: {
    include: [
      "test/planner/planner-leases.test.ts",
      "test/planner/planner-promises.test.ts",
      "test/planner/manifest-race.test.ts",
      "test/planner/retention-race.test.ts",
      "test/planner/danger-leases.test.ts",
      "test/domain/manifest.test.ts",
      "test/domain/windows.test.ts",
      "test/config/lease.test.ts",
      "test/queue/copy-queue.test.ts",
    ],
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
