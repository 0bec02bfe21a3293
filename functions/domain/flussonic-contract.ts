/**
 * Our own schema of the Flussonic endpoints the backup uses, written from the facts (field names,
 * types, units, what is required) of Flussonic's published OpenAPI description: the public GitHub
 * repository `flussonic/openapi-demo` at d0600ca, folder `openapi/flussonic/` (abbreviated `spec:`
 * below). No file of it is copied here: each schema cites the file its facts come from.
 *
 * These schemas are the strict ones, for tests: the client's parsers (adapters/flussonic.ts), the
 * simulator's answers (simulator) and our playback answers (functions/playback,
 * local/playback-server.ts) are all checked against them, so the three cannot drift apart. The
 * client itself is lenient where servers differ (the older documented shapes, the newer range
 * fields) and says so beside each of its parsers.
 *
 * Where the spec is silent the docs (docs/design.md, "Flussonic's API") say so, and the code relies on
 * no guess without a test of each answer a server could give: what a 404 on an export means, Range
 * and Content-Length on exports, whether an export is fragmented, the largest `limit`.
 */
import { z } from "zod";

/** Unix seconds (the spec's `format: utc`). */
const utcSeconds = z.int().nonnegative();
/** A count of seconds (the spec's `format: seconds`). */
const seconds = z.int().nonnegative();

/**
 * One recorded range. spec: components/schemas/dvr/dvr_range.yml: `from` (integer, utc seconds)
 * and `duration` (integer, seconds), both required.
 */
export const dvrRange = z.looseObject({ from: utcSeconds, duration: seconds });

/**
 * The range fields of newer servers, not in openapi-demo (go-flussonic
 * central/model/central_generated.go, DvrRange: `opened_at` and `closed_at`, utc_ms, optional;
 * `closed_at` of a range still recording is near now and may change). Our client prefers
 * `from`/`duration` when a range has them (issue 27 item 3) and takes only the last range as open
 * when `closed_at` is missing.
 */
export const dvrRangeNewerFields = z.looseObject({
  opened_at: z.int().nonnegative().optional(),
  closed_at: z.int().nonnegative().nullish(),
});

/**
 * spec: components/schemas/dvr/dvr_info.yml: `from` (utc seconds, the first recording), `depth`
 * (seconds from the start of the first range to the end of the last one), `ranges` (dvr_range[]),
 * all three required; optional `bytes`, `disk_size` (bytes), `duration` (seconds recorded, gaps
 * excluded, so at most `depth`). `locks` and `motion_log` are deprecated there and not used here.
 */
export const dvrInfo = z.looseObject({
  from: utcSeconds,
  depth: seconds,
  ranges: z.array(dvrRange),
  bytes: z.int().nonnegative().optional(),
  disk_size: z.int().nonnegative().optional(),
  duration: seconds.optional(),
});
export type DvrInfo = z.infer<typeof dvrInfo>;

/**
 * `GET /{name}/recording_status.json`. spec: paths/playback/recording-status.yml: 200
 * `application/json` with one `dvr_info` object; no query parameters are declared (the path
 * parameter `name` may have several segments). The newer description go-flussonic is generated
 * from (central/model/central_generated.go, DvrInfo) marks `ranges` deprecated ("replaced with
 * ranges_list", to be deleted at 24.09) and `dvr_range`'s `from`/`duration` deprecated for
 * `opened_at`/`closed_at` (ms, to be deleted at 24.11): the client then reads `ranges.json`.
 */
export const recordingStatus = dvrInfo;

/**
 * The older shape of `recording_status.json` (Flussonic's documentation page, not the OpenAPI): an
 * array of `{stream, ranges: [{from, duration}]}`, asked with `?from=&to=&request=ranges`.
 */
export const recordingStatusLegacy = z.array(
  z.looseObject({ stream: z.string().optional(), ranges: z.array(dvrRange) }),
);

/**
 * spec: components/schemas/collection_response.yml: `next`, `prev` (string, nullable: opaque
 * cursors), `estimated_count` (integer, nullable), `timing` (object, nullable); none required.
 */
const collectionResponse = {
  next: z.string().nullish(),
  prev: z.string().nullish(),
  estimated_count: z.int().nonnegative().nullish(),
};

/**
 * `GET /streamer/api/v3/streams/{name}/dvr/ranges`. spec: paths/stream/stream_dvr_ranges.yml (200
 * `stream_dvr_ranges_list`) and components/schemas/responses/stream_dvr_ranges_list.yml: a
 * collection response with `ranges` (dvr_range[]).
 */
export const streamDvrRangesList = z.looseObject({ ...collectionResponse, ranges: z.array(dvrRange) });

/** spec: components/schemas/stream/named_by.yml: where a stream comes from. */
export const namedBy = z.enum(["config", "user", "remote", "external"]);

/**
 * The fields of a stream the backup reads. spec: components/schemas/stream/stream_config.yml, of
 * which stream_config_specific.yml has `name` (string, the only required field) and `named_by`;
 * stream_config_media.yml has `dvr` (dvr_config: dvr/dvr_base_config.yml has `expiration` in
 * seconds and `dvr_replicate` boolean); stream_config_additional.yml has `stats`, whose
 * stream/stream_stats_base.yml has `dvr_info` and the deprecated `remote` boolean.
 */
export const streamConfig = z.looseObject({
  name: z.string().min(1),
  named_by: namedBy.optional(),
  dvr: z
    .looseObject({
      expiration: seconds.optional(),
      dvr_replicate: z.boolean().optional(),
    })
    .nullish(),
  stats: z.looseObject({ dvr_info: dvrInfo.nullish(), remote: z.boolean().optional() }).nullish(),
});

/**
 * `GET /streamer/api/v3/streams`. spec: paths/stream/streams.yml: query `select` (comma-separated
 * fields, nested with dots), `sort`, `limit` (integer, "Default value is 100"; no maximum is
 * declared), `cursor`, `q`; header `Accept` (default `application/json`); 200 `streams_list`
 * (components/schemas/responses/streams_list.yml: a collection response with `streams`). The list
 * holds configured, running, remote ("available from other servers") and only-recorded streams.
 */
export const streamsList = z.looseObject({ ...collectionResponse, streams: z.array(streamConfig) });

/**
 * An episode. spec: components/schemas/episodes/episode_base.yml: required `episode_id` (integer,
 * snowflake_id), `media` (media_name), `opened_at`, `updated_at` (integer, utc_ms); optional
 * `closed_at` (utc_ms), `started_at`, `close_reason`, `preview`, `playback_token`. episode.yml is
 * oneOf generic, face, vehicle episodes, all of this base.
 */
export const episode = z.looseObject({
  episode_id: z.int(),
  media: z.string(),
  opened_at: z.int().nonnegative(),
  updated_at: z.int().nonnegative(),
  closed_at: z.int().nonnegative().optional(),
});

/**
 * `GET /streamer/api/v3/episodes` (Central). spec: paths/central/episodes.yml (`episodes_list`;
 * query `select`, `limit`, `cursor`, `episode_type`, `media`, `updated_at_gt` in ms,
 * `poll_timeout`): components/schemas/episodes/episodes_list.yml, a collection response with
 * `episodes`.
 */
export const episodesList = z.looseObject({ ...collectionResponse, episodes: z.array(episode) });

/**
 * An episodes URL (a server's `episodes_url`). spec: paths/config/external-episodes.yml
 * (`external_episodes_list`; query `name` (required, comma-separated streams), `opened_at_lt`,
 * `closed_at_gt` in utc seconds; 200, or 501 "could not fetch"): external_episodes_list.yml, a
 * collection response of external_episode.yml: required `opened_at`, `updated_at`, optional
 * `closed_at` (utc_ms); no id, no media.
 */
export const externalEpisodesList = z.looseObject({
  ...collectionResponse,
  episodes: z.array(
    z.looseObject({
      opened_at: z.int().nonnegative(),
      updated_at: z.int().nonnegative(),
      closed_at: z.int().nonnegative().optional(),
    }),
  ),
});

/** The query parameters of paths/stream/streams.yml that the backup sends. */
export const STREAMS_LIST_QUERY = ["select", "limit", "cursor"] as const;

/**
 * spec: components/schemas/error_response.yml: `errors` (array of error.yml, nullable) and the
 * deprecated `error` string; error.yml: `status` (the HTTP status as a string), `code`, `title`,
 * `id`, `source` {pointer, parameter}, `meta`.
 */
export const errorResponse = z.looseObject({
  errors: z
    .array(
      z.looseObject({
        id: z.string().nullish(),
        status: z.string().optional(),
        code: z.string().optional(),
        title: z.string().nullish(),
        source: z.looseObject({ pointer: z.string().nullish(), parameter: z.string().nullish() }).nullish(),
      }),
    )
    .nullable(),
});

/**
 * Exports. spec: paths/playback/mp4-export.yml (`archive-{from}-{duration}.mp4`, 200 `video/mp4`)
 * and paths/playback/ts-export.yml (`.ts`, 200 `video/mpeg`): `from` integer utc seconds, `duration`
 * integer seconds or the string `now`, optional query `filter.tracks`. Only 200 is declared: what a
 * 404 means, Range, Content-Length and whether the MP4 is fragmented are not said.
 */
export const EXPORT_CONTENT_TYPES = { mp4: "video/mp4", ts: "video/mpeg" } as const;

/**
 * HLS DVR playlist. spec: paths/playback/hls-dvr.yml (`archive-{from}-{duration}.m3u8`): a VOD
 * playlist unless `duration` is `now` (EVENT up to now) or `?event=true` (EVENT while
 * `from + duration` is in the future); the answer is a multivariant (master) playlist.
 */
export const HLS_DVR = "paths/playback/hls-dvr.yml";
