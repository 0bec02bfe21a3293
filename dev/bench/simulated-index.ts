/**
 * A Flussonic archive index in process, for the planner-scale figure: thousands of streams with
 * weeks of fragmented ranges from the simulator's archive model (simulator/archive-model.ts),
 * without thousands of HTTP servers. It answers the three calls the planner makes.
 */

import { clipRanges, type TimeRange } from "../../functions/domain/ranges.ts";
import type { DvrStream, FlussonicClient } from "../../functions/source/flussonic.ts";
import { generateStreams, recordedAt, type SimStream, toSimStream } from "../../simulator/archive-model.ts";

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
  readonly streams: { name: string; bitrateBps: number }[];
  /**
   * Each stream with its ranges packed (from, to pairs in a Float64Array): the 1.5 million ranges
   * of 10,000 streams as objects were 100 MB of live heap in the planner's process, which a real
   * source does not put there, and every major GC of the planner traced them.
   */
  readonly #byName: Map<string, { stream: Omit<SimStream, "ranges">; ranges: Float64Array }>;
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
    this.#byName = new Map();
    this.streams = [];
    for (const spec of generateStreams(shape.streams, shape.days, shape.now, shape.seed)) {
      const { ranges, ...stream } = toSimStream(spec, shape.days, shape.now);
      const packed = new Float64Array(ranges.length * 2);
      ranges.forEach((r, i) => {
        packed[2 * i] = r.from;
        packed[2 * i + 1] = r.to;
      });
      this.#byName.set(stream.name, { stream, ranges: packed });
      this.streams.push({ name: stream.name, bitrateBps: stream.bitrateBps });
    }
  }

  /** Typed as the planner's client: the planner calls only the methods implemented here. */
  asClient(): FlussonicClient {
    return this as unknown as FlussonicClient;
  }

  /** Recorded ranges of a stream at the index's "now". */
  rangesOf(name: string): TimeRange[] {
    const s = this.#byName.get(name);
    if (!s) return [];
    const ranges: TimeRange[] = [];
    for (let i = 0; i < s.ranges.length; i += 2) ranges.push({ from: s.ranges[i]!, to: s.ranges[i + 1]! });
    return recordedAt({ ...s.stream, ranges }, this.#now).ranges;
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
    return this.#timed(() => ({ name, bitrateBps: this.#byName.get(name)?.stream.bitrateBps }));
  }

  async recordedRanges(name: string, span: { from: number; to: number }): Promise<TimeRange[]> {
    this.calls.recordedRanges++;
    return this.#timed(() => clipRanges(this.rangesOf(name), span.from, span.to));
  }

  async close(): Promise<void> {}
}
