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
