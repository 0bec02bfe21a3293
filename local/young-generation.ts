/**
 * The young generation of the V8 heap of a long copy run, kept at its starting size.
 *
 * A run copying many small windows makes short-lived objects at a high rate (SDK requests and
 * responses, XML, JSON, socket reads), and V8 doubles its new space each time many of them survive
 * a scavenge, up to a maximum it derives from the machine's memory: 2 x 64 MiB on a machine with
 * 24 GiB. That memory stays committed for the rest of the process, however little of it is live:
 * `run --once` over 100 streams measured 171 MiB of heap for 50 MiB used, peak RSS 342 MiB. With
 * growth off the new space stays at its first size (about 1-2 MiB); the few objects that outlive
 * it are promoted and collected by the ordinary old-generation collections.
 *
 * `--max-semi-space-size` would do the same but is read only when the heap is set up (a node flag,
 * not settable by a running process); the growth factor is read at each growth.
 */
import { setFlagsFromString } from "node:v8";

let bounded = false;

/** Stops the new space from growing (once per process; harmless where the flag is unknown). */
export function boundYoungGeneration(): void {
  if (bounded) return;
  bounded = true;
  try {
    setFlagsFromString("--semi-space-growth-factor=1");
  } catch {
    // Not V8: nothing to bound.
  }
}

/**
 * How far V8 lets the old generation grow past what the last full collection left live before it
 * collects again (the next limit is this much above the live size): its own factor, up to about 4x
 * for a process that allocates fast, let `run --once` over 300 small streams end with 65-100 MiB of
 * old space for 35-40 MiB live, most of its peak RSS. 50% keeps the old space near what is live:
 * measured on that run at load 1.5-3.6, peak RSS 299 MiB without, 239 with 50% at the same CPU a
 * window (16 ms), 246 with 20% at 20 ms (more full collections). Read by V8 at each collection, so
 * a running process can set it.
 */
export const HEAP_GROWING_PERCENT = 50;

let growthBounded = false;

/** Bounds the old generation's growth between full collections (once per process). */
export function boundHeapGrowth(): void {
  if (growthBounded) return;
  growthBounded = true;
  try {
    setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  } catch {
    // Not V8: nothing to bound.
  }
}
