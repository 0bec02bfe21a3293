/**
 * Contract tests (issue 27): our schema of the Flussonic endpoints we use
 * (functions/domain/flussonic-contract.ts, written from flussonic/openapi-demo) against
 * - the client's parsers: every answer the contract allows parses, to the ranges it holds;
 * - the simulator's answers, in the spec's shapes and the older documented ones.
 * (Our playback answers are checked against it in test/playback/flussonic-shape.test.ts.)
 */
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { containerCheck } from "../../functions/domain/container-check.ts";
import {
  dvrRange,
  dvrRangeNewerFields,
  EXPORT_CONTENT_TYPES,
  errorResponse,
  recordingStatus,
  recordingStatusLegacy,
  streamDvrRangesList,
  streamsList,
} from "../../functions/domain/flussonic-contract.ts";
import { rangeListRanges, recordingStatusRanges } from "../../functions/source/flussonic.ts";
import { windowChunks } from "../../simulator/content.ts";
import { FlussonicSimulator, type SimulatorOptions } from "../../simulator/simulator.ts";

const NOW = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);
const API = "/streamer/api/v3";

/** Sorted ranges with gaps of at least one second, in unix seconds. */
const rangesArb = fc
  .array(fc.record({ gap: fc.integer({ min: 1, max: 5000 }), length: fc.integer({ min: 1, max: 40_000 }) }), {
    maxLength: 30,
  })
  .map((steps) => {
    let t = 1_600_000_000;
    return steps.map(({ gap, length }) => {
      const r = { from: t + gap, duration: length };
      t = r.from + r.duration;
      return r;
    });
  });

/** A dvr_info answer as the contract allows it, extra fields included. */
const dvrInfoArb = rangesArb.chain((ranges) =>
  fc.record({
    from: fc.constant(ranges[0]?.from ?? 1_600_000_000),
    depth: fc.constant(ranges.length ? ranges.at(-1)!.from + ranges.at(-1)!.duration - ranges[0]!.from : 0),
    ranges: fc.constant(ranges),
    bytes: fc.option(fc.nat(), { nil: undefined }),
    disk_size: fc.option(fc.nat(), { nil: undefined }),
    duration: fc.option(fc.nat(), { nil: undefined }),
    motion_log: fc.option(fc.constant([]), { nil: undefined }),
  }),
);

const asSeconds = (ranges: { from: number; duration: number }[]) =>
  ranges.map((r) => ({ from: r.from, to: r.from + r.duration }));

describe("the client's parsers take every answer the contract allows", () => {
  it("recording_status.json: the spec's dvr_info object", () => {
    fc.assert(
      fc.property(dvrInfoArb, (info) => {
        expect(recordingStatus.safeParse(info).success).toBe(true);
        expect(recordingStatusRanges(JSON.parse(JSON.stringify(info)), "cam1")).toEqual(
          asSeconds(info.ranges),
        );
      }),
    );
  });

  it("recording_status.json: a dvr_info without ranges (newer servers) asks for ranges.json; no other object passes", () => {
    expect(recordingStatusRanges({ from: 1_600_000_000, depth: 60, bytes: 1 }, "cam1")).toBeUndefined();
    expect(recordingStatusRanges({ from: 1_600_000_000, depth: 60, ranges: [] }, "cam1")).toEqual([]);
    expect(recordingStatusRanges({ depth: 60 }, "cam1")).toBeUndefined();
  });

  it("recording_status.json: the documented array, the stream's own entry", () => {
    fc.assert(
      fc.property(rangesArb, rangesArb, (mine, other) => {
        const body = [
          { stream: "other", ranges: other },
          { stream: "live/cam1", ranges: mine },
        ];
        expect(recordingStatusLegacy.safeParse(body).success).toBe(true);
        expect(recordingStatusRanges(body, "live/cam1")).toEqual(asSeconds(mine));
      }),
    );
  });

  it("dvr/ranges: from/duration (spec), opened_at/closed_at (ms), or both, the last range open", () => {
    fc.assert(
      fc.property(
        rangesArb,
        fc.constantFrom("seconds", "milliseconds", "both"),
        fc.boolean(),
        (ranges, fields, lastOpen) => {
          const end = (ranges.at(-1)?.from ?? 0) + (ranges.at(-1)?.duration ?? 0) + 100;
          const page = ranges.map((r, i) => {
            const open = lastOpen && i === ranges.length - 1;
            return {
              ...(fields !== "milliseconds" && !open ? { from: r.from, duration: r.duration } : {}),
              ...(fields !== "seconds" || open
                ? { opened_at: r.from * 1000, ...(open ? {} : { closed_at: (r.from + r.duration) * 1000 }) }
                : {}),
            };
          });
          if (fields !== "milliseconds" && !lastOpen) {
            expect(streamDvrRangesList.safeParse({ ranges: page, next: null }).success).toBe(true);
          }
          for (const r of page) expect(dvrRangeNewerFields.safeParse(r).success).toBe(true);
          const got = rangeListRanges(page, true, end);
          const expected = asSeconds(ranges);
          if (lastOpen && expected.length) expected[expected.length - 1]!.to = end;
          expect(got).toEqual({ ranges: expected });
        },
      ),
    );
  });

  it("dvr/ranges: a closed range without closed_at is read from from/duration; without either it is refused", () => {
    const page = [
      { from: 100, duration: 50, opened_at: 100_000 },
      { from: 200, duration: 50, opened_at: 200_000 },
    ];
    expect(rangeListRanges(page, true, 1000)).toEqual({
      ranges: [
        { from: 100, to: 150 },
        { from: 200, to: 250 },
      ],
    });
    expect(rangeListRanges([{ opened_at: 100_000 }, { opened_at: 200_000 }], true, 1000)).toEqual({
      openAt: 0,
    });
    // The last range of a page that is not the last page is not the stream's last range.
    expect(rangeListRanges([{ opened_at: 100_000 }], false, 1000)).toEqual({ openAt: 0 });
  });
});

describe("the simulator's answers match the contract", () => {
  let sim: FlussonicSimulator | undefined;
  afterEach(async () => {
    await sim?.close();
    sim = undefined;
  });

  async function start(options: SimulatorOptions = {}) {
    sim = await FlussonicSimulator.start({
      now: () => NOW,
      streams: [
        {
          name: "cam1",
          ranges: [
            { from: NOW - 7200, to: NOW - 3600 },
            { from: NOW - 3000, to: NOW + 1 },
          ],
        },
      ],
      ...options,
    });
    return sim;
  }

  async function get(path: string, headers: Record<string, string> = {}) {
    const res = await fetch(`${sim!.url}${path}`, { headers });
    return { status: res.status, type: res.headers.get("content-type"), body: await res.text() };
  }

  it("recording_status.json is the spec's dvr_info by default, and the documented array with shape: docs", async () => {
    await start();
    const spec = JSON.parse((await get("/cam1/recording_status.json")).body);
    const parsed = recordingStatus.parse(spec);
    expect(parsed.from).toBe(NOW - 7200);
    expect(parsed.depth).toBe(7200);
    expect(parsed.duration).toBe(3600 + 3000);
    await sim!.close();
    await start({ shape: "docs" });
    const docs = JSON.parse((await get(`/cam1/recording_status.json?from=${NOW - 3600}&to=now`)).body);
    expect(recordingStatusLegacy.parse(docs)[0]!.ranges).toEqual([{ from: NOW - 3000, duration: 3000 }]);
  });

  it("the stream list, a stream and its ranges (seconds and both generations) parse as the spec says", async () => {
    await start({ remoteStreams: 1 });
    const list = streamsList.parse(
      JSON.parse((await get(`${API}/streams`, { accept: "application/json" })).body),
    );
    const cam1 = list.streams.find((s) => s.name === "cam1")!;
    expect(cam1.named_by).toBe("config");
    expect(cam1.dvr?.dvr_replicate).toBe(false);
    expect(cam1.stats?.dvr_info?.ranges).toHaveLength(2);
    expect(list.streams.find((s) => s.name === "peer-cam1")?.named_by).toBe("remote");
    for (const rangeFields of ["seconds", "both"] as const) {
      await sim!.close();
      await start({ rangeFields });
      const page = streamDvrRangesList.parse(JSON.parse((await get(`${API}/streams/cam1/dvr/ranges`)).body));
      expect(page.ranges.map((r) => dvrRange.parse(r))).toEqual([
        expect.objectContaining({ from: NOW - 7200, duration: 3600 }),
        expect.objectContaining({ from: NOW - 3000, duration: 3000 }),
      ]);
    }
  });

  it("honours limit beyond 100 (paths/stream/streams.yml declares no maximum) and select", async () => {
    await start({ streams: 150, liveOnlyStreams: 0 });
    const page = streamsList.parse(JSON.parse((await get(`${API}/streams?limit=120&select=name`)).body));
    expect(page.streams).toHaveLength(120);
    expect(Object.keys(page.streams[0]!)).toEqual(["name"]);
    expect(page.next).toEqual(expect.any(String));
    const fewer = streamsList.parse(JSON.parse((await get(`${API}/streams`)).body));
    expect(fewer.streams).toHaveLength(100); // the default
  });

  it("error bodies are {errors: [{status, title}]} (spec), {error} with shape: docs", async () => {
    await start();
    const missing = await get(`${API}/streams/nope`);
    expect(missing.status).toBe(404);
    expect(errorResponse.parse(JSON.parse(missing.body)).errors?.[0]?.status).toBe("404");
    await sim!.close();
    await start({ shape: "docs" });
    expect(JSON.parse((await get(`${API}/streams/nope`)).body)).toEqual({ error: "stream nope not found" });
  });

  it("exports carry the spec's content types (video/mp4, video/mpeg; video/mp2t with shape: docs)", async () => {
    await start();
    const from = NOW - 1200;
    expect((await get(`/cam1/archive-${from}-60.mp4`)).type).toBe(EXPORT_CONTENT_TYPES.mp4);
    expect((await get(`/cam1/archive-${from}-60.ts`)).type).toBe(EXPORT_CONTENT_TYPES.ts);
    await sim!.close();
    await start({ shape: "docs" });
    expect((await get(`/cam1/archive-${from}-60.ts`)).type).toBe("video/mp2t");
  });
});

describe("where the spec is silent: whether an MP4 export is fragmented", () => {
  it("a fragmented export passes the copier's check; a non-fragmented one (moov + mdat, no moof) is refused, never stored", () => {
    const from = NOW - 600;
    const chunks = [...windowChunks("cam1", 64_000, [{ from, to: from + 60 }], "mp4")];
    const check = (body: Buffer) => {
      const c = containerCheck("mp4", { from, duration: 60 });
      c.feed(body);
      c.finish();
    };
    expect(() => check(Buffer.concat(chunks))).not.toThrow();
    const mdat = Buffer.alloc(8 + 1000);
    mdat.writeUInt32BE(mdat.length, 0);
    mdat.write("mdat", 4, "ascii");
    expect(() => check(Buffer.concat([chunks[0]!, mdat]))).toThrow(/no media fragment/);
  });
});
