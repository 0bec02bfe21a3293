/**
 * The two ways of reading what a stream recorded: the admin API's `dvr/ranges` (cursor pages,
 * `{from, duration}` seconds or `{opened_at, closed_at}` milliseconds), and the playback side's
 * `recording_status.json` (two shapes) with `ranges.json` behind it on newer servers.
 */
import { z } from "zod";
import { MalformedAnswerError } from "../domain/errors.ts";
import type { ArchiveRange } from "../domain/ranges.ts";
import { API, type Endpoint, type FlussonicApi, MAX_PAGES, PAGE_LIMIT, streamPath } from "./flussonic-api.ts";

/** Where a source's recorded ranges are read: the admin API or the playback side. */
export type IndexMode = "api" | "playback";

/**
 * A recorded range in any generation: `{from, duration}` in seconds (components/schemas/dvr/
 * dvr_range.yml, both required there), `{opened_at, closed_at}` in milliseconds (newer servers,
 * optional extras), or both at once.
 */
const rangeShape = z
  .looseObject({
    from: z.number().optional(),
    duration: z.number().nonnegative().optional(),
    opened_at: z.number().optional(),
    closed_at: z.number().nullish(),
  })
  .refine((r) => (r.from !== undefined && r.duration !== undefined) || r.opened_at !== undefined, {
    error: "expected {from, duration} in seconds or {opened_at, closed_at} in milliseconds",
  });
const rangeListShape = z.looseObject({
  ranges: z.array(rangeShape),
  next: z.string().nullish(),
});
type RangeFields = z.infer<typeof rangeShape>;
const secondsRange = z.looseObject({ from: z.number(), duration: z.number().nonnegative() });
/**
 * `recording_status.json` in either shape: the spec's one `dvr_info` object
 * (paths/playback/recording-status.yml, components/schemas/dvr/dvr_info.yml: `ranges` of
 * {from, duration} seconds), or the older documentation page's array `[{stream, ranges}]`.
 */
const recordingStatusShape = z.union(
  [
    z.looseObject({ ranges: z.array(secondsRange) }),
    z.array(z.looseObject({ stream: z.string().optional(), ranges: z.array(secondsRange) })),
    // Newer servers: dvr_info without `ranges` (the description go-flussonic is generated from
    // marks it deprecated, "replaced with ranges_list", to be deleted at 24.09): see ranges.json.
    z.looseObject({ from: z.number(), ranges: z.undefined().optional() }),
  ],
  {
    error:
      "expected a dvr_info object {from, depth, ranges: [{from, duration}]} or an array [{stream, ranges: [{from, duration}]}]",
  },
);

/**
 * The ranges of a stream in a `recording_status.json` answer of either shape (unix seconds);
 * undefined when the answer is a dvr_info without ranges (newer servers: ask ranges.json).
 */
export function recordingStatusRanges(data: unknown, name: string): ArchiveRange[] | undefined {
  const parsed = recordingStatusShape.safeParse(data);
  if (!parsed.success) return undefined;
  const body = parsed.data;
  const ranges = Array.isArray(body)
    ? ((body.find((e) => e.stream === undefined || e.stream === name) ?? body[0])?.ranges ?? [])
    : body.ranges;
  return ranges?.map((r) => wholeSeconds(r.from, r.from + r.duration));
}

/**
 * The ranges of one page of `dvr/ranges` (unix seconds). `from`/`duration` are preferred when a
 * range has them (the spec's required fields); `opened_at`/`closed_at` (ms) are read only where they
 * are missing. Only the stream's last range may be open (no `closed_at`): it ends at `openEnd`
 * (the span's end). A range before the last without an end is refused (undefined and its index):
 * taking it as open would erase every gap after it.
 */
export function rangeListRanges(
  ranges: RangeFields[],
  isLastPage: boolean,
  openEnd: number,
): { ranges: ArchiveRange[] } | { openAt: number } {
  const out: ArchiveRange[] = [];
  for (const [i, r] of ranges.entries()) {
    if (r.from !== undefined && r.duration !== undefined) {
      out.push(wholeSeconds(r.from, r.from + r.duration));
    } else if (r.opened_at !== undefined) {
      // Milliseconds to whole seconds: see wholeSeconds.
      if (r.closed_at == null && !(isLastPage && i === ranges.length - 1)) return { openAt: i };
      const closed = r.closed_at ?? openEnd * 1000;
      out.push(wholeSeconds(r.opened_at / 1000, closed / 1000));
    }
  }
  return { ranges: out };
}

/** A stream's recorded ranges from the admin API's `dvr/ranges` (all cursor pages), unsorted. */
export async function apiRanges(
  api: FlussonicApi,
  ep: Endpoint,
  name: string,
  span: { from: number; to: number },
): Promise<ArchiveRange[]> {
  const out: ArchiveRange[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const query = new URLSearchParams({ limit: String(PAGE_LIMIT) });
    if (cursor) query.set("cursor", cursor);
    const body = await api.getJson(
      ep,
      `${API}/streams/${encodeURIComponent(name)}/dvr/ranges?${query}`,
      rangeListShape,
      `ranges of stream "${name}"`,
    );
    const got = rangeListRanges(body.ranges, !body.next, span.to);
    if ("openAt" in got) {
      throw new MalformedAnswerError(
        `source ${api.sourceName}: ranges of stream "${name}": range ${got.openAt} of page ${page + 1} has opened_at but no closed_at (nor from/duration) and is not the last range: only the last range may still be recording`,
      );
    }
    out.push(...got.ranges);
    if (!body.next) return out;
    cursor = body.next;
  }
  throw new MalformedAnswerError(
    `source ${api.sourceName}: ranges of "${name}" did not end after ${MAX_PAGES} pages`,
  );
}

/**
 * `recording_status.json` on the playback side. The spec's answer is one dvr_info object and
 * declares no query parameters; the older documented form is an array and takes
 * `from`/`to`/`request=ranges`, which are still sent (a server that ignores them answers every
 * range, and the caller clips to the span).
 */
export async function playbackRanges(
  api: FlussonicApi,
  ep: Endpoint,
  name: string,
  span: { from: number; to: number },
): Promise<ArchiveRange[]> {
  const query = new URLSearchParams({ from: String(span.from), to: String(span.to), request: "ranges" });
  const what = `recording status of stream "${name}"`;
  const body = await api.getJson(
    ep,
    `/${streamPath(name)}/recording_status.json?${query}`,
    recordingStatusShape,
    what,
    "playback",
  );
  const ranges = recordingStatusRanges(body, name);
  if (ranges) return ranges;
  // A dvr_info without ranges (newer servers): `ranges.json`, what Flussonic's DVR player asks
  // (not in openapi-demo): `closed_at_gte`/`opened_at_lte` in ms, ranges in either generation.
  const rangesQuery = new URLSearchParams({
    closed_at_gte: String(span.from * 1000),
    opened_at_lte: String(span.to * 1000),
  });
  const list = await api.getJson(
    ep,
    `/${streamPath(name)}/ranges.json?${rangesQuery}`,
    rangeListShape,
    `ranges.json of stream "${name}" (its recording_status.json has no ranges)`,
    "playback",
  );
  const got = rangeListRanges(list.ranges, true, span.to);
  if ("openAt" in got) {
    throw new MalformedAnswerError(
      `source ${api.sourceName}: ranges.json of stream "${name}": range ${got.openAt} has no end and is not the last range`,
    );
  }
  return got.ranges;
}

/**
 * A recorded range in whole seconds: the start rounded down (the window from that second holds the
 * part recorded), the end rounded down too, so a range closed at x.4 s ends at x: the planner never
 * counts second x as copied while it is only partly recorded. If the range goes on, the next window
 * starts at x and holds that second whole; if it stays closed, less than a second at its end is not
 * copied. Ranges split inside a second still touch and merge.
 */
function wholeSeconds(from: number, to: number): ArchiveRange {
  return { from: Math.floor(from), to: Math.floor(to) };
}
