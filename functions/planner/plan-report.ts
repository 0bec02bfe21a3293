/** What a planner run reports: per source, per stream, what it found and what it queued. */
import type { CopyMessage } from "../copier/copy-window.ts";
import type { DepthBasis } from "../domain/deadlines.ts";

export interface StreamPlan {
  stream: string;
  /** Recorded seconds in the retention window (up to now). */
  recordedSeconds: number;
  /** Of those, the seconds old enough to copy (before the settle margin and the open window). */
  copyableSeconds: number;
  /** Of the copyable seconds, how many the backup holds. */
  backedUpSeconds: number;
  /** Newest second stored (exclusive end), 0 when nothing is. */
  head: number;
  windowSeconds: number;
  planned: number;
  /** Estimated bytes of the planned windows (bitrate x duration). */
  plannedBytes: number;
  /** Missing windows left for a later run (budget). */
  deferred: number;
  /**
   * Seconds left until the source deletes the oldest second the backup lacks (recorded, not
   * stored); undefined when it lacks nothing.
   */
  marginSeconds?: number;
  /** The source's archive depth the deadlines are computed from, and where it comes from. */
  sourceDepthSeconds?: number;
  depthBasis?: DepthBasis;
  /**
   * Seconds the source will delete before they can be copied at the source's cap (earliest deadline
   * first), with the moment each range's first second goes. Empty: none foreseen.
   */
  atRisk?: { from: number; to: number; lostAt: number }[];
  /** Seconds lost at the source before backup, for good (the manifest's count). */
  lostAtSourceSeconds?: number;
  /** Of those, the seconds found lost in this run. */
  lostThisRun?: number;
}

export interface SourcePlan {
  source: string;
  paused: boolean;
  /** Why nothing was planned when not paused by config or operator (a no-copy schedule period). */
  pausedReason?: string;
  streams: StreamPlan[];
  planned: CopyMessage[];
  deferred: number;
  recordsCompacted: number;
  /** Estimated bytes of the planned windows (bitrate x duration). */
  plannedBytes: number;
  errors: { stream: string | undefined; message: string; kind: string }[];
  /** Holds from the source's episodes this run (source.episodes; absent when not read). */
  episodes?: { episodes: number; created: number; grown: number; windows: number };
  /** Day proofs written this run (`<stream> <day>`), when a signing key is configured. */
  proofs?: string[];
}

export interface PlanReport {
  at: number;
  sources: SourcePlan[];
}
