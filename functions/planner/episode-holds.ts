/**
 * Holds from Flussonic's episodes (docs/evidence.md, "Holds from episodes"): once per planner run,
 * for a source with `episodes` configured, the source's episodes are read (Central's episode list
 * or the episodes URL) and each episode's range, with its pre- and post-roll, is held as `hold`
 * holds a range: the windows already stored get held copies, the hold goes into the source's hold
 * book (so the copier holds the windows stored later), and each new or grown hold is audited.
 * Idempotent: an episode already held as it is changes nothing; an open episode's hold grows as the
 * episode does; an episode no longer listed keeps its hold until released. Episodes that cannot
 * be read (5xx, garbage) are a warning: the backup goes on and the next run tries again.
 */
import type { BackupConfig, SourceConfig } from "../config/config.ts";
import { applyEpisodeHolds, episodeHoldChanges } from "../domain/evidence.ts";
import type { Log } from "../shared/log.ts";
import type { ArchiveSource } from "../source/flussonic.ts";
import { appendAudit } from "../store/audit.ts";
import type { BackupStore } from "../store/backup-store.ts";
import { bucketHasObjectLock, holdStoredIn, readHoldBook, updateHoldBook } from "../store/holds.ts";

export interface EpisodeHoldsReport {
  /** Episodes the source listed on the backed-up streams. */
  episodes: number;
  created: number;
  grown: number;
  /** Stored windows held by this run's new and grown holds. */
  windows: number;
}

export async function holdEpisodes(
  deps: { config: BackupConfig; store: BackupStore; logger: Log },
  source: SourceConfig,
  client: ArchiveSource,
  streams: readonly string[],
  now: number,
): Promise<EpisodeHoldsReport | undefined> {
  const settings = source.episodes;
  if (!settings || !client.listEpisodes || streams.length === 0) return undefined;
  const log = deps.logger;
  let episodes: Awaited<ReturnType<NonNullable<ArchiveSource["listEpisodes"]>>>;
  try {
    episodes = await client.listEpisodes(streams);
  } catch (error) {
    log.warn(
      "episodes not read: no hold made from them this run (the backup goes on; the next run asks again)",
      {
        source: source.name,
        error: error instanceof Error ? error.message : String(error),
      },
    );
    return undefined;
  }
  const report: EpisodeHoldsReport = { episodes: episodes.length, created: 0, grown: 0, windows: 0 };
  if (episodes.length === 0) return report;
  try {
    const asked = deps.config.evidence.legalHold;
    const locked = asked === "off" ? false : await bucketHasObjectLock(deps.store);
    if (asked === "required" && !locked) {
      log.warn(
        'episodes not held: evidence.legalHold is "required" but the bucket has no Object Lock; deploy the bucket with Object Lock or set evidence.legalHold to "auto"',
        { source: source.name, bucket: deps.store.bucket },
      );
      return report;
    }
    const { book } = await readHoldBook(deps.store, source.name);
    const changes = episodeHoldChanges(book, episodes, {
      preRollSeconds: settings.preRollSeconds,
      postRollSeconds: settings.postRollSeconds,
      now,
      legalHold: locked,
    });
    if (changes.length === 0) return report;
    const holdStored = async () => {
      let n = 0;
      for (const c of changes) {
        n += await holdStoredIn(deps.store, source.name, c.hold.stream, c.added, c.hold.legalHold);
      }
      return n;
    };
    // The windows stored so far, then the book (a failure before it: the next run does it all
    // again), then once more the windows: one a copier stored meanwhile, before the book had the
    // hold it would have read, is held here (a copy already made is kept as it is).
    await holdStored();
    await updateHoldBook(deps.store, source.name, (b) => applyEpisodeHolds(b, changes));
    report.windows = await holdStored();
    for (const c of changes) {
      if (c.kind === "new") report.created++;
      else report.grown++;
    }
    for (const c of changes) {
      await appendAudit(deps.store, {
        action: "episode-hold",
        at: now,
        by: "episode",
        source: source.name,
        stream: c.hold.stream,
        from: c.hold.from,
        to: c.hold.to,
        detail: { id: c.hold.id, episode: c.hold.origin?.episode, change: c.kind, added: c.added },
      });
    }
    log.info("episodes held", { source: source.name, ...report });
  } catch (error) {
    log.warn("holding episodes failed (the backup goes on; the next run tries again)", {
      source: source.name,
      error: error instanceof Error ? error.message : String(error),
    });
  }
  return report;
}
