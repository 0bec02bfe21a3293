/**
 * A clock that runs faster than real time, for the simulator and the tests that race the source's
 * retention: `speed` simulated seconds pass per real second, from `start` (unix seconds).
 */
export interface FastClock {
  /** Unix seconds, whole. */
  now: () => number;
  speed: number;
}

export function fastClock(
  speed: number,
  start = Math.floor(Date.now() / 1000),
  realMs = () => Date.now(),
): FastClock {
  if (!(speed > 0) || !Number.isFinite(speed))
    throw new RangeError(`clock speed must be a positive number, got ${speed}`);
  const t0 = realMs();
  return { speed, now: () => start + Math.floor(((realMs() - t0) / 1000) * speed) };
}
