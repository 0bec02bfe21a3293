import { defineConfig } from "vitest/config";

/**
 * Two projects, run one after the other by `npm test` (`vitest run --project timing`, then
 * `--project main`): tests that measure rates and timings (the cap, pacing, the simulator's meter,
 * the benchmark smoke run) run first, one file at a time, on an otherwise quiet machine; then
 * everything else, two files at a time (most of it waits on sockets, not the CPU). A plain
 * `vitest run` runs both.
 */
const timing = [
  "test/source/caps.test.ts",
  "test/source/pacing.test.ts",
  "test/simulator/simulator.test.ts",
  "test/e2e/bench-smoke.test.ts",
];

const common = {
  testTimeout: 60_000,
  hookTimeout: 60_000,
  pool: "forks" as const,
};

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          ...common,
          name: "timing",
          include: timing,
          maxWorkers: 1,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          ...common,
          name: "main",
          include: ["test/**/*.test.ts"],
          exclude: timing,
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
