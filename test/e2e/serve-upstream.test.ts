/**
 * `flussonic-backup serve --upstream` (issue 24 §1) as a user runs it: the binary in a child
 * process, in front of the Flussonic simulator (real H.264/AAC media, which also serves HLS of its
 * archive) and a backup of it the binary made in the embedded emulator. Flussonic's own URLs
 * (`/{stream}/{file}`) are the server's while it answers and the backup's, per request, when it
 * is down (connection refused), fails (5xx), is too slow (--upstream-timeout), or no longer has
 * the range (404); a live-only URL while it is down is 503 with a sentence. Headless Chromium
 * plays the delayed channel on serve's own page (at Flussonic's URL), the simulator stops in the
 * middle, and the player goes on with no fatal error while the page says where the video comes from.
 * Skips with the reason printed when ffmpeg (or, for the player, chromium) is absent.
 */
/// <reference lib="dom" />
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliService, cli, startCli, waitFor } from "../../dev/kit/cli-process.ts";
import { FlussonicSimulator } from "../../simulator/simulator.ts";

const hasFfmpeg = spawnSync("ffmpeg", ["-version"], { stdio: "ignore" }).status === 0;
const CHROMIUM = "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
if (!hasFfmpeg)
  console.log("serve --upstream tests skipped: ffmpeg not on the PATH (apt-get install ffmpeg)");

const MIN = 60;
/** The delay of the time-shifted channel: well beyond the backup's lag after one run. */
const DELAY = 30 * MIN;

describe.skipIf(!hasFfmpeg)(
  "serve --upstream: Flussonic's URLs keep playing when the server does not answer",
  () => {
    let dir: string;
    let sim: FlussonicSimulator;
    /** Seconds added to the simulator's clock (to make it forget old archive, as retention does). */
    let simClockShift = 0;
    let server: CliService;
    let base: string;
    const t0 = Math.floor(Date.now() / 1000);

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), "fb-upstream-"));
      sim = await FlussonicSimulator.start({
        media: "real",
        liveOnlyStreams: 0,
        days: 1,
        now: () => Math.floor(Date.now() / 1000) + simClockShift,
        streams: [{ name: "tv", ranges: [{ from: t0 - 60 * MIN, to: Number.POSITIVE_INFINITY }] }],
      });
      const configFile = join(dir, "config.json");
      writeFileSync(
        configFile,
        JSON.stringify({
          bucket: "upstream-backup",
          sources: [{ name: "sim", url: sim.url, streams: ["tv"], retentionDays: 2 }],
        }),
      );
      const backup = await cli(["run", "--config", configFile, "--once", "--embedded", "state"], {
        cwd: dir,
        timeoutMs: 90_000,
      });
      expect(backup.code, backup.stderr).toBe(0);
      server = startCli(
        [
          "serve",
          ...["--config", configFile, "--embedded", "state", "--port", "0", "--no-auth"],
          ...["--upstream", sim.url, "--upstream-timeout", "1000"],
        ],
        { cwd: dir },
      );
      base = await waitFor(
        "the URL serve prints",
        async () => /at (http:\/\/\S+?)\/?\n/.exec(server.stdout())?.[1],
      );
    }, 120_000);

    afterAll(async () => {
      await server?.stop();
      await sim?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    async function get(path: string) {
      const res = await fetch(`${base}${path}`);
      return {
        status: res.status,
        origin: res.headers.get("x-playback-origin"),
        failover: res.headers.get("x-playback-failover"),
        text: await res.text(),
      };
    }

    it("prints that Flussonic's URLs are forwarded, and forwards them while the server answers (its playlist, its segments)", async () => {
      expect(server.stdout()).toContain(
        `Flussonic's URLs: ${base}/{stream}/{file} is forwarded to ${sim.url} while it answers, and served from the backup of source "sim" when it does not`,
      );
      const viaServe = await get(`/tv/timeshift_rel-${DELAY}.m3u8`);
      expect(viaServe.status).toBe(200);
      expect(viaServe.origin).toBe("server");
      expect(viaServe.text).toContain('#EXT-X-MAP:URI="init.mp4"');
      const segment = /^\d{4}\/.*\.m4s$/m.exec(viaServe.text)![0];
      const bytes = await fetch(`${base}/tv/${segment}`);
      expect(bytes.status).toBe(200);
      expect(bytes.headers.get("x-playback-origin")).toBe("server");
      expect(Buffer.from(await bytes.arrayBuffer())).toEqual(
        Buffer.from(await (await fetch(`${sim.url}/tv/${segment}`)).arrayBuffer()),
      );
    });

    it("the server down (connection refused): the same URL from the backup, saying why; a live-only URL is 503 with a sentence; back to the server when it returns", async () => {
      await sim.pauseListening();
      try {
        const fromBackup = await get(`/tv/timeshift_rel-${DELAY}.m3u8`);
        expect(fromBackup.status).toBe(200);
        expect(fromBackup.origin).toBe("backup");
        expect(fromBackup.failover).toBe("connection refused");
        expect(fromBackup.text).toContain("/_media/");
        const live = await get("/tv/index.m3u8");
        expect(live.status).toBe(503);
        expect(live.text).toBe(
          `index.m3u8: the server at ${sim.url} does not answer (connection refused) and the backup serves only archive URLs (DVR playlists, manifests, exports): live-only URLs and the server's own segments come back with the server\n`,
        );
        const dash = await get(`/tv/archive-${t0 - 50 * MIN}-120.mpd`);
        expect(dash.status).toBe(200);
        expect(dash.origin).toBe("backup");
      } finally {
        await sim.resumeListening();
      }
      expect((await get(`/tv/timeshift_rel-${DELAY}.m3u8`)).origin).toBe("server");
    });

    it("JPEG previews and thumbnails: the server's refusal (403, thumbnails not enabled) is passed on while it answers; when it is down the backup decodes them (ffprobe: JPEG of the stored size)", async () => {
      const at = t0 - 50 * MIN + 30;
      const up = await get(`/tv/${at}-preview.jpg`);
      expect(up.status).toBe(403);
      expect(up.origin).toBe("server");
      await sim.pauseListening();
      try {
        for (const file of [`${at}-preview.jpg`, `images-80x80/seg-${at}-0.hls.jpg`]) {
          const res = await fetch(`${base}/tv/${file}`);
          expect(res.status, file).toBe(200);
          expect(res.headers.get("x-playback-origin"), file).toBe("backup");
          expect(res.headers.get("content-type"), file).toBe("image/jpeg");
          const jpeg = join(dir, "preview.jpg");
          writeFileSync(jpeg, Buffer.from(await res.arrayBuffer()));
          const probe = spawnSync(
            "ffprobe",
            ["-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", jpeg],
            { encoding: "utf8" },
          );
          expect(probe.stdout.trim(), file).toBe(
            file.startsWith("images-") ? "mjpeg,80,60" : "mjpeg,160,120",
          );
        }
      } finally {
        await sim.resumeListening();
      }
    });

    it("the server failing (500) or too slow (past --upstream-timeout) is answered from the backup", async () => {
      sim.setFaults({ target: "all", errorRate: 1, errorStatus: 500 });
      try {
        const failing = await get(`/tv/timeshift_rel-${DELAY}.m3u8`);
        expect([failing.status, failing.origin, failing.failover]).toEqual([
          200,
          "backup",
          "the server answered 500",
        ]);
      } finally {
        sim.setFaults({});
      }
      sim.setFaults({ target: "all", latencyMs: 3000 });
      try {
        const slow = await get(`/tv/timeshift_rel-${DELAY}.m3u8`);
        expect([slow.status, slow.origin, slow.failover]).toEqual([
          200,
          "backup",
          "no answer within 1000 ms",
        ]);
      } finally {
        sim.setFaults({});
      }
    });

    it("a range the server no longer has (past its retention: 404) comes from the backup", async () => {
      const from = t0 - 55 * MIN;
      expect((await get(`/tv/index-${from}-120.m3u8`)).origin).toBe("server");
      // Two days later by the server's clock its 1-day archive no longer holds the range; the backup's 2 days do.
      simClockShift = 86_400;
      try {
        const old = await get(`/tv/index-${from}-120.m3u8`);
        expect([old.status, old.origin, old.failover]).toEqual([
          200,
          "backup",
          "the server has no such range (404)",
        ]);
      } finally {
        simClockShift = 0;
      }
    });

    it("an --upstream that is not an http(s) base URL is refused with a sentence (exit 2)", async () => {
      const r = await cli(
        [
          "serve",
          "--config",
          join(dir, "config.json"),
          "--embedded",
          "state",
          "--no-auth",
          "--upstream",
          "ftp://sim",
        ],
        { cwd: dir },
      );
      expect(r.code).toBe(2);
      expect(r.stderr.trim()).toBe(
        "--upstream ftp://sim: give the Flussonic server as http(s)://host:port (a path prefix is allowed; no query, fragment or login)",
      );
    });

    it.skipIf(!hasChromium)(
      "headless Chromium: serve's own page plays the delayed channel at Flussonic's URL (forwarded to the server); the simulator stops in the middle and the player goes on from the backup with no fatal error; the page's line says where the video comes from and changes",
      async () => {
        const { chromium } = await import("playwright-core");
        const profile = mkdtempSync(join(tmpdir(), "fb-upstream-chromium-"));
        const context = await chromium.launchPersistentContext(profile, {
          executablePath: CHROMIUM,
          headless: true,
          args: ["--headless", "--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"],
          viewport: { width: 1280, height: 900 },
        });
        try {
          const page = await context.newPage();
          const pageErrors: string[] = [];
          page.on("pageerror", (e) => pageErrors.push(String(e)));
          await page.goto(`${base}/`);
          await page.locator('#delay-stream option[value="sim/tv"]').waitFor({ state: "attached" });
          await page.selectOption("#delay-stream", "sim/tv");
          await page.fill("#delay", String(DELAY / MIN));
          await page.click("#delay-play");
          const playback = () =>
            page.evaluate(() => {
              const p = (window as unknown as { playback: { errors: string[]; playing: { url: string } } })
                .playback;
              return { errors: p.errors, url: p.playing.url };
            });
          // The upstream's source plays at Flussonic's own URL, which serve forwards to the server.
          expect((await playback()).url).toBe(`/tv/timeshift_rel-${DELAY}.m3u8`);
          const time = () => page.evaluate(() => document.querySelector("video")!.currentTime);
          await page.waitForFunction(() => document.querySelector("video")!.currentTime > 3, undefined, {
            timeout: 30_000,
          });
          const origin = page.locator("#origin");
          expect(await origin.textContent()).toBe(
            "Video from the Flussonic server (serve forwards its URLs while it answers)",
          );
          const serverShot = join(tmpdir(), `flussonic-backup-upstream-server-${process.pid}.png`);
          await page.screenshot({ path: serverShot });
          await sim.pauseListening();
          try {
            const stoppedAt = await time();
            const frames = () =>
              page.evaluate(
                () => document.querySelector("video")!.getVideoPlaybackQuality().totalVideoFrames,
              );
            // The next playlist comes from the backup; from then on the video plays on: its clock
            // advances and frames keep being decoded (hls.js may move currentTime when the
            // backup's sequence numbers replace the server's, so the advance is measured after it).
            await page.waitForFunction(
              () => document.querySelector("#origin")!.textContent!.includes("backup"),
              undefined,
              { timeout: 30_000 },
            );
            const [t1, f1] = [await time(), await frames()];
            await page.waitForFunction(
              (f) => document.querySelector("video")!.getVideoPlaybackQuality().totalVideoFrames >= f + 100,
              f1,
              { timeout: 60_000 },
            );
            const [t2, f2] = [await time(), await frames()];
            const state = await playback();
            const backupShot = join(tmpdir(), `flussonic-backup-upstream-backup-${process.pid}.png`);
            await page.screenshot({ path: backupShot });
            console.log(
              `serve --upstream page: stopped the server at currentTime ${stoppedAt.toFixed(1)}; from the backup ${t1.toFixed(1)} -> ${t2.toFixed(1)} s, ${f2 - f1} frames decoded; screenshots ${serverShot} ${backupShot}`,
            );
            expect(f2 - f1).toBeGreaterThanOrEqual(100);
            expect(await page.evaluate(() => document.querySelector("video")!.paused)).toBe(false);
            expect(state.errors.filter((e) => e.startsWith("fatal"))).toEqual([]);
            expect(pageErrors).toEqual([]);
            expect(await origin.textContent()).toBe(
              "Video from the backup: the server failed (connection refused)",
            );
          } finally {
            await sim.resumeListening();
          }
        } finally {
          await context.close();
          rmSync(profile, { recursive: true, force: true });
        }
      },
      150_000,
    );
  },
);
