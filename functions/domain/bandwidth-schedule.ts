/**
 * A source's daily schedule of bandwidth caps: e.g. 10 Mbit/s from 08:00 to 20:00 and the full
 * cap at night, or 0 (no copying) during the evening peak. Outside every entry the source's
 * `maxBandwidthMbps` applies. Times are wall-clock in the schedule's time zone (IANA, default UTC).
 */

export interface BandwidthPeriod {
  /** "HH:MM", inclusive. */
  from: string;
  /** "HH:MM", exclusive; earlier than `from` means the period runs past midnight. */
  to: string;
  /** Cap during the period; 0 means no copying. */
  maxBandwidthMbps: number;
}

export const HH_MM = /^([01]\d|2[0-3]):([0-5]\d)$/;

export function minutesOfDay(hhmm: string): number {
  const m = HH_MM.exec(hhmm);
  if (!m) throw new Error(`expected a time of day as HH:MM, got "${hhmm}"`);
  return Number(m[1]) * 60 + Number(m[2]);
}

/** Whether `zone` is a time zone this runtime knows (IANA name such as "Europe/Moscow", or "UTC"). */
export function isKnownTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-GB", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** Minutes since local midnight in `zone` at unix second `at`. */
export function localMinutes(at: number, zone: string): number {
  const parts = new Intl.DateTimeFormat("en-GB", {
    timeZone: zone,
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).formatToParts(new Date(at * 1000));
  const hour = Number(parts.find((p) => p.type === "hour")?.value ?? 0);
  const minute = Number(parts.find((p) => p.type === "minute")?.value ?? 0);
  return hour * 60 + minute;
}

/** The cap in force at unix second `at`: the first period that contains it, else `defaultMbps`. */
export function bandwidthAt(
  periods: readonly BandwidthPeriod[],
  defaultMbps: number,
  at: number,
  zone = "UTC",
): number {
  if (periods.length === 0) return defaultMbps;
  const now = localMinutes(at, zone);
  for (const p of periods) {
    const from = minutesOfDay(p.from);
    const to = minutesOfDay(p.to);
    const inside = from <= to ? now >= from && now < to : now >= from || now < to;
    if (inside) return p.maxBandwidthMbps;
  }
  return defaultMbps;
}
