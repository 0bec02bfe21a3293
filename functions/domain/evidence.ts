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
}

/** Every active hold of a source: one small object per source (`holdsKey`). */
export interface HoldBook {
  v: 1;
  source: string;
  holds: Hold[];
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
