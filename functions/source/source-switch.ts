/**
 * Whether a source may be copied from right now, and at what cap: paused in the config, paused by
 * the operator (`flussonic-backup pause`, an S3 control object, re-read at most every
 * `cacheSeconds`), or the bandwidth schedule's cap for this hour (0: no copying).
 */
import type { SourceConfig } from "../config/config.ts";
import { bandwidthAt } from "../domain/bandwidth-schedule.ts";
import type { BackupStore, SourceControl } from "../store/backup-store.ts";

export interface SwitchState {
  copying: boolean;
  /** Why not, when not copying. */
  reason: string | undefined;
  /** The cap in force for the whole source (Mbit/s). */
  maxBandwidthMbps: number;
}

export class SourceSwitches {
  readonly #store: BackupStore;
  readonly #now: () => number;
  readonly #cacheSeconds: number;
  readonly #controls = new Map<string, { control: SourceControl | undefined; readAt: number }>();

  constructor(store: BackupStore, now: () => number, cacheSeconds = 30) {
    this.#store = store;
    this.#now = now;
    this.#cacheSeconds = cacheSeconds;
  }

  async state(source: SourceConfig): Promise<SwitchState> {
    const mbps = bandwidthAt(source.bandwidthSchedule, source.maxBandwidthMbps, this.#now(), source.timeZone);
    if (source.paused)
      return { copying: false, reason: "paused in the configuration", maxBandwidthMbps: mbps };
    const control = await this.#control(source.name);
    if (control) {
      return {
        copying: false,
        reason: `paused by the operator${control.reason ? `: ${control.reason}` : ""}`,
        maxBandwidthMbps: mbps,
      };
    }
    if (mbps === 0) {
      return { copying: false, reason: "the bandwidth schedule allows no copying now", maxBandwidthMbps: 0 };
    }
    return { copying: true, reason: undefined, maxBandwidthMbps: mbps };
  }

  /** Forgets cached control objects (after `pause`/`resume` in this process). */
  forget(): void {
    this.#controls.clear();
  }

  async #control(source: string): Promise<SourceControl | undefined> {
    const cached = this.#controls.get(source);
    const now = this.#now();
    if (cached && now - cached.readAt < this.#cacheSeconds) return cached.control;
    const control = await this.#store.readControl(source);
    this.#controls.set(source, { control, readAt: now });
    return control;
  }
}
