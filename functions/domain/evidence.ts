/**
 * Evidence: holds (ranges kept past retention), signed exports and the per-day proof of what the
 * backup held. Pure: the shapes, their canonical bytes for signing, and the Merkle tree of a day's
 * windows. Signing and S3 live in ops/ and functions/store/.
 */
import { createHash } from "node:crypto";
import type { TimeRange } from "./ranges.ts";

/** A range of one stream kept past its retention until released. Times in unix seconds. */
export interface Hold {
  id: string;
  stream: string;
  from: number;
  to: number;
  reason: string;
  /** Who asked for it (`user@host`, or `episode` for a hold made from Flussonic's episodes). */
  by: string;
  createdAt: number;
  /** Whether each held window object has an S3 legal hold (a bucket with Object Lock). */
  legalHold: boolean;
  /** Where the hold came from when not from `hold`: a Flussonic episode (its id at the source). */
  origin?: { episode: string };
}

/** One episode as the source said it, times in ms (functions/source/episodes.ts). */
export interface EpisodeSeen {
  id: string;
  stream: string;
  openedAtMs: number;
  updatedAtMs: number;
  closedAtMs?: number;
}

/** The id of the hold an episode makes: the same every run, so an episode is held once. */
export function episodeHoldId(episodeId: string): string {
  return `episode-${episodeId.replace(/[^A-Za-z0-9._@-]/g, "_")}`;
}

/**
 * The range an episode holds (unix seconds): from its opening less the pre-roll to its close (or,
 * while open, its last update) plus the post-roll.
 */
export function episodeRange(e: EpisodeSeen, preRollSeconds: number, postRollSeconds: number): TimeRange {
  const end = Math.max(e.closedAtMs ?? e.updatedAtMs, e.updatedAtMs, e.openedAtMs);
  return {
    from: Math.floor(e.openedAtMs / 1000) - preRollSeconds,
    to: Math.ceil(end / 1000) + postRollSeconds,
  };
}

/** What the episodes change in a hold book: holds to add, and holds whose range grows. */
export interface EpisodeHoldChange {
  hold: Hold;
  /** The part of the range not held before (the whole range for a new hold). */
  added: TimeRange[];
  kind: "new" | "grown";
}

/**
 * The holds the episodes ask for, against the book: an episode not yet held becomes a hold; one
 * held whose range moved (an open episode updated or closed) grows to cover both the old and the
 * new range (a hold never shrinks by itself); one held as it is changes nothing. An episode no
 * longer listed (closed long ago, deleted at the source) is not looked at: its hold stays until
 * released.
 */
export function episodeHoldChanges(
  book: HoldBook,
  episodes: readonly EpisodeSeen[],
  o: { preRollSeconds: number; postRollSeconds: number; now: number; legalHold: boolean },
): EpisodeHoldChange[] {
  const byKey = new Map(book.holds.map((h) => [`${h.stream}\n${h.id}`, h]));
  const released = new Set((book.releasedEpisodes ?? []).map((r) => `${r.stream}\n${r.id}`));
  const out = new Map<string, EpisodeHoldChange>();
  for (const e of episodes) {
    const id = episodeHoldId(e.id);
    const key = `${e.stream}\n${id}`;
    if (released.has(key)) continue;
    const r = episodeRange(e, o.preRollSeconds, o.postRollSeconds);
    const before = out.get(key)?.hold ?? byKey.get(key);
    if (!before) {
      out.set(key, {
        kind: "new",
        added: [r],
        hold: {
          id,
          stream: e.stream,
          from: r.from,
          to: r.to,
          reason: `Flussonic episode ${e.id}`,
          by: "episode",
          createdAt: o.now,
          legalHold: o.legalHold,
          origin: { episode: e.id },
        },
      });
      continue;
    }
    const from = Math.min(before.from, r.from);
    const to = Math.max(before.to, r.to);
    if (from === before.from && to === before.to) continue;
    const added: TimeRange[] = [];
    if (from < before.from) added.push({ from, to: before.from });
    if (to > before.to) added.push({ from: before.to, to });
    const earlier = out.get(key);
    out.set(key, {
      kind: earlier?.kind ?? "grown",
      added: earlier ? [...earlier.added, ...added] : added,
      hold: { ...before, from, to },
    });
  }
  return [...out.values()];
}

/** The book with the changes applied (to a book read again: another writer may have added holds). */
export function applyEpisodeHolds(book: HoldBook, changes: readonly EpisodeHoldChange[]): HoldBook {
  const holds = [...book.holds];
  for (const c of changes) {
    const i = holds.findIndex((h) => h.stream === c.hold.stream && h.id === c.hold.id);
    if (i < 0) holds.push(c.hold);
    else
      holds[i] = {
        ...holds[i]!,
        from: Math.min(holds[i]!.from, c.hold.from),
        to: Math.max(holds[i]!.to, c.hold.to),
      };
  }
  return { ...book, holds };
}

/** Every active hold of a source: one small object per source (`holdsKey`). */
export interface HoldBook {
  v: 1;
  source: string;
  holds: Hold[];
  /** Episode holds released (`stream` and hold id): the episode is not held again while listed. */
  releasedEpisodes?: { stream: string; id: string }[];
}

export function emptyHoldBook(source: string): HoldBook {
  return { v: 1, source, holds: [] };
}

/** Holds of `stream` overlapping `[from, to)`. */
export function holdsOverlapping(book: HoldBook, stream: string, from: number, to: number): Hold[] {
  return book.holds.filter((h) => h.stream === stream && h.from < to && from < h.to);
}

/**
 * JSON with object keys sorted at every level and no spaces: the bytes a signature covers, the
 * same whoever wrote the file and however it was indented.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value))
    return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/** One window as a proof and an export name it: enough to find it and to check its bytes. */
export interface WindowEvidence {
  key: string;
  versionId?: string;
  from: number;
  duration: number;
  size: number;
  sha256: string;
}

/**
 * The Merkle leaf of a window (RFC 6962 style: 0x00 before a leaf, 0x01 before a node): its time,
 * size and SHA-256, not its key, so a held copy of a window proves the same leaf.
 */
export function leafHash(w: WindowEvidence): Buffer {
  const { from, duration, size, sha256 } = w;
  return createHash("sha256")
    .update(Buffer.from([0]))
    .update(canonicalJson({ from, duration, size, sha256 }))
    .digest();
}

function nodeHash(left: Buffer, right: Buffer): Buffer {
  return createHash("sha256")
    .update(Buffer.from([1]))
    .update(left)
    .update(right)
    .digest();
}

/** Root over the leaves in order; the hash of nothing for none. */
export function merkleRoot(leaves: readonly Buffer[]): Buffer {
  if (leaves.length === 0) return createHash("sha256").digest();
  let level = [...leaves];
  while (level.length > 1) {
    const next: Buffer[] = [];
    for (let i = 0; i < level.length; i += 2) {
      // An odd node at the end moves up as it is.
      next.push(i + 1 < level.length ? nodeHash(level[i]!, level[i + 1]!) : level[i]!);
    }
    level = next;
  }
  return level[0]!;
}

/** A step of an inclusion proof: the sibling's hash and on which side it is. */
export interface ProofStep {
  side: "left" | "right";
  hash: string;
}

/** The siblings from leaf `index` up to the root. */
export function inclusionProof(leaves: readonly Buffer[], index: number): ProofStep[] {
  const steps: ProofStep[] = [];
  let level = [...leaves];
  let i = index;
  while (level.length > 1) {
    const sibling = i % 2 === 0 ? i + 1 : i - 1;
    if (sibling < level.length) {
      steps.push({ side: i % 2 === 0 ? "right" : "left", hash: level[sibling]!.toString("hex") });
    }
    const next: Buffer[] = [];
    for (let j = 0; j < level.length; j += 2) {
      next.push(j + 1 < level.length ? nodeHash(level[j]!, level[j + 1]!) : level[j]!);
    }
    level = next;
    i = Math.floor(i / 2);
  }
  return steps;
}

/** Whether `leaf` with these steps leads to `root` (hex). */
export function verifyInclusion(leaf: Buffer, steps: readonly ProofStep[], root: string): boolean {
  let h = leaf;
  for (const s of steps) {
    const other = Buffer.from(s.hash, "hex");
    h = s.side === "right" ? nodeHash(h, other) : nodeHash(other, h);
  }
  return h.toString("hex") === root;
}

/** What a signature covers, and who made it. */
export interface Signature {
  alg: "Ed25519" | "ECDSA_SHA_256";
  /** First 16 hex digits of the SHA-256 of the public key (SPKI DER): which key to check with. */
  keyId: string;
  /** Base64. */
  value: string;
}

/** The statement of one stream's day: what the source recorded, what the backup stored. */
export interface DayProof {
  v: 1;
  kind: "flussonic-backup day proof";
  source: string;
  stream: string;
  day: string;
  /** Ranges the source reported as recorded that day; null when it could not be asked. */
  recorded: TimeRange[] | null;
  /** Ranges the stored windows hold that day. */
  stored: TimeRange[];
  /** Seconds the source recorded that the backup does not hold (null when recorded is unknown). */
  missed: TimeRange[] | null;
  windows: WindowEvidence[];
  /** Hex Merkle root of the windows' leaves, in the order listed. */
  root: string;
  /** Unix seconds. */
  at: number;
  signature?: Signature;
}

/** The signed statement beside an exported clip (`clip.mp4.evidence.json`). */
export interface ExportEvidence {
  v: 1;
  kind: "flussonic-backup export";
  source: string;
  stream: string;
  /** The requested range, unix seconds and ISO. */
  from: number;
  to: number;
  range: string;
  clip: { file: string; size: number; sha256: string; format: string };
  windows: (WindowEvidence & { copiedAt: number; copiedAtIso: string; sourceUrl: string; etag?: string })[];
  gaps: TimeRange[];
  exportedBy: string;
  exportedAt: number;
  exportedAtIso: string;
  signature?: Signature;
}

/**
 * The bytes a signature covers: a fixed label and the SHA-256 of the document's canonical JSON
 * without its signature. Short on purpose: an AWS KMS Ed25519 key signs raw messages of at most
 * 4096 bytes, and the same pure Ed25519 check then verifies a local key's and a KMS key's
 * signatures.
 */
export function signedBytes<T extends { signature?: Signature }>(doc: T): Buffer {
  const { signature: _, ...body } = doc;
  const digest = createHash("sha256").update(canonicalJson(body)).digest("hex");
  return Buffer.from(`flussonic-backup signature v1 sha256:${digest}`);
}
