import { defineConfig } from "vitest/config";

/**
 * The tests `npm run mutate` (Stryker, stryker.config.json) runs against each mutant of the pure
 * core: the domain tests, the planner's in-process window-sizing and lag tests, and the playback
 * handler's tests (playlists and joins over functions/domain/, in process and in seconds). The
 * planner tests against the emulator kill more mutants but take seconds to minutes per run: the
 * lease decisions have their own run (`npm run mutate:leases`); the rest stay in `npm test`.
 */
export default defineConfig({
  test: {
    include: [
      "test/domain/**/*.test.ts",
      "test/planner/window-sizing.test.ts",
      "test/planner/backup-lag.test.ts",
      "test/playback/handler.test.ts",
      "test/playback/flussonic-shape.test.ts",
    ],
    pool: "forks",
    testTimeout: 60_000,
  },
});
