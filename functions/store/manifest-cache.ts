/**
 * Manifests kept across planning runs in a long-lived process (the local service, a warm Lambda
 * container), with the ETag they were read or written with: the next read is a conditional GET
 * (If-None-Match), which S3 answers 304 without a body while nobody else wrote the manifest. The
 * planner is the only writer of manifests in the steady state (copiers write completion records),
 * so each run reads back what the previous one wrote: one request still, but no body to send,
 * receive and parse. A 304 is S3's word that the object's ETag is still the one held, so the copy
 * is the object's current content; anything else (200, 404) replaces or drops the entry.
 *
 * Cheaper still, a listing (ManifestListing): one ListObjectsV2 of a source's manifests folder gives
 * every manifest's ETag, 1,000 a page, so a run reads only the manifests whose listed ETag is not the
 * one held (another writer changed them) or that it does not hold, and none of those not listed. S3's
 * listings are strongly consistent (since December 2020), as MinIO's, R2's and Ceph's are; a stale
 * listing could only make a run plan on an older copy, and the manifest write that leases anything is
 * conditional on the ETag read (If-Match, If-None-Match for a manifest taken as absent), so such a run
 * loses the race and leases nothing, as a run that read before another's write does today.
 *
 * The covered ranges are held packed (a Float64Array is not traced by the garbage collector: as
 * objects, 10,000 manifests' ranges were most of the planner's heap), and every read gets objects
 * of its own, so no caller can change the cached copy.
 */
import type { Manifest } from "../domain/manifest.ts";

/**
 * A manifest as held: its ETag, the manifest without its covered ranges as JSON, and the covered
 * ranges packed (from, to pairs): a Float64Array of its own, or a view into the bytes of a snapshot
 * (whole seconds as 32 bits: no memory of its own outside the heap, which counts towards full
 * collections, for each of 10,000 manifests taken from it).
 */
export interface HeldManifest {
  etag: string;
  rest: string;
  covered: Float64Array | Uint32Array;
}
type Entry = HeldManifest;

/**
 * Bytes held at most (a manifest of 150 ranges is about 3 KB here: 10,000 streams take 30 MB),
 * beyond which the entries held longest go: the planner's Lambda has 256 MB.
 */
export const MANIFEST_CACHE_BYTES = 48 * 1024 * 1024;

export class ManifestCache {
  readonly #entries = new Map<string, Entry>();
  readonly #limit: number;
  #bytes = 0;

  constructor(limitBytes = MANIFEST_CACHE_BYTES) {
    this.#limit = limitBytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The ETag held for a key (to send as If-None-Match), if any. */
  etagOf(key: string): string | undefined {
    return this.#entries.get(key)?.etag;
  }

  /** The held manifest, as new objects (the caller may do with them what it likes). */
  manifestOf(key: string): Manifest | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    const covered: Manifest["covered"] = [];
    for (let i = 0; i < e.covered.length; i += 2)
      covered.push({ from: e.covered[i]!, to: e.covered[i + 1]! });
    return { ...(JSON.parse(e.rest) as Omit<Manifest, "covered">), covered };
  }

  /** Holds a manifest as stored under `etag` (read, or just written). No ETag: forgets the key. */
  remember(key: string, manifest: Manifest, etag: string | undefined): void {
    this.forget(key);
    const { covered, ...rest } = manifest;
    if (!etag || !Array.isArray(covered)) return;
    const packed = new Float64Array(covered.length * 2);
    for (let i = 0; i < covered.length; i++) {
      packed[2 * i] = covered[i]!.from;
      packed[2 * i + 1] = covered[i]!.to;
    }
    this.hold(key, { etag, rest: JSON.stringify(rest), covered: packed });
  }

  /**
   * Holds a manifest already packed (from a snapshot, manifest-snapshot.ts: the caller has checked
   * that `rest` is the JSON of a manifest of this key without its covered ranges).
   */
  hold(key: string, entry: HeldManifest): void {
    this.forget(key);
    this.#entries.set(key, entry);
    this.#bytes += sizeOf(key, entry);
    // A Map iterates in insertion order, and a key is re-inserted on every read that brought a body
    // and every write: the first key is the one held longest.
    while (this.#bytes > this.#limit && this.#entries.size > 1)
      this.forget(this.#entries.keys().next().value!);
  }

  /** The held manifests whose keys start with `folder` (a source's), as held (not to be changed). */
  *heldUnder(folder: string): Generator<[string, Readonly<HeldManifest>]> {
    for (const e of this.#entries) if (e[0].startsWith(folder)) yield e;
  }

  forget(key: string): void {
    const e = this.#entries.get(key);
    if (!e) return;
    this.#entries.delete(key);
    this.#bytes -= sizeOf(key, e);
  }
}

/**
 * A source's manifests as one listing showed them: manifest key -> the ETag listed (undefined when
 * the store lists objects without ETags: then that manifest is read, conditionally when held).
 */
export type ManifestListing = ReadonlyMap<string, string | undefined>;

/**
 * Whether two ETags name the same object version: S3 quotes them in headers and listings alike, but
 * S3-compatible stores differ (unquoted in listings, a weak `W/` prefix), so both are compared bare.
 */
export function sameEtag(a: string, b: string): boolean {
  return a === b || bareEtag(a) === bareEtag(b);
}

function bareEtag(etag: string): string {
  return etag.replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}

/** About what an entry takes (strings as one byte a character: keys and JSON are mostly ASCII). */
function sizeOf(key: string, e: Entry): number {
  return key.length + e.etag.length + e.rest.length + e.covered.byteLength + 64;
}
