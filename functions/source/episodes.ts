/**
 * Flussonic's episodes, read for holds (docs/evidence.md, "Holds from episodes"). Two places say
 * them, as the flussonic/openapi-demo specs give them:
 * - Central (`kind: "central"`): `GET /streamer/api/v3/episodes` (paths/central/episodes.yml,
 *   `episodes_list`), cursor pages of `{episode_id, media, opened_at, updated_at, closed_at}`
 *   (components/schemas/episodes/episode_base.yml; times in ms);
 * - an episodes URL (what a server's `episodes_url` points at; paths/config/external-episodes.yml,
 *   `external_episodes_list`): `GET <url>?name=<stream>`, `{episodes: [{opened_at, updated_at,
 *   closed_at}]}` (external_episode.yml: no id, no media), asked one stream at a time so that each
 *   episode's stream is known; an entry carrying `media` or `episode_id` anyway is read by them.
 */
import { z } from "zod";
import { forEachLimited } from "../shared/for-each-limited.ts";
import { API, type Endpoint, type FlussonicApi, MAX_PAGES, PAGE_LIMIT } from "./flussonic-api.ts";

/** One episode of one stream of the source, times in ms. */
export interface SourceEpisode {
  /** Central's `episode_id`; for an episodes URL, `<stream>@<opened_at>`. */
  id: string;
  /** The source's stream name (a central source's `<hostname>/<stream>`). */
  stream: string;
  openedAtMs: number;
  updatedAtMs: number;
  closedAtMs?: number;
}

const episodeShape = z.looseObject({
  episode_id: z.union([z.number(), z.string()]).nullish(),
  media: z.string().nullish(),
  opened_at: z.number(),
  updated_at: z.number(),
  closed_at: z.number().nullish(),
});
/** What the client reads of both answers (flussonic-contract.ts: episodesList, externalEpisodesList). */
export const episodeListShape = z.looseObject({
  episodes: z.array(episodeShape),
  next: z.string().nullish(),
});
type Episode = z.infer<typeof episodeShape>;

function toEpisode(e: Episode, stream: string): SourceEpisode {
  return {
    id:
      e.episode_id !== undefined && e.episode_id !== null ? String(e.episode_id) : `${stream}@${e.opened_at}`,
    stream,
    openedAtMs: e.opened_at,
    updatedAtMs: e.updated_at,
    ...(typeof e.closed_at === "number" ? { closedAtMs: e.closed_at } : {}),
  };
}

/** Streams asked of an episodes URL at once. */
const STREAMS_AT_ONCE = 4;

/** The episodes an episodes URL gives for `streams`, one request per stream. */
export async function urlEpisodes(
  http: FlussonicApi,
  ep: Endpoint,
  streams: readonly string[],
): Promise<SourceEpisode[]> {
  const out: SourceEpisode[] = [];
  await forEachLimited(streams, STREAMS_AT_ONCE, async (stream) => {
    const body = await http.getJson(
      ep,
      `?${new URLSearchParams({ name: stream })}`,
      episodeListShape,
      `episodes of stream "${stream}" (episodes URL)`,
      "api",
      "no episodes list at the configured episodes URL (episodes.url)",
    );
    for (const e of body.episodes) {
      // A Central behind the URL may name the stream itself; one asked for is the one meant.
      if (e.media && e.media !== stream) continue;
      out.push(toEpisode(e, stream));
    }
  });
  return out;
}

/**
 * Every episode Central lists (all pages), on the streams of `streams` it names: Central's `media`
 * is the stream's name on its server, so `cam1` is every `<hostname>/cam1` of the source.
 */
export async function centralEpisodes(
  http: FlussonicApi,
  ep: Endpoint,
  streams: readonly string[],
): Promise<SourceEpisode[]> {
  const byMedia = new Map<string, string[]>();
  for (const s of streams) {
    const media = s.slice(s.indexOf("/") + 1);
    byMedia.set(media, [...(byMedia.get(media) ?? []), s]);
  }
  const out: SourceEpisode[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const query = new URLSearchParams({ limit: String(PAGE_LIMIT), ...(cursor ? { cursor } : {}) });
    const body = await http.getJson(
      ep,
      `${API}/episodes?${query}`,
      episodeListShape,
      "episode list (Central)",
      "api",
      "Central answers no episode list at /streamer/api/v3/episodes (an older Central?): set episodes.url",
    );
    for (const e of body.episodes) {
      for (const stream of byMedia.get(e.media ?? "") ?? []) out.push(toEpisode(e, stream));
    }
    if (!body.next || body.episodes.length === 0) return out;
    cursor = body.next;
  }
  return out;
}
