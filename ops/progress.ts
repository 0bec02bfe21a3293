/**
 * Progress of a run: windows and bytes done and left per source, the current rate against the
 * source's cap, and an ETA. Redrawn in place on a terminal, plain lines otherwise.
 */
import type { BackupConfig } from "../functions/config/config.ts";
import type { CopierEvent } from "../functions/copier/copy-messages.ts";
import type { PlanReport } from "../functions/planner/plan-backup.ts";

interface SourceProgress {
  capBytesPerSecond: number;
  windowsPlanned: number;
  windowsDone: number;
  windowsFailed: number;
  /** The planner's estimate (bitrate x duration), used until a window has been copied. */
  bytesPlanned: number;
  bytesDone: number;
  /** Seconds of media planned, and of the windows ended (copied, stored, gone, stale, failed). */
  secondsPlanned: number;
  secondsEnded: number;
  /** Bytes and seconds of media of the windows copied: the measured bytes per media second. */
  copiedBytes: number;
  copiedSeconds: number;
  /** (time ms, bytes) samples of the last seconds, for the current rate. */
  samples: { at: number; bytes: number }[];
}

export class Progress {
  readonly #sources = new Map<string, SourceProgress>();
  readonly #out: NodeJS.WriteStream;
  readonly #tty: boolean;
  /** Nothing is drawn before the first plan: its window total is the line's denominator. */
  #planned = false;
  #timer: NodeJS.Timeout | undefined;
  #drawn = 0;
  #lastPlain = 0;

  constructor(config: BackupConfig, out: NodeJS.WriteStream = process.stderr) {
    this.#out = out;
    this.#tty = Boolean(out.isTTY);
    for (const s of config.sources) {
      this.#sources.set(s.name, {
        capBytesPerSecond: (s.maxBandwidthMbps * 1_000_000) / 8,
        windowsPlanned: 0,
        windowsDone: 0,
        windowsFailed: 0,
        bytesPlanned: 0,
        bytesDone: 0,
        secondsPlanned: 0,
        secondsEnded: 0,
        copiedBytes: 0,
        copiedSeconds: 0,
        samples: [],
      });
    }
  }

  planned(report: PlanReport): void {
    this.#planned = true;
    for (const s of report.sources) {
      const p = this.#sources.get(s.source);
      if (!p) continue;
      p.windowsPlanned += s.planned.length;
      p.bytesPlanned += s.plannedBytes;
      for (const m of s.planned) p.secondsPlanned += m.duration;
    }
  }

  bytes(source: string, n: number): void {
    const p = this.#sources.get(source);
    if (!p) return;
    p.bytesDone += n;
    const now = Date.now();
    const last = p.samples.at(-1);
    if (last && now - last.at < 100) last.bytes += n;
    else p.samples.push({ at: now, bytes: n });
    while (p.samples.length > 0 && now - p.samples[0]!.at > 5000) p.samples.shift();
  }

  event(e: CopierEvent): void {
    const p = e.message ? this.#sources.get(e.message.source) : undefined;
    if (!p || !e.message) return;
    const ended =
      e.type === "copied" || e.type === "already-stored" || e.type === "gone" || e.type === "stale";
    if (ended) p.windowsDone++;
    if (e.type === "dead-lettered") p.windowsFailed++;
    if (ended || e.type === "dead-lettered") p.secondsEnded += e.message.duration;
    if (e.type === "copied" && e.bytes > 0) {
      p.copiedBytes += e.bytes;
      p.copiedSeconds += e.message.duration;
    }
  }

  /**
   * Bytes still to come: the media seconds left at the bytes per media second measured on the
   * windows copied so far (the planner's estimate until one is), less what copies running have
   * read. While windows remain it is never shown as nothing left: at least 1% of the estimate.
   */
  static bytesLeft(p: SourceProgress, windowsLeft: number): number {
    if (windowsLeft === 0) return 0;
    const secondsLeft = Math.max(0, p.secondsPlanned - p.secondsEnded);
    const perSecond =
      p.copiedSeconds > 0
        ? p.copiedBytes / p.copiedSeconds
        : p.secondsPlanned > 0
          ? p.bytesPlanned / p.secondsPlanned
          : 0;
    const whole = secondsLeft * perSecond;
    const inProgress = Math.max(0, p.bytesDone - p.copiedBytes);
    return Math.max(whole - inProgress, whole * 0.01, 1);
  }

  start(): void {
    this.#lastPlain = Date.now();
    this.#timer = setInterval(() => this.draw(), this.#tty ? 500 : 1000);
    this.#timer.unref();
  }

  /** Stops redrawing and draws the final state once (later calls do nothing). */
  stop(): void {
    if (!this.#timer) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.draw(true);
  }

  lines(): string[] {
    return [...this.#sources].map(([name, p]) => {
      const rate = p.samples.reduce((n, s) => n + s.bytes, 0) / 5;
      // Windows copied before the plan that queued them was reported still count in the total.
      const total = Math.max(p.windowsPlanned, p.windowsDone + p.windowsFailed);
      const leftWindows = total - p.windowsDone - p.windowsFailed;
      const leftBytes = Progress.bytesLeft(p, leftWindows);
      const eta = rate > 0 && leftBytes > 0 ? formatDuration(leftBytes / rate) : "-";
      return (
        `${name}: windows ${p.windowsDone}/${total}` +
        (p.windowsFailed ? ` (${p.windowsFailed} failed)` : "") +
        ` left ${leftWindows}, ${formatBytes(p.bytesDone)} done, ~${formatBytes(leftBytes)} left,` +
        ` ${formatRate(rate)} of cap ${formatRate(p.capBytesPerSecond)}, ETA ${eta}`
      );
    });
  }

  draw(final = false): void {
    if (!this.#planned) return;
    const lines = this.lines();
    if (this.#tty) {
      if (this.#drawn > 0) this.#out.write(`\x1b[${this.#drawn}A`);
      for (const l of lines) this.#out.write(`\x1b[2K${l}\n`);
      this.#drawn = lines.length;
      return;
    }
    // Plain output: a line per source every 10 s, and at the end.
    if (!final && Date.now() - this.#lastPlain < 10_000) return;
    this.#lastPlain = Date.now();
    const idle = [...this.#sources.values()].every((p) => p.windowsPlanned === 0 && p.bytesDone === 0);
    if (idle) return;
    for (const l of lines) this.#out.write(`progress ${l}\n`);
  }
}

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${((bytesPerSecond * 8) / 1_000_000).toFixed(1)} Mbit/s`;
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0
    ? `${h}h${String(m).padStart(2, "0")}m`
    : m > 0
      ? `${m}m${String(sec).padStart(2, "0")}s`
      : `${sec}s`;
}
