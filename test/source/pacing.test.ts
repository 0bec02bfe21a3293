/**
 * Pacing of archive downloads against the source's cap (issue 13): every byte is paid for once;
 * a source that answers Range is read in paced, verified slices (a slice of another export is
 * refused, a lost connection resumes where it stopped); the simulator's Range support itself.
 */
import { request } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { expectExactCopies } from "../../dev/kit/backup-checks.ts";
import { type Harness, startHarness } from "../../dev/kit/harness.ts";
import { parseConfig } from "../../functions/config/config.ts";
import { RetryableError } from "../../functions/domain/errors.ts";
import { clipRanges } from "../../functions/domain/ranges.ts";
import { FlussonicClient, sliceBytes } from "../../functions/source/flussonic.ts";
import { TokenBucket } from "../../functions/source/throttle.ts";
import { runOnce } from "../../local/once.ts";
import { FlussonicSimulator, type SimulatorOptions } from "../../simulator/simulator.ts";

const NOW = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
const FROM = NOW - 3600;
let sim: FlussonicSimulator | undefined;
let client: FlussonicClient | undefined;
let h: Harness | undefined;
afterEach(async () => {
  await client?.close();
  await sim?.close();
  await h?.close();
  sim = undefined;
  client = undefined;
  h = undefined;
});

/** A source with one stream `cam1` at `bitrateBps`, recorded for the last two hours. */
async function source(bitrateBps: number, options: SimulatorOptions = {}) {
  sim = await FlussonicSimulator.start({
    now: () => NOW,
    liveOnlyStreams: 0,
    streams: [{ name: "cam1", bitrateBps, ranges: [{ from: NOW - 7200, to: NOW + 1 }] }],
    ...options,
  });
  const config = parseConfig(
    JSON.stringify({ bucket: "test-bucket", sources: [{ name: "src1", url: sim.url }] }),
    "test.json",
  );
  client = new FlussonicClient(config.sources[0]!, { type: "none" });
  return { sim, client };
}

/** A token bucket that adds up what was paid. */
function countingBucket(bytesPerSecond: number) {
  const bucket = new TokenBucket(bytesPerSecond);
  const paid = { bytes: 0 };
  const take = bucket.take.bind(bucket);
  bucket.take = (bytes, signal) => {
    paid.bytes += bytes;
    return take(bytes, signal);
  };
  const refund = bucket.refund.bind(bucket);
  bucket.refund = (bytes) => {
    paid.bytes -= bytes;
    refund(bytes);
  };
  return { bucket, paid };
}

async function readAll(body: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of body) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

describe("pacing archive downloads", () => {
  it("pays each byte of a window once (no second charge for the receive window)", async () => {
    // Windows of 2.4 MB (32 kbit/s x 600 s), larger than the 1 MiB paid up front.
    h = await startHarness({
      sim: {
        streams: Array.from({ length: 3 }, (_, i) => ({
          name: `cam${i + 1}`,
          bitrateBps: 32_000,
          ranges: [{ from: NOW - 3600, to: NOW + 1 }],
        })),
        liveOnlyStreams: 0,
      },
      source: { retentionDays: 0.5 / 24, maxConcurrentCopies: 2, maxBandwidthMbps: 400 },
    });
    const rt = await h.runtime();
    const bucket = rt.throttles.get("src1") as TokenBucket;
    let paid = 0;
    const take = bucket.take.bind(bucket);
    bucket.take = (bytes, signal) => {
      paid += bytes;
      return take(bytes, signal);
    };
    // What a window shorter than the receive window paid up front is given back.
    const refund = bucket.refund.bind(bucket);
    bucket.refund = (bytes) => {
      paid -= bytes;
      refund(bytes);
    };
    const run = await runOnce(rt, h.tally);
    expect(run.ok).toBe(true);
    expect(run.copied).toBeGreaterThanOrEqual(3);
    expect(run.bytes).toBeGreaterThan(3 * 2_000_000);
    expect(paid).toBe(run.bytes);
  });

  it("copies every window of a source that answers Range, in slices, byte for byte through the copier", async () => {
    h = await startHarness({
      sim: {
        streams: [{ name: "cam1", bitrateBps: 32_000, ranges: [{ from: NOW - 3600, to: NOW + 1 }] }],
        liveOnlyStreams: 0,
        ranges: true,
      },
      source: { retentionDays: 1 / 24, maxConcurrentCopies: 2, maxBandwidthMbps: 80 },
    });
    const rt = await h.runtime();
    const run = await runOnce(rt, h.tally);
    expect(run.ok).toBe(true);
    expect(run.copied).toBeGreaterThanOrEqual(5);
    const lastBoundary = Math.floor((NOW - h.config.settleSeconds) / 600) * 600;
    await expectExactCopies(h, "cam1", clipRanges(h.sim.rangesOf("cam1"), NOW - 3600, lastBoundary));
    const archive = h.sim.requests.filter((r) => r.kind === "archive");
    expect(archive.every((r) => r.status === 206)).toBe(true);
    expect(archive.length).toBeGreaterThan(run.copied); // more than one slice per window
  });

  it("reads a source that answers Range in paced, If-Range slices: never a burst over the cap, idle connections dropped between slices", async () => {
    // 2.4 MB at 1 MB/s: in one request the kernels would take it all at once (a 2.4x second).
    const cap = 1_000_000;
    const { sim: s, client: c } = await source(32_000, { ranges: true, keepAliveTimeoutMs: 100 });
    const { bucket, paid } = countingBucket(cap);
    const w = await c.openWindow("cam1", FROM, 600, "mp4", undefined, { throttle: bucket });
    expect(w.mode).toBe("slices");
    const bytes = await readAll(w.body);
    expect(bytes.equals(s.body("cam1", FROM, 600, "mp4"))).toBe(true);
    expect(w.contentLength).toBe(bytes.length);
    const slices = s.requests.filter((r) => r.kind === "archive");
    // A quarter second of one copy's share (2 copies, the default).
    expect(slices.length).toBe(Math.ceil(bytes.length / sliceBytes(cap / 2)));
    expect(slices.every((r) => r.status === 206)).toBe(true);
    // Paid once, before asking: at most the first slice's rounding over the window.
    expect(paid.bytes).toBe(bytes.length);
    await s.meter.settled();
    expect(s.meter.maxRate(1000)).toBeLessThanOrEqual(1.5 * cap);
  });

  it("refuses a slice of another export (bytes differ per request) and copies the window in one request next", async () => {
    const { sim: s, client: c } = await source(32_000, { ranges: true, varyBytesPerRequest: true });
    const { bucket } = countingBucket(1_000_000);
    const w = await c.openWindow("cam1", FROM, 600, "mp4", undefined, { throttle: bucket });
    expect(w.mode).toBe("slices");
    const failed = await readAll(w.body).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(RetryableError);
    expect(String((failed as Error).message)).toMatch(/export changed between two range requests/);
    // The second request was answered with the whole new export (If-Range did not match).
    expect(s.requests.filter((r) => r.kind === "archive").map((r) => r.status)).toEqual([206, 200]);

    const again = await c.openWindow("cam1", FROM, 600, "mp4", undefined, { throttle: bucket });
    expect(again.mode).toBe("whole");
    const bytes = await readAll(again.body);
    expect(bytes.length).toBe(s.body("cam1", FROM, 600, "mp4").length);
  });

  it("resumes a slice cut by a reset from the last byte received, not from the window's start", async () => {
    const { sim: s, client: c } = await source(32_000, {
      ranges: true,
      faults: { resetAfterBytes: 100_000, bodyFaultNext: 1 },
    });
    const { bucket, paid } = countingBucket(4_000_000);
    const w = await c.openWindow("cam1", FROM, 600, "mp4", undefined, { throttle: bucket });
    const bytes = await readAll(w.body);
    expect(bytes.equals(s.body("cam1", FROM, 600, "mp4"))).toBe(true);
    expect(paid.bytes).toBe(bytes.length);
    await s.meter.settled();
    // What crossed the network: the window once, not its first 100 kB twice over a restart.
    expect(s.meter.bytesServed).toBeLessThan(bytes.length + 100_000);
  });

  it("a source without Range (or without a strong ETag) gets one request, its receive window paid before asking", async () => {
    for (const ranges of [false, { etag: false }] as const) {
      const { sim: s, client: c } = await source(32_000, { ranges });
      const { bucket, paid } = countingBucket(100_000_000);
      const w = await c.openWindow("cam1", FROM, 600, "mp4", undefined, {
        throttle: bucket,
        receiveWindowBytes: 1 << 20,
      });
      expect(w.mode).toBe("whole");
      const bytes = await readAll(w.body);
      expect(bytes.equals(s.body("cam1", FROM, 600, "mp4"))).toBe(true);
      expect(paid.bytes).toBe(bytes.length);
      await client?.close();
      await sim?.close();
      client = undefined;
      sim = undefined;
    }
  });
});

describe("simulator Range support", () => {
  it("answers Range with 206 and Content-Range when switched on, ignores it when off, and honours If-Range", async () => {
    const { sim: s } = await source(32_000, { ranges: true });
    const url = `${s.url}/cam1/archive-${FROM}-600.mp4`;
    const whole = s.body("cam1", FROM, 600, "mp4");
    const part = await request(url, { headers: { range: "bytes=1000-1999" } });
    expect(part.statusCode).toBe(206);
    expect(part.headers["content-range"]).toBe(`bytes 1000-1999/${whole.length}`);
    expect(part.headers["accept-ranges"]).toBe("bytes");
    const etag = String(part.headers.etag);
    expect(Buffer.from(await part.body.arrayBuffer()).equals(whole.subarray(1000, 2000))).toBe(true);
    const same = await request(url, { headers: { range: "bytes=0-9", "if-range": etag } });
    expect(same.statusCode).toBe(206);
    await same.body.dump();
    const other = await request(url, { headers: { range: "bytes=0-9", "if-range": '"other"' } });
    expect(other.statusCode).toBe(200);
    await other.body.dump();
    await s.close();
    sim = undefined;

    const { sim: off } = await source(32_000);
    const res = await request(`${off.url}/cam1/archive-${FROM}-600.mp4`, {
      headers: { range: "bytes=0-9" },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers["accept-ranges"]).toBeUndefined();
    expect((await res.body.arrayBuffer()).byteLength).toBe(whole.length);
  });

  it("closes a connection whose response is not read for sendTimeoutMs (a server's send timeout)", async () => {
    // 60 MB: far more than the socket buffers hold, so the server's writes wait for the reader.
    const { sim: s } = await source(8_000_000, { sendTimeoutMs: 300 });
    const res = await request(`${s.url}/cam1/archive-${FROM}-60.mp4`);
    expect(res.statusCode).toBe(200);
    await expect.poll(() => s.requests.filter((r) => r.kind === "archive").length, { timeout: 5000 }).toBe(1);
    await expect(res.body.arrayBuffer()).rejects.toThrow();
  });
});
