/**
 * `restore` of real media (the simulator's `media: "real"` mode, generated with ffmpeg) checked
 * with ffprobe: duration and streams as expected. Skips with a reason when ffmpeg/ffprobe is absent.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { restoreCommand } from "../../cli/commands/restore.ts";
import { type Harness, HOUR, startHarness } from "../../dev/kit/harness.ts";
import { operatorTarget, TextSink } from "../../dev/kit/ops-target.ts";
import { Mp4JoinError, Mp4Joiner } from "../../functions/domain/mp4-join.ts";
import { runOnce } from "../../local/once.ts";
import { loadRealMedia } from "../../simulator/real-media.ts";

const hasFfmpeg = ["ffmpeg", "ffprobe"].every((tool) => spawnSync(tool, ["-version"]).status === 0);
if (!hasFfmpeg) console.log("restore tests skipped: ffmpeg/ffprobe not on the PATH (apt-get install ffmpeg)");

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const NOW0 = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
const MIN = 60;
const HOLE = { from: NOW0 - 40 * MIN + 7, to: NOW0 - 31 * MIN };

async function backedUp(format: "mp4" | "ts"): Promise<{ hh: Harness; file: string }> {
  const hh = await startHarness({
    sim: {
      media: "real",
      streams: [
        {
          name: "cam1",
          bitrateBps: 80_000,
          ranges: [
            { from: NOW0 - 2 * HOUR, to: HOLE.from },
            { from: HOLE.to, to: NOW0 + 1 },
          ],
        },
      ],
    },
    source: { retentionDays: 1 / 24, format },
  });
  h = hh;
  const rt = await hh.runtime();
  expect((await runOnce(rt, hh.tally)).ok).toBe(true);
  return { hh, file: operatorTarget(hh) };
}

function probe(path: string): { duration: number; streams: string[] } {
  const json = JSON.parse(
    execFileSync(
      "ffprobe",
      ["-v", "error", "-show_entries", "format=duration:stream=codec_type", "-of", "json", path],
      {
        encoding: "utf8",
      },
    ),
  ) as { format: { duration: string }; streams: { codec_type: string }[] };
  return { duration: Number(json.format.duration), streams: json.streams.map((s) => s.codec_type).sort() };
}

async function restore(file: string, out: string, from: number, to: number, allowGaps = false) {
  const stdout = new TextSink();
  const stderr = new TextSink();
  const code = await restoreCommand({
    config: file,
    source: "src1",
    stream: "cam1",
    from: new Date(from * 1000).toISOString(),
    to: String(to),
    out,
    allowGaps,
    stdout,
    stderr,
  });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

describe.skipIf(!hasFfmpeg)("restore, real media", () => {
  it("joins MP4 windows into one file trimmed to the range: one init segment, the expected duration, video and audio", async () => {
    const { hh, file } = await backedUp("mp4");
    const from = NOW0 - 57 * MIN + 13;
    const to = NOW0 - 42 * MIN + 5; // crosses the 11:30 window boundary, both ends unaligned
    const out = join(hh.dir, "restored.mp4");
    const r = await restore(file, out, from, to);
    expect(r.stderr).not.toContain("refused");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("trimmed to the fragments overlapping the range");
    const p = probe(out);
    expect(p.streams).toEqual(["audio", "video"]);
    expect(p.duration).toBeGreaterThan(to - from - 0.5);
    expect(p.duration).toBeLessThan(to - from + 1.5);
    expect(existsSync(`${out}.partial`)).toBe(false);
  });

  it("refuses a range with a hole, listing it, and with --allow-gaps joins the rest", async () => {
    const { hh, file } = await backedUp("mp4");
    const from = NOW0 - 45 * MIN;
    const to = NOW0 - 25 * MIN;
    const out = join(hh.dir, "gappy.mp4");
    const refused = await restore(file, out, from, to);
    expect(refused.code).toBe(1);
    const iso = (t: number) => new Date(t * 1000).toISOString().replace(".000Z", "Z");
    expect(refused.stderr).toContain("restore refused: the backup has 1 hole(s)");
    expect(refused.stderr).toContain(`${iso(HOLE.from)} – ${iso(HOLE.to)} (${HOLE.to - HOLE.from} s)`);
    expect(refused.stderr).toContain("--allow-gaps");
    expect(existsSync(out)).toBe(false);

    const joined = await restore(file, out, from, to, true);
    expect(joined.code).toBe(0);
    expect(joined.stdout).toContain("With --allow-gaps: 1 hole(s) skipped");
    const p = probe(out);
    expect(p.streams).toEqual(["audio", "video"]);
    const expected = to - from - (HOLE.to - HOLE.from);
    expect(p.duration).toBeGreaterThan(expected - 0.5);
    expect(p.duration).toBeLessThan(expected + 1.5);
  });

  it("concatenates MPEG-TS windows whole", async () => {
    const { hh, file } = await backedUp("ts");
    const from = NOW0 - 57 * MIN + 13;
    const to = NOW0 - 47 * MIN + 5;
    // Overlaps the windows 11:20:00-11:30:00 and 11:30:00-11:37:07 (the recording stops there).
    const windowsFrom = Math.floor(from / 600) * 600;
    const windowsTo = HOLE.from;
    const out = join(hh.dir, "restored.ts");
    const r = await restore(file, out, from, to);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("windows overlapping the range are included whole");
    const p = probe(out);
    expect(p.streams).toEqual(["audio", "video"]);
    expect(p.duration).toBeGreaterThan(windowsTo - windowsFrom - 0.5);
    expect(p.duration).toBeLessThan(windowsTo - windowsFrom + 1.5);
  });

  it("refuses to join windows whose init segments describe other tracks", async () => {
    const media = await loadRealMedia();
    const joiner = new Mp4Joiner();
    const feed = (init: Buffer, label: string, from: number) => {
      joiner.startWindow({ from, duration: 2, label });
      joiner.push(init);
      joiner.push(media.mp4.fragments[0]!);
      joiner.push(media.mp4.fragments[1]!);
      joiner.endWindow();
    };
    feed(media.mp4.init, "window-1", 1000);
    const other = Buffer.from(media.mp4.init);
    const avc1 = other.indexOf("avc1", 0, "latin1");
    other.writeUInt16BE(640, avc1 + 4 + 24); // the sample entry's width
    expect(() => feed(other, "window-2", 1002)).toThrow(Mp4JoinError);
    expect(() => {
      const j = new Mp4Joiner();
      j.startWindow({ from: 0, duration: 1, label: "w" });
      j.push(media.mp4.init);
      j.push(media.mp4.fragments[0]!);
      j.endWindow();
      j.startWindow({ from: 1, duration: 1, label: "window-2" });
      j.push(other);
    }).toThrow(/window-2: its init segment \(tracks, codecs or timescales\) differs/);
  });
});
