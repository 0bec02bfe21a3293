/**
 * `prove`: once per stream and UTC day, a signed statement of what the backup held that day: the
 * Merkle root of the day's stored windows (their start, length, size and SHA-256), the ranges the
 * source reported as recorded, the ranges stored, and the recorded seconds the backup missed.
 * Kept write-once under `.backup/proofs/{source}/{stream}/{day}.json`. Checking it later shows a
 * window deleted or changed since; "the source recorded nothing" (not in `recorded`) stays apart
 * from "the backup missed it" (in `missed`).
 */
import { createHash, type KeyObject } from "node:crypto";
import { GetObjectCommand, S3ServiceException } from "@aws-sdk/client-s3";
import {
  type DayProof,
  type ExportEvidence,
  inclusionProof,
  leafHash,
  merkleRoot,
  type ProofStep,
  verifyInclusion,
  type WindowEvidence,
} from "../functions/domain/evidence.ts";
import { utcDate } from "../functions/domain/keys.ts";
import type { BackupStore } from "../functions/store/backup-store.ts";
import { readProof } from "../functions/store/proofs.ts";
import { signatureProblem } from "./signing.ts";

export { proveDay, readProof } from "../functions/store/proofs.ts";

/** The inclusion proof of the window starting at `from` (the longest, if several). */
export function windowInclusion(
  proof: DayProof,
  from: number,
): { window: WindowEvidence; steps: ProofStep[] } | undefined {
  const leaves = proof.windows.map(leafHash);
  let index = -1;
  proof.windows.forEach((w, i) => {
    if (w.from <= from && from < w.from + w.duration) index = i;
  });
  if (index < 0) return undefined;
  return { window: proof.windows[index]!, steps: inclusionProof(leaves, index) };
}

/**
 * Checks a day's proof against the bucket now: the root matches the windows it lists, and every
 * window is still stored with the same bytes. Lines "ok: ..." or "FAILED: ...".
 */
export async function checkProof(
  store: BackupStore,
  proof: DayProof,
  publicKey: KeyObject | undefined,
): Promise<string[]> {
  const lines: string[] = [];
  const what = `proof of ${proof.source} "${proof.stream}" ${proof.day}`;
  if (publicKey) {
    const problem = signatureProblem(proof, publicKey);
    lines.push(problem ? `FAILED: ${what}: ${problem}` : `ok: ${what}: signature`);
  }
  if (merkleRoot(proof.windows.map(leafHash)).toString("hex") !== proof.root) {
    lines.push(`FAILED: ${what}: its window list does not give its root (edited)`);
  }
  for (const w of proof.windows) {
    const now = await objectSha256(store, w.key);
    if (now === undefined) lines.push(`FAILED: ${w.key}: in the ${what} but no longer stored`);
    else if (now !== w.sha256)
      lines.push(`FAILED: ${w.key}: changed since the ${what} (SHA-256 ${now}, proven ${w.sha256})`);
  }
  if (!lines.some((l) => l.startsWith("FAILED"))) {
    lines.push(`ok: ${what}: all ${proof.windows.length} window(s) still stored, unchanged`);
  }
  return lines;
}

/** For verify-export: each window of the clip is in its day's proof, when the day has one. */
export async function checkInProof(
  store: BackupStore,
  evidence: ExportEvidence,
  publicKey: KeyObject,
): Promise<string[]> {
  const lines: string[] = [];
  const days = [...new Set(evidence.windows.map((w) => utcDate(w.from)))];
  for (const day of days) {
    const proof = await readProof(store, evidence.source, evidence.stream, day);
    if (!proof) {
      lines.push(`note: no proof of ${day} yet (\`prove\` makes one)`);
      continue;
    }
    const problem = signatureProblem(proof, publicKey);
    if (problem) {
      lines.push(`FAILED: the proof of ${day}: ${problem}`);
      continue;
    }
    const leaves = proof.windows.map(leafHash);
    for (const w of evidence.windows.filter((x) => utcDate(x.from) === day)) {
      const leaf = leafHash(w);
      const index = leaves.findIndex((l) => l.equals(leaf));
      if (index < 0 || !verifyInclusion(leaf, inclusionProof(leaves, index), proof.root)) {
        lines.push(`FAILED: window ${w.from}-${w.duration}s is not in the signed proof of ${day}`);
      } else lines.push(`ok: window ${w.from}-${w.duration}s is in the signed proof of ${day}`);
    }
  }
  return lines;
}

async function objectSha256(store: BackupStore, key: string): Promise<string | undefined> {
  try {
    const res = await store.s3.send(new GetObjectCommand({ Bucket: store.bucket, Key: key }));
    const hash = createHash("sha256");
    for await (const chunk of res.Body as AsyncIterable<Uint8Array>) hash.update(chunk);
    return hash.digest("hex");
  } catch (error) {
    if (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404) return undefined;
    throw error;
  }
}
