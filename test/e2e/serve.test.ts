/**
 * `flussonic-backup serve` as a user runs it (the installed binary in a child process) on a backup
 * the binary made of the real-media simulator (ffmpeg-made H.264/AAC, one key frame per 1-second
 * fragment) in the embedded emulator:
 * - the media route: Range answers (206, Content-Range, 416), CORS for players on other origins;
 * - ffprobe decodes `index-{from}-{dur}.m3u8` through the server: the decoded video lasts `dur`
 *   within one fragment, inside a window, across a window boundary and across a gap;
 * - headless Chromium (Debian's package, driven by playwright-core) opens the page, clicks a
 *   timeline, and the video plays past 5 s with no hls.js error; a screenshot is saved.
 * Skips with the reason printed when ffmpeg/ffprobe (or, for the page, chromium) is absent.
 */
/// <reference lib="dom" />
import { execFile, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliService, cli, startCli, waitFor } from "../../dev/kit/cli-process.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";

/** Prints the URL it serves at: the base URL (no trailing slash). */
function servedAt(server: CliService): Promise<string> {
  return waitFor("the URL serve prints", async () => /at (http:\/\/\S+?)\/?\n/.exec(server.stdout())?.[1]);
}

const run = promisify(execFile);
const hasFfmpeg = ["ffmpeg", "ffprobe"].every(
  (tool) => spawnSync(tool, ["-version"], { stdio: "ignore" }).status === 0,
);
const CHROMIUM = "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
if (!hasFfmpeg) console.log("serve tests skipped: ffmpeg/ffprobe not on the PATH (apt-get install ffmpeg)");
else if (!hasChromium) console.log(`serve page test skipped: no ${CHROMIUM} (apt-get install chromium)`);

/** Debian's Chromium, headless, with a new empty profile (removed on close); never a downloaded browser. */
async function launchChromium() {
  const { chromium } = await import("playwright-core");
  const profile = mkdtempSync(join(tmpdir(), "fb-serve-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--autoplay-policy=no-user-gesture-required",
    ],
    viewport: { width: 1280, height: 900 },
  });
  return {
    pages: () => context.pages(),
    newPage: () => context.newPage(),
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

const MIN = 60;
/** The current 10-minute window's start: the archive is laid out around it. */
const T0 = Math.floor(Date.now() / 1000 / 600) * 600;
/** A gap in the source's recording, inside the window [T0 - 30 min, T0 - 20 min). */
const GAP = { from: T0 - 28 * MIN, to: T0 - 23 * MIN };

describe.skipIf(!hasFfmpeg)("serve: the backup played through the local server", () => {
  let dir: string;
  let sim: FlussonicSimulator;
  let configFile: string;
  let server: CliService;
  let base: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fb-serve-"));
    sim = await FlussonicSimulator.start({
      media: "real",
      liveOnlyStreams: 0,
      streams: [
        {
          name: "cam1",
          ranges: [
            { from: T0 - 50 * MIN, to: GAP.from },
            { from: GAP.to, to: Number.POSITIVE_INFINITY },
          ],
        },
      ],
    });
    // The backup keeps 70 minutes: all of the archive (50 minutes before T0, and the test may start
    // up to 10 minutes after T0).
    configFile = join(dir, "config.json");
    writeFileSync(
      configFile,
      JSON.stringify({
        bucket: "serve-backup",
        sources: [{ name: "sim", url: sim.url, streams: ["cam1"], retentionDays: 70 / 1440 }],
      }),
    );
    const backup = await cli(["run", "--config", configFile, "--once", "--embedded", "state"], {
      cwd: dir,
      timeoutMs: 60_000,
    });
    expect(backup.code, backup.stderr).toBe(0);
    await startPlainServer();
  }, 90_000);

  /** The server without tokens that most tests use (`server`, at `base`). */
  async function startPlainServer(): Promise<void> {
    server = startCli(
      [
        "serve",
        ...["--config", configFile, "--embedded", "state", "--port", "0", "--no-auth"],
        ...["--cors-origin", "http://elsewhere.example"],
      ],
      { cwd: dir },
    );
    base = await waitFor(
      "the URL serve prints",
      async () => /at (http:\/\/\S+?)\/?\n/.exec(server.stdout())?.[1],
    );
  }

  afterAll(async () => {
    await server?.stop();
    await sim?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("prints where it serves and the playlist URL shapes", async () => {
    expect(server.stdout()).toMatch(
      /Serving the backup in bucket "serve-backup" at http:\/\/127\.0\.0\.1:\d+\//,
    );
    expect(server.stdout()).toContain("index-{from}-{duration}.m3u8");
  });

  it("the media route answers Range with 206 and Content-Range, refuses an unsatisfiable range with 416, allows Range from a --cors-origin origin", async () => {
    const playlist = await fetch(`${base}/sim/cam1/index-${T0 - 45 * MIN}-60.m3u8`);
    expect(playlist.status).toBe(200);
    const text = await playlist.text();
    const uri = /#EXT-X-MAP:URI="([^"]+)"/.exec(text)?.[1];
    expect(uri, text).toBeDefined();
    const url = new URL(uri!, `${base}/sim/cam1/`).toString();
    expect(new URL(url).pathname).toMatch(/^\/_media\//);

    const part = await fetch(url, { headers: { Range: "bytes=0-99", Origin: "http://elsewhere.example" } });
    expect(part.status).toBe(206);
    expect(part.headers.get("accept-ranges")).toBe("bytes");
    expect(part.headers.get("content-range")).toMatch(/^bytes 0-99\/\d+$/);
    expect(part.headers.get("content-length")).toBe("100");
    expect(part.headers.get("access-control-allow-origin")).toBe("http://elsewhere.example");
    expect(part.headers.get("access-control-expose-headers")).toMatch(/Content-Range/);
    const bytes = Buffer.from(await part.arrayBuffer());
    expect(bytes.length).toBe(100);
    expect(bytes.subarray(4, 8).toString("latin1")).toBe("ftyp");
    const size = Number(part.headers.get("content-range")!.split("/")[1]);

    const whole = await fetch(url);
    expect(whole.status).toBe(200);
    expect(Number(whole.headers.get("content-length"))).toBe(size);
    await whole.arrayBuffer();

    const tail = await fetch(url, { headers: { Range: "bytes=-10" } });
    expect(tail.status).toBe(206);
    expect(tail.headers.get("content-range")).toBe(`bytes ${size - 10}-${size - 1}/${size}`);
    await tail.arrayBuffer();

    const beyond = await fetch(url, { headers: { Range: `bytes=${size + 10}-${size + 20}` } });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get("content-range")).toBe(`bytes */${size}`);
    await beyond.arrayBuffer();

    const preflight = await fetch(url, {
      method: "OPTIONS",
      headers: {
        Origin: "http://elsewhere.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "range",
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-headers")).toMatch(/Range/i);

    const state = await fetch(`${base}/_media/.backup/manifests/sim/cam1.json`);
    expect(state.status).toBe(404);
    await state.arrayBuffer();
  });

  /**
   * Reads `index-{from}-{dur}.m3u8` through the server: the seconds of video ffprobe decodes from
   * it (frames over frame rate), the playlist's own seconds (sum of EXTINF), its target duration
   * and its first program date-time (unix seconds).
   */
  async function decoded(from: number, dur: number) {
    const url = `${base}/sim/cam1/index-${from}-${dur}.m3u8`;
    const playlist = await (await fetch(url)).text();
    const { stdout } = await run(
      "ffprobe",
      [
        "-v",
        "error",
        "-count_frames",
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=nb_read_frames,r_frame_rate",
        "-of",
        "json",
        url,
      ],
      { timeout: 30_000 },
    );
    const stream = (JSON.parse(stdout) as { streams: { nb_read_frames: string; r_frame_rate: string }[] })
      .streams[0]!;
    const [num, den] = stream.r_frame_rate.split("/").map(Number);
    return {
      seconds: Number(stream.nb_read_frames) / (num! / den!),
      listed: [...playlist.matchAll(/#EXTINF:([\d.]+)/g)].reduce((n, m) => n + Number(m[1]), 0),
      target: Number(/#EXT-X-TARGETDURATION:(\d+)/.exec(playlist)?.[1]),
      firstSecond: Date.parse(/#EXT-X-PROGRAM-DATE-TIME:(\S+)/.exec(playlist)?.[1] ?? "") / 1000,
    };
  }

  /**
   * What ffprobe decodes is what the playlist lists (within one fragment) and covers `expected`
   * seconds: it starts at the first key frame at or after `from` (one 1-second fragment at most
   * later) and, as in Flussonic, no segment starts after `from + dur`; the last segment ends with
   * the fragment that reaches `from + dur`, so the whole lasts `dur` within one 1-second fragment.
   */
  function expectCovers(d: Awaited<ReturnType<typeof decoded>>, from: number, expected: number): void {
    expect(Math.abs(d.seconds - d.listed)).toBeLessThanOrEqual(1);
    expect(d.firstSecond).toBeGreaterThanOrEqual(from);
    expect(d.firstSecond).toBeLessThanOrEqual(from + 1);
    expect(d.seconds).toBeGreaterThanOrEqual(expected - 1);
    expect(d.seconds).toBeLessThanOrEqual(expected + 1);
  }

  it("ffprobe decodes index-{from}-{dur}.m3u8 inside one window: dur, from the first key frame at or after from", async () => {
    const from = T0 - 47 * MIN + 13;
    const d = await decoded(from, 90);
    expectCovers(d, from, 90);
    expect(Math.abs(d.seconds - 90)).toBeLessThanOrEqual(1); // 90 s is 15 whole 6-second segments here
  });

  it("ffprobe decodes index-{from}-{dur}.m3u8?thumbnails=N, the multivariant playlist with an image stream, as the media playlist of the same range", async () => {
    const from = T0 - 47 * MIN + 13;
    const url = `${base}/sim/cam1/index-${from}-60.m3u8?thumbnails=6`;
    const master = await (await fetch(url)).text();
    expect(master).toContain("#EXT-X-IMAGE-STREAM-INF:");
    const probe = async (u: string) =>
      (
        await run(
          "ffprobe",
          [
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames,width,height",
            "-of",
            "csv=p=0",
            u,
          ],
          { timeout: 30_000 },
        )
      ).stdout
        .trim()
        .split("\n")[0];
    const media = await probe(`${base}/sim/cam1/index-${from}-60.m3u8`);
    expect(media).toMatch(/^160,120,\d{3,}$/);
    expect(await probe(url)).toBe(media);
  });

  it("ffprobe decodes a playlist across a window boundary: dur within one fragment", async () => {
    const from = T0 - 41 * MIN - 17;
    expectCovers(await decoded(from, 120), from, 120);
  });

  it("ffprobe decodes a playlist across a gap: dur less the gap", async () => {
    const from = GAP.from - 40;
    const dur = GAP.to - GAP.from + 100;
    expectCovers(await decoded(from, dur), from, dur - (GAP.to - GAP.from));
  });

  /** The byte ranges an MPD's SegmentURLs and an HLS playlist's segments point at, as "uri first-last". */
  const mpdRanges = (mpd: string) =>
    [...mpd.matchAll(/<SegmentURL media="([^"]+)" mediaRange="(\d+)-(\d+)"\/>/g)].map(
      (m) => `${m[1]!.replaceAll("&amp;", "&")} ${m[2]}-${m[3]}`,
    );
  const hlsRanges = (m3u8: string) =>
    [...m3u8.matchAll(/#EXT-X-BYTERANGE:(\d+)@(\d+)\n(\S+)/g)].map(
      (m) => `${m[3]} ${m[2]}-${Number(m[2]) + Number(m[1]) - 1}`,
    );

  it("archive-{from}-{dur}.mpd across a window boundary: one period over the same byte ranges as the HLS playlist (which ffprobe decodes), and ffprobe reads it: H.264 of the stored size lasting dur; archive-{from}-{dur}.m3u8 is the same playlist as index-", async () => {
    const from = T0 - 41 * MIN - 17;
    const url = `${base}/sim/cam1/archive-${from}-120.mpd`;
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/dash+xml");
    const mpd = await res.text();
    expect(mpd).toContain('type="static"');
    expect(mpd.match(/<Period /g)).toHaveLength(1);
    const hls = await (await fetch(`${base}/sim/cam1/index-${from}-120.m3u8`)).text();
    expect(mpdRanges(mpd)).toEqual(hlsRanges(hls));
    expect(mpdRanges(mpd).length).toBeGreaterThan(10);
    expect(await (await fetch(`${base}/sim/cam1/archive-${from}-120.m3u8`)).text()).toBe(hls);
    // ffmpeg's DASH demuxer (5.1) puts a muxed representation's audio packets into its video
    // stream, so frames are counted through the HLS playlist (the ffprobe tests above), not here.
    const { stdout } = await run(
      "ffprobe",
      [
        ...["-v", "error", "-select_streams", "v:0", "-show_entries"],
        ...["stream=codec_name,width,height:format=duration", "-of", "json", url],
      ],
      { timeout: 30_000 },
    );
    const probed = JSON.parse(stdout) as {
      streams: { codec_name: string; width: number; height: number }[];
      format: { duration: string };
    };
    expect(probed.streams[0]).toMatchObject({ codec_name: "h264", width: 160, height: 120 });
    expect(Math.abs(Number(probed.format.duration) - 120)).toBeLessThanOrEqual(1);
  });

  it("archive-{from}-{dur}.mpd across a gap: a period on each side, the second starting where the first ends (continuous periods); ?period=mono: one period over the same byte ranges", async () => {
    const from = GAP.from - 40;
    const dur = GAP.to - GAP.from + 100;
    const multi = await (await fetch(`${base}/sim/cam1/archive-${from}-${dur}.mpd`)).text();
    const starts = [...multi.matchAll(/<Period id="p\d+" start="PT([\d.]+)S"/g)].map((m) => Number(m[1]));
    expect(starts).toHaveLength(2);
    expect(Math.abs(starts[1]! - 40)).toBeLessThanOrEqual(1);
    expect(multi).toMatch(/mediaPresentationDuration="PT(99|100|101)\./);
    const mono = await (await fetch(`${base}/sim/cam1/archive-${from}-${dur}.mpd?period=mono`)).text();
    expect(mono.match(/<Period /g)).toHaveLength(1);
    expect(mpdRanges(mono)).toEqual(mpdRanges(multi));
    const bad = await fetch(`${base}/sim/cam1/archive-${from}-${dur}.mpd?period=multi`);
    expect(bad.status).toBe(400);
    expect(await bad.text()).toBe("period=multi is not a period mode: the only one is period=mono\n");
  });

  it.skipIf(!hasChromium)(
    "dash.js (npm dashjs) in headless Chromium plays archive-{from}-{dur}.mpd past 5 s and across the gap's period boundary with no error",
    async () => {
      const browser = await launchChromium();
      try {
        const page = await browser.newPage();
        const pageErrors: string[] = [];
        page.on("pageerror", (e) => pageErrors.push(String(e)));
        // A test page on the server's origin (so media requests are same-origin), with dash.js.
        const dashjs = readFileSync(
          join(import.meta.dirname, "../../node_modules/dashjs/dist/modern/umd/dash.all.min.js"),
        );
        await page.route(`${base}/_test/**`, (route) =>
          route.request().url().endsWith("dash.js")
            ? route.fulfill({ body: dashjs, contentType: "text/javascript" })
            : route.fulfill({
                contentType: "text/html",
                body: '<!doctype html><video muted autoplay></video><script src="/_test/dash.js"></script>',
              }),
        );
        await page.goto(`${base}/_test/page.html`);
        // 20 s before the gap to 30 s after it: two periods.
        const from = GAP.from - 20;
        const dur = GAP.to - GAP.from + 30;
        await page.evaluate((url) => {
          const w = window as unknown as {
            dashjs: {
              MediaPlayer(): {
                create(): {
                  initialize(v: HTMLVideoElement, url: string, autoplay: boolean): void;
                  on(event: string, f: (e: unknown) => void): void;
                };
              };
            };
            dashErrors: string[];
          };
          w.dashErrors = [];
          const player = w.dashjs.MediaPlayer().create();
          player.on("error", (e) => w.dashErrors.push(JSON.stringify(e).slice(0, 300)));
          player.initialize(document.querySelector("video")!, url, true);
        }, `${base}/sim/cam1/archive-${from}-${dur}.mpd`);
        await page.waitForFunction(() => (document.querySelector("video")?.currentTime ?? 0) > 5, undefined, {
          timeout: 30_000,
        });
        // Past the first period's 20 s into the second.
        await page.waitForFunction(
          () => (document.querySelector("video")?.currentTime ?? 0) > 25,
          undefined,
          {
            timeout: 60_000,
          },
        );
        const errors = await page.evaluate(() => (window as unknown as { dashErrors: string[] }).dashErrors);
        expect(errors).toEqual([]);
        expect(pageErrors).toEqual([]);
      } finally {
        await browser.close();
      }
    },
    120_000,
  );

  it.skipIf(!hasChromium)(
    "headless Chromium: the page lists the stream, a click on its timeline plays it from that moment past 5 s, the delayed channel plays as it was the chosen minutes ago, no hls.js error; a delay shorter than the lag is refused by the form in its own words, and the legend says 'not in the backup'",
    async () => {
      const browser = await launchChromium();
      try {
        const page = browser.pages()[0] ?? (await browser.newPage());
        const consoleErrors: string[] = [];
        page.on("pageerror", (e) => consoleErrors.push(String(e)));
        page.on("console", (m) => {
          if (m.type() === "error") consoleErrors.push(m.text());
        });
        await page.goto(`${base}/`);
        const svg = page.locator('.stream[data-source="sim"][data-stream="cam1"] svg.timeline');
        await svg.waitFor({ timeout: 10_000 });
        // The point of the timeline for a second well inside the stored archive.
        const at = T0 - 44 * MIN;
        const { x, y } = await svg.evaluate((el, t) => {
          const from = Number(el.dataset.from);
          const to = Number(el.dataset.to);
          const width = Number(el.dataset.width);
          const box = el.getBoundingClientRect();
          const px = 60 + ((t - from) / (to - from)) * (width - 70);
          return { x: (px / width) * box.width, y: 20 };
        }, at);
        await svg.click({ position: { x, y } });
        const video = page.locator("video");
        await page.waitForFunction(() => (document.querySelector("video")?.currentTime ?? 0) > 0, undefined, {
          timeout: 20_000,
        });
        const started = await video.evaluate((v: HTMLVideoElement) => v.currentTime);
        await page.waitForFunction(
          (t0) => {
            const v = document.querySelector("video");
            return v !== null && v.currentTime > 5 && v.currentTime >= t0 + 5;
          },
          started,
          { timeout: 30_000 },
        );
        const state = await page.evaluate(() => {
          const p = (
            window as unknown as {
              playback: { errors: string[]; playing: { url: string }; playingSecond(): number | undefined };
            }
          ).playback;
          const v = document.querySelector("video")!;
          return {
            errors: p.errors,
            url: p.playing.url,
            currentTime: v.currentTime,
            second: p.playingSecond(),
          };
        });
        console.log(`serve page: played ${state.url} from currentTime ${started} to ${state.currentTime}`);
        expect(playbackErrors(state.errors)).toEqual([]);
        expect(consoleErrors).toEqual([]);
        expect(state.url).toMatch(/^\/sim\/cam1\/index-\d+-3600\.m3u8$/);
        const clicked = Number(/index-(\d+)-/.exec(state.url)![1]);
        expect(Math.abs(clicked - at)).toBeLessThan(30);
        // What is on screen is the clicked moment plus the seconds played, not the playlist's end.
        expect(state.second).toBeGreaterThanOrEqual(clicked + 4);
        expect(state.second).toBeLessThan(clicked + state.currentTime - started + 10);

        // The delayed channel: the stream as it was the suggested number of minutes ago (the
        // backup's lag plus 5 minutes), a live playlist that plays on.
        const minutes = Number(await page.locator("#delay").inputValue());
        await page.click("#delay-play");
        await page.waitForFunction(
          (m) =>
            (window as unknown as { playback: { playing: { url: string } } }).playback.playing.url.endsWith(
              `/timeshift_rel-${m * 60}.m3u8`,
            ),
          minutes,
        );
        await page.waitForFunction(() => (document.querySelector("video")?.currentTime ?? 0) > 0, undefined, {
          timeout: 20_000,
        });
        const delayedStart = await video.evaluate((v: HTMLVideoElement) => v.currentTime);
        await page.waitForFunction(
          (t0) => (document.querySelector("video")?.currentTime ?? 0) >= t0 + 5,
          delayedStart,
          {
            timeout: 30_000,
          },
        );
        const delayed = await page.evaluate(() => {
          const p = (
            window as unknown as { playback: { errors: string[]; playingSecond(): number | undefined } }
          ).playback;
          return { errors: p.errors, behind: Date.now() / 1000 - (p.playingSecond() ?? 0) };
        });
        console.log(
          `serve page: delayed channel of ${minutes} min plays ${delayed.behind.toFixed(1)} s behind now`,
        );
        expect(playbackErrors(delayed.errors)).toEqual([]);
        expect(delayed.behind).toBeGreaterThanOrEqual(minutes * 60);
        expect(delayed.behind).toBeLessThan(minutes * 60 + 90);
        expect(consoleErrors).toEqual([]);

        // The page while the delayed channel plays.
        const shot = join(tmpdir(), `flussonic-backup-serve-page-${process.pid}.png`);
        await page.screenshot({ path: shot, fullPage: true });
        console.log(`serve page screenshot: ${shot}`);

        // The legend and the lane use the one vocabulary (issue 25): this page does not ask the
        // source, so a gap between stored ranges is "not in the backup", in grey, not a red "hole".
        const legend = await page.locator(".legend").textContent();
        expect(legend).toContain("not in the backup (not recorded at the source, or not yet copied");
        expect(await page.locator("#streams").textContent()).not.toMatch(/hole/i);

        // A delay shorter than the backup's lag: the form says so in its own words (the lag in whole
        // minutes) and nothing starts playing.
        const playingBefore = await page.evaluate(
          () => (window as unknown as { playback: { playing: { url: string } } }).playback.playing.url,
        );
        // What plays, without the frame's moving time (" · at …"), which ticks while it plays.
        const playingWhat = async () =>
          ((await page.locator("#now-playing").textContent()) ?? "").split(" · at ")[0];
        const nowPlayingBefore = await playingWhat();
        await page.fill("#delay", "1");
        await page.click("#delay-play");
        await page.locator("#delay-note").waitFor({ state: "visible", timeout: 5_000 });
        const note = (await page.locator("#delay-note").textContent()) ?? "";
        const m = /^The backup of sim\/cam1 is (\d+) min behind live; choose \1 minutes or more\.$/.exec(
          note,
        );
        expect(m, note).not.toBeNull();
        expect(Number(m![1])).toBeGreaterThan(1);
        expect(
          await page.evaluate(
            () => (window as unknown as { playback: { playing: { url: string } } }).playback.playing.url,
          ),
        ).toBe(playingBefore);
        expect(await playingWhat()).toBe(nowPlayingBefore);
        expect(nowPlayingBefore).toContain("delayed by");
        const noteShot = join(tmpdir(), `flussonic-backup-serve-delay-note-${process.pid}.png`);
        await page.screenshot({ path: noteShot, fullPage: true });
        console.log(`serve page screenshot (delay refused): ${noteShot}`);
      } finally {
        await browser.close();
      }
    },
    120_000,
  );

  it.skipIf(!hasChromium)(
    "dash.js plays archive-{from}-{dur}.mpd?thumbnails=N and takes its image track: provideThumbnail gives images-{W}x{H}/dvr-{from}-{offset}.m4v.jpg, a JPEG the server decodes",
    async () => {
      const browser = await launchChromium();
      try {
        const page = await browser.newPage();
        const pageErrors: string[] = [];
        page.on("pageerror", (e) => pageErrors.push(String(e)));
        const dashjs = readFileSync(
          join(import.meta.dirname, "../../node_modules/dashjs/dist/modern/umd/dash.all.min.js"),
        );
        await page.route(`${base}/_test/**`, (route) =>
          route.request().url().endsWith("dash.js")
            ? route.fulfill({ body: dashjs, contentType: "text/javascript" })
            : route.fulfill({
                contentType: "text/html",
                body: '<!doctype html><video muted autoplay></video><script src="/_test/dash.js"></script>',
              }),
        );
        await page.goto(`${base}/_test/page.html`);
        const from = T0 - 45 * MIN;
        await page.evaluate((url) => {
          const w = window as unknown as {
            dashjs: {
              MediaPlayer(): {
                create(): {
                  initialize(v: HTMLVideoElement, url: string, autoplay: boolean): void;
                  on(event: string, f: (e: unknown) => void): void;
                  provideThumbnail(
                    t: number,
                    f: (th: { url: string; width: number; height: number } | null) => void,
                  ): void;
                };
              };
            };
            dashErrors: string[];
            thumbnailAt(t: number): Promise<{ url: string; width: number; height: number } | null>;
          };
          w.dashErrors = [];
          const player = w.dashjs.MediaPlayer().create();
          player.on("error", (e) => w.dashErrors.push(JSON.stringify(e).slice(0, 300)));
          player.initialize(document.querySelector("video")!, url, true);
          w.thumbnailAt = (t) => new Promise((resolve) => player.provideThumbnail(t, resolve));
        }, `${base}/sim/cam1/archive-${from}-120.mpd?thumbnails=12`);
        await page.waitForFunction(() => (document.querySelector("video")?.currentTime ?? 0) > 3, undefined, {
          timeout: 30_000,
        });
        const thumbnail = await page.evaluate(() =>
          (
            window as unknown as {
              thumbnailAt(t: number): Promise<{ url: string; width: number; height: number } | null>;
            }
          ).thumbnailAt(35),
        );
        expect(thumbnail, "dash.js found no thumbnail at 35 s").not.toBeNull();
        const path = new URL(thumbnail!.url).pathname;
        const m = /^\/sim\/cam1\/images-160x120\/dvr-(\d+)-(\d+)\.m4v\.jpg$/.exec(path);
        expect(m, path).not.toBeNull();
        // The period starts at the first key frame at or after `from`; the image of 35 s is the
        // one of its 10-second interval (30 s).
        expect(Number(m![1]) - from).toBeLessThan(2);
        expect(Number(m![2])).toBe(30);
        expect({ width: thumbnail!.width, height: thumbnail!.height }).toEqual({ width: 160, height: 120 });
        const image = await fetch(thumbnail!.url);
        expect(image.status).toBe(200);
        expect(image.headers.get("content-type")).toBe("image/jpeg");
        expect(await page.evaluate(() => (window as unknown as { dashErrors: string[] }).dashErrors)).toEqual(
          [],
        );
        expect(pageErrors).toEqual([]);
      } finally {
        await browser.close();
      }
    },
    90_000,
  );

  it.skipIf(!hasChromium)(
    "headless Chromium: hovering a timeline over stored video shows that moment's picture (a JPEG the server decodes, fitted into 320x240: the stored 160x120), over a gap none",
    async () => {
      const browser = await launchChromium();
      try {
        const page = browser.pages()[0] ?? (await browser.newPage());
        const pageErrors: string[] = [];
        page.on("pageerror", (e) => pageErrors.push(String(e)));
        await page.goto(`${base}/`);
        const block = page.locator('.stream[data-source="sim"][data-stream="cam1"]');
        const svg = block.locator("svg.timeline");
        await svg.waitFor({ timeout: 10_000 });
        const pointAt = (t: number) =>
          svg.evaluate((el, at) => {
            const from = Number(el.dataset.from);
            const to = Number(el.dataset.to);
            const width = Number(el.dataset.width);
            const box = el.getBoundingClientRect();
            const px = 60 + ((at - from) / (to - from)) * (width - 70);
            return { x: box.left + (px / width) * box.width, y: box.top + 20 };
          }, t);
        const stored = await pointAt(T0 - 40 * MIN);
        await page.mouse.move(stored.x, stored.y);
        const thumb = block.locator("img[data-role=thumb]");
        await page.waitForFunction(
          () => {
            const img = document.querySelector<HTMLImageElement>(
              '.stream[data-stream="cam1"] img[data-role=thumb]',
            );
            return img !== null && !img.hidden && img.complete && img.naturalWidth > 0;
          },
          undefined,
          { timeout: 20_000 },
        );
        const shown = await thumb.evaluate((img: HTMLImageElement) => ({
          src: img.getAttribute("src"),
          at: Number(img.dataset.at),
          width: img.naturalWidth,
          height: img.naturalHeight,
        }));
        expect(shown.src).toMatch(/^\/sim\/cam1\/images-320x240\/seg-\d+-0\.hls\.jpg$/);
        expect(Math.abs(shown.at - (T0 - 40 * MIN))).toBeLessThan(60);
        expect({ width: shown.width, height: shown.height }).toEqual({ width: 160, height: 120 });
        const image = await fetch(`${base}${shown.src}`);
        expect(image.headers.get("content-type")).toBe("image/jpeg");
        const shot = join(tmpdir(), `flussonic-backup-serve-thumbnail-${process.pid}.png`);
        await page.screenshot({ path: shot, fullPage: true });
        console.log(`serve page screenshot (hover thumbnail): ${shot}`);
        const gap = await pointAt((GAP.from + GAP.to) / 2);
        await page.mouse.move(gap.x, gap.y);
        await page.waitForFunction(
          () =>
            document.querySelector<HTMLImageElement>('.stream[data-stream="cam1"] img[data-role=thumb]')!
              .hidden,
          undefined,
          { timeout: 5_000 },
        );
        expect(pageErrors).toEqual([]);
      } finally {
        await browser.close();
      }
    },
    60_000,
  );

  it("with tokens: the listing and playlists need ?token= (403 with the reason otherwise), media URLs are signed by the server, the page asks for a token and passes one on; SIGTERM stops it (exit 0)", async () => {
    // The server without tokens stops first (it holds the emulator's state directory).
    expect(await server.stop()).toBe(0);
    expect(server.stdout()).toContain("Stopped.");
    const env = { FLUSSONIC_BACKUP_PLAYBACK_KEYS: "a-playback-key-of-at-least-32-characters" };
    const minted = await cli(
      [
        "playback-token",
        "--config",
        configFile,
        "--embedded",
        "state",
        "--source",
        "sim",
        "--stream",
        "cam1",
      ],
      {
        cwd: dir,
        env,
      },
    );
    expect(minted.code, minted.stderr).toBe(0);
    // The token is in the audit trail of the embedded backup (docs/evidence.md).
    expect(minted.stderr).toBe("");
    expect(minted.stdout).toContain("recorded in the audit trail as token");
    const token = minted.stdout.trim().split("\n").at(-1)!;
    const authed = startCli(["serve", "--config", configFile, "--embedded", "state", "--port", "0"], {
      cwd: dir,
      env,
    });
    try {
      const url = await servedAt(authed);
      expect(authed.stdout()).toContain(`playback-token --config ${configFile} --source sim`);
      expect(authed.stdout()).not.toContain(token);

      const page = await fetch(`${url}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('id="token-form"');
      const unlisted = await fetch(`${url}/_api/streams.json`);
      expect(unlisted.status).toBe(403);
      expect(((await unlisted.json()) as { error: string }).error).toMatch(/needs a token/);
      const wrong = await fetch(`${url}/_api/streams.json?token=${encodeURIComponent(`${token}x`)}`);
      expect(wrong.status).toBe(403);
      await wrong.arrayBuffer();
      const listing = await fetch(`${url}/_api/streams.json?token=${encodeURIComponent(token)}`);
      expect(listing.status).toBe(200);
      const body = (await listing.json()) as {
        auth: boolean;
        sources: { source: string; streams: { stream: string }[] }[];
      };
      expect(body.auth).toBe(true);
      expect(body.sources.map((s) => [s.source, s.streams.map((x) => x.stream)])).toEqual([
        ["sim", ["cam1"]],
      ]);

      const playlistPath = `/sim/cam1/index-${T0 - 45 * MIN}-60.m3u8`;
      const refused = await fetch(`${url}${playlistPath}`);
      expect(refused.status).toBe(403);
      await refused.arrayBuffer();
      const playlist = await fetch(`${url}${playlistPath}?token=${encodeURIComponent(token)}`);
      expect(playlist.status).toBe(200);
      const text = await playlist.text();
      expect(text).not.toContain(token);
      const media = new URL(/#EXT-X-MAP:URI="([^"]+)"/.exec(text)![1]!, `${url}/sim/cam1/`);
      expect(media.searchParams.get("sig")).toBeTruthy();
      const signed = await fetch(media, { headers: { Range: "bytes=0-7" } });
      expect(signed.status).toBe(206);
      expect(
        Buffer.from(await signed.arrayBuffer())
          .subarray(4, 8)
          .toString("latin1"),
      ).toBe("ftyp");
      const unsigned = await fetch(`${media.origin}${media.pathname}`, { headers: { Range: "bytes=0-7" } });
      expect(unsigned.status).toBe(403);
      expect(await unsigned.text()).toMatch(/signature is missing or wrong/);
      media.searchParams.set("exp", String(Number(media.searchParams.get("exp")) + 3600));
      const stretched = await fetch(media, { headers: { Range: "bytes=0-7" } });
      expect(stretched.status).toBe(403);
      await stretched.arrayBuffer();

      if (hasChromium) {
        // In the browser: without a token the page asks for one; with ?token= it passes the token on.
        const browser = await launchChromium();
        try {
          const page = browser.pages()[0] ?? (await browser.newPage());
          await page.goto(`${url}/`);
          await page.locator("#token-form").waitFor({ state: "visible", timeout: 10_000 });
          await page.goto(`${url}/?token=${encodeURIComponent(token)}`);
          const svg = page.locator('.stream[data-source="sim"][data-stream="cam1"] svg.timeline');
          await svg.waitFor({ timeout: 10_000 });
          const box = (await svg.boundingBox())!;
          await svg.click({ position: { x: box.width * 0.35, y: 20 } });
          await page.waitForFunction(
            () => (document.querySelector("video")?.currentTime ?? 0) > 1,
            undefined,
            {
              timeout: 20_000,
            },
          );
          const errors = await page.evaluate(
            () => (window as unknown as { playback: { errors: string[] } }).playback.errors,
          );
          expect(playbackErrors(errors)).toEqual([]);
        } finally {
          await browser.close();
        }
      }
    } finally {
      expect(await authed.stop()).toBe(0);
      // The tests after this one (in any order) use the server without tokens again.
      await startPlainServer();
    }
    expect(authed.stdout()).toContain("Stopped.");
    expect(authed.stderr()).not.toContain(token);
  });

  it("--no-auth on a host other machines can reach is refused with a sentence (exit 2)", async () => {
    const r = await cli(["serve", "--config", configFile, "--host", "0.0.0.0", "--no-auth"], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(/^--no-auth: refused on --host 0\.0\.0\.0, .*loopback host/);
  });

  it("a --cors-origin that is not an origin is refused with a sentence (exit 2)", async () => {
    const r = await cli(["serve", "--config", configFile, "--no-auth", "--cors-origin", "evil.example/x"], {
      cwd: dir,
    });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(
      /^--cors-origin evil\.example\/x: not an origin; give scheme:\/\/host\[:port\]/,
    );
  });
});

/**
 * The hls.js errors the page recorded, less one: hls.js reports skipping the start gap that a
 * B-frame composition offset leaves (the real media's video starts about 0.2 s after its
 * fragment's decode time) as a non-fatal `bufferSeekOverHole` on some runs. That is hls.js playing
 * on, not an error of ours; anything else, and anything fatal, is kept.
 */
/**
 * The hls.js errors that say the backup played wrong. Left out: the non-fatal stall reports a
 * starved machine causes (the player waits or nudges and plays on), and seeking over a gap hls.js
 * reports while it does so. Any fatal error counts.
 */
const HARMLESS_PLAYER_EVENTS = new Set([
  "mediaError/bufferSeekOverHole",
  "mediaError/bufferStalledError",
  "mediaError/bufferNudgeOnStall",
]);

function playbackErrors(errors: readonly string[]): string[] {
  return errors.filter((e) => !HARMLESS_PLAYER_EVENTS.has(e));
}
