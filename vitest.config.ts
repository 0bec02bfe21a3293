import { defineConfig } from "vitest/config";

/**
 * Two projects, run one after the other by `npm test` (`vitest run --project timing`, then
 * `--project main`): tests that assert rates and timings (the cap, pacing, the simulator's meter)
 * run first, one file at a time, on an otherwise quiet machine; then everything else, three files at
 * a time (most of it waits on sockets and child processes: measured on 2 cores, three files at once
 * took the main project from 516 s to 459 s). The benchmark's smoke run is in main: it
 * checks the shape of the results, never their values, and mostly waits on its capped copies, so
 * it overlaps with the other files instead of holding the machine alone. A plain `vitest run`
 * runs both.
 */
const timing = [
  "test/source/caps.test.ts",
  "test/source/pacing.test.ts",
  "test/simulator/simulator.test.ts",
  "test/copier/cap-share-meter.test.ts",
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
          maxWorkers: 3,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
