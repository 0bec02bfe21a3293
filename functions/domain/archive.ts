/**
 * Archive vocabulary shared by the domain, the configuration and the adapters: the container
 * formats Flussonic exports and the window lengths the planner may use. The domain depends on
 * nothing outside itself; the configuration imports these.
 */

/** Container of an exported window: fragmented MP4 or MPEG-TS. */
export const ARCHIVE_FORMATS = ["mp4", "ts"] as const;
export type ArchiveFormat = (typeof ARCHIVE_FORMATS)[number];

/** Window lengths the planner may use: divisors of a day, so windows stay aligned to UTC boundaries. */
export const WINDOW_LENGTHS_SECONDS = [60, 120, 180, 240, 300, 360, 600, 720, 900, 1200, 1800, 3600] as const;
/**
 * Shorter lengths (divisors of a day too), only for streams of a source without Range at a low cap:
 * a request for a whole window is one burst at the source, so its size is what bounds the cap
 * there (windowLengthFor). Allowed as `minWindowSeconds`.
 */
export const SHORT_WINDOW_LENGTHS_SECONDS = [10, 15, 20, 30] as const;
/** Every window length, shortest first. */
export const ALL_WINDOW_LENGTHS_SECONDS = [...SHORT_WINDOW_LENGTHS_SECONDS, ...WINDOW_LENGTHS_SECONDS];

/** The SQS message body of one planned window (version 1; fields are a promise). */
export interface CopyMessage {
  v: 1;
  source: string;
  stream: string;
  from: number;
  duration: number;
  format: ArchiveFormat;
  /** The planner will not plan this window again before this time (unix seconds). */
  leaseUntil: number;
  /**
   * In AWS, this many copies share the source's cap until `copiesUntil` (unix seconds), instead of
   * maxConcurrentCopies: the planner gave a window leased alone the whole cap (domain/cap-share.ts).
   * Absent: the default share. Optional: messages without it are read as before.
   */
  copies?: number;
  copiesUntil?: number;
}
