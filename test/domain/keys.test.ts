/**
 * The S3 key layout is a promise users script against (keys.ts, docs): every key kind, written for a
 * stream name that needs encoding, and read back.
 */
import { describe, expect, it } from "vitest";
import {
  catalogKey,
  controlKey,
  fragmentIndexFolder,
  fragmentIndexKey,
  fragmentIndexSummaryKey,
  manifestKey,
  parseWindowKeyTail,
  recordKey,
  recordsPrefix,
  streamPrefix,
  utcDate,
  windowKey,
} from "../../functions/domain/keys.ts";

const FROM = Date.UTC(2026, 10, 25, 4, 5, 6) / 1000;
const W = { source: "s1", stream: "live/cam1", from: FROM, duration: 600 };

describe("the S3 key layout", () => {
  it("writes windows under {prefix}{source}/{stream}/{UTC day}/{HHMMSS}Z-{duration}s.{format}", () => {
    expect(streamPrefix("p/", "s1", "live/cam1")).toBe("p/s1/live%2Fcam1/");
    expect(windowKey("p/", W, "mp4")).toBe("p/s1/live%2Fcam1/2026-11-25/040506Z-600s.mp4");
    expect(windowKey("", { ...W, duration: 5 }, "ts")).toBe("s1/live%2Fcam1/2026-11-25/040506Z-5s.ts");
    expect(utcDate(FROM)).toBe("2026-11-25");
    expect(utcDate(Date.UTC(2026, 11, 31, 23, 59, 59) / 1000)).toBe("2026-12-31");
  });

  it("reads a window key's tail back to its start and duration, and nothing else", () => {
    const key = windowKey("p/", W, "ts");
    expect(parseWindowKeyTail(key.slice(streamPrefix("p/", "s1", "live/cam1").length))).toEqual({
      from: FROM,
      duration: 600,
    });
    expect(parseWindowKeyTail("2026-11-25/040506Z-600s.mp4")).toEqual({ from: FROM, duration: 600 });
    for (const tail of [
      "2026-11-25/040506Z-600s.mkv",
      "2026-11-25/040506Z-600s.mp4.tmp",
      "x/2026-11-25/040506Z-600s.mp4",
      "2026-11-25/0405Z-600s.mp4",
      "2026-11-25/040506-600s.mp4",
      "2026-11-25/040506Z-s.mp4",
      "2026-11-25.json",
    ]) {
      expect(parseWindowKeyTail(tail), tail).toBeUndefined();
    }
  });

  it("keeps the bookkeeping under {prefix}.backup/, one folder per kind", () => {
    expect(manifestKey("p/", "s1", "live/cam1")).toBe("p/.backup/manifests/s1/live%2Fcam1.json");
    expect(catalogKey("p/", "s1", "live/cam1", "2026-11-25")).toBe(
      "p/.backup/catalog/s1/live%2Fcam1/2026-11-25.json",
    );
    expect(fragmentIndexKey("p/", "s1", "live/cam1", "2026-11-25")).toBe(
      "p/.backup/index/s1/live%2Fcam1/2026-11-25.json",
    );
    expect(fragmentIndexFolder("p/", "s1", "live/cam1")).toBe("p/.backup/index/s1/live%2Fcam1/");
    expect(fragmentIndexSummaryKey("p/", "s1", "live/cam1")).toBe(
      "p/.backup/index/s1/live%2Fcam1.summary.json",
    );
    expect(recordsPrefix("p/", "s1")).toBe("p/.backup/records/s1/");
    expect(recordKey("p/", W)).toBe(`p/.backup/records/s1/live%2Fcam1/${FROM}-600.json`);
    expect(controlKey("p/", "s1")).toBe("p/.backup/control/s1.json");
  });
});
