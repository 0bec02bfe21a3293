/**
 * A simulated source with one high-bitrate stream (14.3 Mbit/s: a 600 s window is 1 GiB), for the
 * uncapped-speed and memory figures. Windows of any size are asked for by their duration.
 */
import { FlussonicSimulator } from "../../simulator/simulator.ts";

const NOW = Math.floor(Date.UTC(2026, 10, 20, 12, 2) / 1000);
/** Bytes per second of archive: 1 GiB / 600 s, rounded. */
export const BYTES_PER_SECOND = 1_789_570;
const FIRST_SECOND = NOW - 4 * 3600;

export interface LargeWindow {
  from: number;
  duration: number;
  /** The simulator URL of the window (what rclone is given). */
  url: string;
}

export class LargeWindowSource {
  readonly sim: FlussonicSimulator;
  readonly stream = "big";

  private constructor(sim: FlussonicSimulator) {
    this.sim = sim;
  }

  static async start(): Promise<LargeWindowSource> {
    const sim = await FlussonicSimulator.start({
      now: () => NOW,
      liveOnlyStreams: 0,
      streams: [
        { name: "big", bitrateBps: BYTES_PER_SECOND * 8, ranges: [{ from: FIRST_SECOND, to: NOW + 1 }] },
      ],
    });
    return new LargeWindowSource(sim);
  }

  /** A window of about `bytes` (whole seconds of archive). */
  window(bytes: number): LargeWindow {
    const duration = Math.max(1, Math.round(bytes / BYTES_PER_SECOND));
    if (duration > 3 * 3600) throw new Error("large window source: at most 3 hours");
    return {
      from: FIRST_SECOND,
      duration,
      url: `${this.sim.url}/${this.stream}/archive-${FIRST_SECOND}-${duration}.mp4`,
    };
  }

  close(): Promise<void> {
    return this.sim.close();
  }
}
