/** What a planner run reports: per source, per stream, what it found and what it queued. */
import type { CopyMessage } from "../copier/copy-window.ts";

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
}

export interface PlanReport {
  at: number;
  sources: SourcePlan[];
}
