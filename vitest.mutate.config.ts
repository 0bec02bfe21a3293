import { defineConfig } from "vitest/config";

/**
 * The tests `npm run mutate` (Stryker, stryker.config.json) runs against each mutant of the pure
 * core: the unit tests, which exercise functions/domain/ in process and in seconds. The integration
 * tests kill more mutants but take minutes per run; they stay in `npm test`.
 */
export default defineConfig({
  test: {
    include: ["test/domain/**/*.test.ts", "test/planner/**/*.test.ts"],
    pool: "forks",
    testTimeout: 60_000,
  },
});
