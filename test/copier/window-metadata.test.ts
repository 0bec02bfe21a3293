/**
 * Each window object carries the user metadata source, stream, from, duration and format, values
 * outside printable ASCII (and `%`) percent-encoded (README "Bucket layout"), so that an object
 * says what it holds even without the bookkeeping.
 */
import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { afterEach, expect, it } from "vitest";
import { storedWindows } from "../../dev/kit/backup-checks.ts";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { runOnce } from "../../local/once.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

it("window objects carry source, stream, from, duration and format; a non-ASCII stream name and % percent-encoded", async () => {
  const NOW = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
  const name = "live/Кам 1 100%";
  h = await startHarness({
    sim: { streams: [{ name, bitrateBps: 8000, ranges: [{ from: NOW - HOUR, to: NOW + 1 }] }] },
    source: { retentionDays: 1 / 24 },
  });
  const rt = await h.runtime();
  expect((await runOnce(rt, h.tally)).ok).toBe(true);
  const windows = await storedWindows(h, name);
  expect(windows.length).toBeGreaterThan(0);
  for (const w of windows) {
    const head = await h.s3().send(new HeadObjectCommand({ Bucket: h.config.bucket, Key: w.key }));
    expect(head.Metadata, w.key).toEqual({
      source: "src1",
      stream: "live/%D0%9A%D0%B0%D0%BC 1 100%25",
      from: String(w.from),
      duration: String(w.duration),
      format: "mp4",
    });
    expect(decodeURIComponent(head.Metadata!.stream!)).toBe(name);
  }
});
