/**
 * Fragment index entries as the planner leaves them, for tests and the bench that need a long
 * archive without copying one: a 600 s window of ten 60 s fragments.
 */
import { FRAGMENT_INDEX_VERSION, type StoredWindowIndex } from "../../functions/domain/fragment-index.ts";

/** A 600 s fMP4 window at `from` (unix seconds) stored under `key`, `size` bytes, ten 60 s fragments. */
export function syntheticWindowIndex(from: number, key: string, size = 1000): StoredWindowIndex {
  return {
    v: FRAGMENT_INDEX_VERSION,
    from,
    duration: 600,
    format: "mp4",
    key,
    size,
    origin: "absolute",
    init: [0, 100],
    n: 10,
    o: 100,
    l: Array(10).fill(90),
    t: 0,
    d: [[60_000, 10]],
    k: [10],
  };
}
