/**
 * Automatic day proofs (docs/evidence.md, "Day proofs"): when a signing key is configured, the
 * planner writes each stream's proof of a UTC day once the day is over (`settleSeconds` after
 * midnight) and its windows are stored, or, a day later, whatever is still missing is stated as
 * missed. Write-once (the proof's key is written If-None-Match: a proof `prove` made first stands);
 * the last day proven per stream is noted in one object per source, so a run asks nothing more of
 * S3 for a stream already proven. The two days before today are considered (a run missed at
 * midnight catches up); older days are left to `prove`. A failure is a warning: the backup goes on.
 */
import type { BackupConfig, SourceConfig } from "../config/config.ts";
import { utcDate } from "../domain/keys.ts";
import type { TimeRange } from "../domain/ranges.ts";
import type { Log } from "../shared/log.ts";
import type { ArchiveSource } from "../source/flussonic.ts";
import type { BackupStore } from "../store/backup-store.ts";
import { noteProvenDays, proveDay, readProvenDays } from "../store/proofs.ts";
import type { Signer } from "../store/signing.ts";

const DAY = 86400;
/** Days before today a run may prove (yesterday and the day before). */
const DAYS_BACK = 2;

/** What the planner knows of a stream this run: its name and the recorded seconds not stored. */
export interface ProvableStream {
  stream: string;
  missing: readonly TimeRange[];
  /** Start of the stream's retention: a day that ends before it is not proven (nothing is kept). */
  keepFrom: number;
}

/**
 * The days of a stream due for a proof at `now`: over for `settleSeconds`, after `lastProven`,
 * ending inside the retention, and either nothing recorded of them is missing or they ended more
 * than a day ago.
 */
export function dueDays(
  now: number,
  settleSeconds: number,
  lastProven: string | undefined,
  missing: readonly TimeRange[],
  keepFrom: number,
): string[] {
  const today = Math.floor(now / DAY) * DAY;
  const out: string[] = [];
  for (let start = today - DAY_BACK_SECONDS; start < today; start += DAY) {
    const end = start + DAY;
    const day = utcDate(start);
    if (now < end + settleSeconds || end <= keepFrom || (lastProven !== undefined && day <= lastProven))
      continue;
    const lacking = missing.some((r) => r.from < end && start < r.to);
    if (lacking && now < end + DAY) continue;
    out.push(day);
  }
  return out;
}
const DAY_BACK_SECONDS = DAYS_BACK * DAY;

export async function proveDays(
  deps: { config: BackupConfig; store: BackupStore; logger: Log; signer: () => Promise<Signer | undefined> },
  source: SourceConfig,
  client: ArchiveSource,
  streams: readonly ProvableStream[],
  now: number,
): Promise<string[]> {
  const log = deps.logger;
  const written: string[] = [];
  try {
    const { days } = await readProvenDays(deps.store, source.name);
    const due = streams
      .map((s) => ({
        s,
        days: dueDays(now, deps.config.settleSeconds, days.streams[s.stream], s.missing, s.keepFrom),
      }))
      .filter((d) => d.days.length > 0);
    if (due.length === 0) return written;
    const signer = await deps.signer();
    if (!signer) return written;
    const proven: Record<string, string> = {};
    for (const { s, days: list } of due) {
      for (const day of list) {
        const from = Date.parse(`${day}T00:00:00Z`) / 1000;
        const recorded = await client.recordedRanges(s.stream, { from, to: from + DAY }).catch(() => null);
        const { created } = await proveDay({
          store: deps.store,
          source: source.name,
          stream: s.stream,
          day,
          recorded,
          signer,
          now,
        });
        if (created) written.push(`${s.stream} ${day}`);
        proven[s.stream] = day;
      }
    }
    await noteProvenDays(deps.store, source.name, proven);
    if (written.length > 0)
      log.info("day proofs written", { source: source.name, proofs: written.length, keyId: signer.keyId });
  } catch (error) {
    log.warn("day proofs not written this run (the backup goes on; the next run tries again)", {
      source: source.name,
      error: error instanceof Error ? error.message : String(error),
    });
  }
  return written;
}
