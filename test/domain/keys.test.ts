/**
 * The S3 key layout is a promise users script against (keys.ts, docs): every key kind, written for a
 * stream name that needs encoding, and read back.
 */
import { describe, expect, it } from "vitest";
import {
  auditFolder,
  auditKey,
  catalogKey,
  controlKey,
  fragmentIndexFolder,
  fragmentIndexKey,
  fragmentIndexSummaryKey,
  heldFolder,
  heldKey,
  holdsKey,
  manifestKey,
  parseWindowKeyTail,
  previewKey,
  proofKey,
  provenKey,
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

  it("keeps holds, held copies, the audit trail, day proofs and previews under {prefix}.backup/ as documented", () => {
    expect(holdsKey("p/", "s 1")).toBe("p/.backup/holds/s%201.json");
    expect(heldFolder("p/", "s1", "live/cam1", "2026-11-25")).toBe(
      "p/.backup/held/s1/live%2Fcam1/2026-11-25/",
    );
    expect(heldKey("p/", W, "ts")).toBe("p/.backup/held/s1/live%2Fcam1/2026-11-25/040506Z-600s.ts");
    expect(auditFolder("p/")).toBe("p/.backup/audit/");
    expect(auditKey("p/", FROM, "hold", "r4nd")).toBe(
      "p/.backup/audit/2026-11-25/20261125T040506Z-hold-r4nd.json",
    );
    expect(provenKey("p/", "s 1")).toBe("p/.backup/proofs/s%201.json");
    expect(proofKey("p/", "s1", "live/cam1", "2026-11-25")).toBe(
      "p/.backup/proofs/s1/live%2Fcam1/2026-11-25.json",
    );
    // The key frame's milliseconds name the file; its UTC day the folder (23:59:59.999 stays that day).
    const ms = Date.UTC(2026, 10, 25, 23, 59, 59, 999);
    expect(previewKey("p/", "s1", "live/cam1", ms, { width: 320, height: 180 })).toBe(
      `p/.backup/previews/s1/live%2Fcam1/2026-11-25/${ms}-320x180.jpg`,
    );
  });
});
