/**
 * What every end-to-end test checks of a backup: the stored windows, parsed from their keys, do
 * not overlap, hold only recorded seconds, cover what they must, and match the source byte for byte.
 */
import { expect } from "vitest";
import { streamPrefix } from "../../functions/domain/keys.ts";
import { normalizeRanges, subtractRanges, type TimeRange } from "../../functions/domain/ranges.ts";
import type { Harness } from "./harness.ts";

export interface StoredWindow {
  key: string;
  from: number;
  duration: number;
}

/** Windows stored for a stream of source src1, from their keys. */
export async function storedWindows(h: Harness, stream: string): Promise<StoredWindow[]> {
  const keys = await h.keys(streamPrefix(h.config.prefix, "src1", stream));
  return keys
    .map((key) => {
      const m = /(\d{4}-\d{2}-\d{2})\/(\d{2})(\d{2})(\d{2})Z-(\d+)s\.(mp4|ts)$/.exec(key);
      if (!m) throw new Error(`unexpected key ${key}`);
      return { key, from: Date.parse(`${m[1]}T${m[2]}:${m[3]}:${m[4]}Z`) / 1000, duration: Number(m[5]) };
    })
    .sort((a, b) => a.from - b.from);
}

/** Asserts a stream's backup; returns the windows and how many were byte-exact. */
export async function expectExactCopies(
  h: Harness,
  stream: string,
  mustCover: TimeRange[],
  format: "mp4" | "ts" = "mp4",
): Promise<StoredWindow[]> {
  const windows = await storedWindows(h, stream);
  for (let i = 1; i < windows.length; i++) {
    expect(windows[i]!.from, `overlap in ${stream}`).toBeGreaterThanOrEqual(
      windows[i - 1]!.from + windows[i - 1]!.duration,
    );
  }
  const union = normalizeRanges(windows.map((w) => ({ from: w.from, to: w.from + w.duration })));
  expect(subtractRanges(union, h.sim.rangesOf(stream)), `stored seconds not recorded in ${stream}`).toEqual(
    [],
  );
  expect(subtractRanges(mustCover, union), `recorded seconds missing from the backup of ${stream}`).toEqual(
    [],
  );
  for (const w of windows) {
    const got = await h.getObject(w.key);
    const expected = h.sim.body(stream, w.from, w.duration, format);
    expect(got.equals(expected), `bytes of ${w.key}`).toBe(true);
  }
  return windows;
}

/** Lines of the logs that hold any of the secrets. */
export function leakedSecrets(lines: readonly string[], secrets: readonly string[]): string[] {
  return lines.filter((l) => secrets.some((s) => l.includes(s)));
}
