/**
 * A Flussonic archive index in process, for the planner-scale figure: thousands of streams with
 * weeks of fragmented ranges from the simulator's archive model (tools/simulator/archive-model.ts),
 * without thousands of HTTP servers. It answers the three calls the planner makes.
 */
import type { DvrStream, FlussonicClient } from "../functions/adapters/flussonic.ts";
import { clipRanges, type TimeRange } from "../functions/domain/ranges.ts";
import {
  generateStreams,
  recordedAt,
  type SimStream,
  toSimStream,
} from "../tools/simulator/archive-model.ts";

export interface IndexShape {
  streams: number;
  days: number;
  /** Unix seconds: the index's "now". */
  now: number;
  seed: number;
}

/**
 * A "now" 30 days (and a bit) after the archive model's generation epoch (2026-01-01), so that
 * generated streams hold just the days asked for, not every day since the epoch.
 */
export function indexNow(days: number): number {
  return Math.floor(Date.UTC(2026, 0, 1) / 1000) + Math.ceil(days * 86_400) + 3600 + 17 * 60;
}

export class SimulatedIndex {
  readonly streams: SimStream[];
  readonly #byName: Map<string, SimStream>;
  readonly #now: number;
  /** Calls answered, by method (what a real source would have served). */
  readonly calls = { listDvrStreams: 0, recordedRanges: 0, dvrStream: 0 };
  /**
   * Seconds spent answering those calls (their work is synchronous, so wall time is this process's
   * CPU): the simulated source's share of the planner process's CPU, reported beside it.
   */
  answerSeconds = 0;

  constructor(shape: IndexShape) {
    this.#now = shape.now;
    this.streams = generateStreams(shape.streams, shape.days, shape.now, shape.seed).map((spec) =>
      toSimStream(spec, shape.days, shape.now),
    );
    this.#byName = new Map(this.streams.map((s) => [s.name, s]));
  }

  /** Typed as the planner's client: the planner calls only the methods implemented here. */
  asClient(): FlussonicClient {
    return this as unknown as FlussonicClient;
  }

  /** Recorded ranges of a stream at the index's "now". */
  rangesOf(name: string): TimeRange[] {
    const s = this.#byName.get(name);
    return s ? recordedAt(s, this.#now).ranges : [];
  }

  #timed<T>(answer: () => T): T {
    const started = performance.now();
    try {
      return answer();
    } finally {
      this.answerSeconds += (performance.now() - started) / 1000;
    }
  }

  async listDvrStreams(): Promise<DvrStream[]> {
    this.calls.listDvrStreams++;
    return this.#timed(() => this.streams.map((s) => ({ name: s.name, bitrateBps: s.bitrateBps })));
  }

  async dvrStream(name: string): Promise<DvrStream> {
    this.calls.dvrStream++;
    return this.#timed(() => ({ name, bitrateBps: this.#byName.get(name)?.bitrateBps }));
  }

  async recordedRanges(name: string, span: { from: number; to: number }): Promise<TimeRange[]> {
    this.calls.recordedRanges++;
    return this.#timed(() => clipRanges(this.rangesOf(name), span.from, span.to));
  }

  async close(): Promise<void> {}
}
