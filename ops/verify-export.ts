/**
 * `verify-export clip.mp4`: checks an exported clip with the public key alone. The evidence file's
 * signature, the clip's SHA-256 against it, and, given the bucket, that every window it names is
 * still there with the same bytes (and in its day's proof, when that day has one).
 */
import type { KeyObject } from "node:crypto";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { GetObjectCommand, S3ServiceException } from "@aws-sdk/client-s3";
import type { ExportEvidence } from "../functions/domain/evidence.ts";
import type { BackupStore } from "../functions/store/backup-store.ts";
import { evidenceFileOf, hashFile } from "./export.ts";
import { checkInProof } from "./prove.ts";
import { signatureProblem } from "./signing.ts";

export interface VerifyExportReport {
  ok: boolean;
  /** One line per check, "ok: ..." or "FAILED: ...". */
  lines: string[];
}

export async function verifyExport(o: {
  clip: string;
  publicKey: KeyObject;
  store?: BackupStore | undefined;
}): Promise<VerifyExportReport> {
  const lines: string[] = [];
  let ok = true;
  const pass = (s: string) => lines.push(`ok: ${s}`);
  const fail = (s: string) => {
    ok = false;
    lines.push(`FAILED: ${s}`);
  };
  const file = evidenceFileOf(o.clip);
  const name = basename(file);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    fail(`${name}: no evidence file beside the clip (export writes it as <clip>.evidence.json)`);
    return { ok, lines };
  }
  let evidence: ExportEvidence;
  try {
    evidence = JSON.parse(text) as ExportEvidence;
  } catch {
    fail(`${name} is not JSON: it was edited or damaged after the export`);
    return { ok, lines };
  }
  const problem = signatureProblem(evidence, o.publicKey);
  if (problem) {
    fail(`${name}: ${problem}`);
    return { ok, lines };
  }
  pass(`${name}: signed by key ${evidence.signature?.keyId}, the public key given`);
  const clip = await hashFile(o.clip).catch(() => undefined);
  if (!clip) fail(`${basename(o.clip)}: cannot read the clip`);
  else if (clip.sha256 !== evidence.clip.sha256 || clip.size !== evidence.clip.size) {
    fail(
      `${basename(o.clip)}: its SHA-256 (${clip.sha256}, ${clip.size} bytes) is not the exported clip's (${evidence.clip.sha256}, ${evidence.clip.size} bytes): the clip was changed after the export`,
    );
  } else pass(`${basename(o.clip)}: SHA-256 ${clip.sha256} as signed`);
  if (!o.store) {
    lines.push("note: the bucket was not checked (give -c/--embedded to check the windows are still stored)");
    return { ok, lines };
  }
  for (const w of evidence.windows) {
    const now = await hashObject(o.store, w.key, w.versionId);
    if (!now) fail(`${w.key}${w.versionId ? ` (version ${w.versionId})` : ""}: no longer in the bucket`);
    else if (now !== w.sha256)
      fail(`${w.key}: its bytes changed since the export (SHA-256 ${now}, signed ${w.sha256})`);
    else pass(`${w.key}: still stored, unchanged`);
  }
  for (const line of await checkInProof(o.store, evidence, o.publicKey)) {
    if (line.startsWith("FAILED: ")) ok = false;
    lines.push(line);
  }
  return { ok, lines };
}

async function hashObject(
  store: BackupStore,
  key: string,
  versionId: string | undefined,
): Promise<string | undefined> {
  try {
    const res = await store.s3.send(
      new GetObjectCommand({
        Bucket: store.bucket,
        Key: key,
        ...(versionId ? { VersionId: versionId } : {}),
      }),
    );
    const hash = createHash("sha256");
    for await (const chunk of res.Body as AsyncIterable<Uint8Array>) hash.update(chunk);
    return hash.digest("hex");
  } catch (error) {
    if (error instanceof S3ServiceException && [404, 400].includes(error.$metadata.httpStatusCode ?? 0))
      return undefined;
    throw error;
  }
}
