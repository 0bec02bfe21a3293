/**
 * Bytes per second as the copier reads them from the socket (after the throttle): the client-side
 * view, printed beside the source's own meter to separate what the throttle does from what the
 * kernel's receive buffer takes before anyone reads. The same 10 ms buckets as the source's meter.
 */
export { RateBuckets as ReadRate } from "../../simulator/meter.ts";
