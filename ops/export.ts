/**
 * `export`: a range of one stream as a clip (restore's joining, ops/restore.ts) and, beside it,
 * `<clip>.evidence.json`: what the clip was made of (each window's key, version, SHA-256, copy time
 * and source URL without secrets), the gaps inside the range, the clip's SHA-256, who exported it
 * and when, signed with the export key. `verify-export` checks it with the public key alone.
 */
import { createHash } from "node:crypto";
import { createReadStream, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import type { BackupConfig } from "../functions/config/config.ts";
import type { ExportEvidence } from "../functions/domain/evidence.ts";
import { streamPath } from "../functions/source/flussonic.ts";
import type { BackupStore } from "../functions/store/backup-store.ts";
import { appendAudit } from "./audit.ts";
import { type RestoreResult, restoreRange } from "./restore.ts";
import type { Signer } from "./signing.ts";

export interface ExportOptions {
  store: BackupStore;
  config: BackupConfig;
  source: string;
  stream: string;
  from: number;
  to: number;
  out: string;
  allowGaps: boolean;
  signer: Signer;
  by: string;
  now: number;
  onWindow?: (done: number, total: number, bytes: number) => void;
}

export interface ExportResult {
  restore: RestoreResult;
  evidenceFile: string;
  evidence: ExportEvidence;
}

/** The evidence file of a clip. */
export function evidenceFileOf(clip: string): string {
  return `${clip}.evidence.json`;
}

export async function exportClip(o: ExportOptions): Promise<ExportResult> {
  const restore = await restoreRange({
    store: o.store,
    source: o.source,
    stream: o.stream,
    from: o.from,
    to: o.to,
    out: o.out,
    allowGaps: o.allowGaps,
    ...(o.onWindow ? { onWindow: o.onWindow } : {}),
  });
  const evidenceFile = evidenceFileOf(o.out);
  try {
    const clip = await hashFile(o.out);
    const source = o.config.sources.find((s) => s.name === o.source);
    const iso = (t: number) => new Date(t * 1000).toISOString().replace(".000Z", "Z");
    const evidence = await o.signer.sign<ExportEvidence>({
      v: 1,
      kind: "flussonic-backup export",
      source: o.source,
      stream: o.stream,
      from: o.from,
      to: o.to,
      range: `${iso(o.from)}/${iso(o.to)}`,
      clip: { file: basename(o.out), size: clip.size, sha256: clip.sha256, format: restore.format },
      windows: restore.used.map((w) => ({
        key: w.key,
        ...(w.versionId ? { versionId: w.versionId } : {}),
        ...(w.etag ? { etag: w.etag } : {}),
        from: w.from,
        duration: w.duration,
        size: w.size,
        sha256: w.sha256,
        copiedAt: w.copiedAt,
        copiedAtIso: iso(w.copiedAt),
        sourceUrl: source ? archiveUrlWithoutSecrets(source.archiveUrl ?? source.url, o.stream, w) : "",
      })),
      gaps: restore.holes,
      exportedBy: o.by,
      exportedAt: o.now,
      exportedAtIso: iso(o.now),
    });
    // The audit record first: a clip no record names is never handed out.
    await appendAudit(o.store, {
      action: "export",
      at: o.now,
      by: o.by,
      source: o.source,
      stream: o.stream,
      from: o.from,
      to: o.to,
      detail: { clip: basename(o.out), sha256: clip.sha256, windows: restore.windows, keyId: o.signer.keyId },
    });
    writeFileSync(`${evidenceFile}.partial`, `${JSON.stringify(evidence, null, 2)}\n`);
    renameSync(`${evidenceFile}.partial`, evidenceFile);
    return { restore, evidenceFile, evidence };
  } catch (error) {
    rmSync(o.out, { force: true });
    rmSync(`${evidenceFile}.partial`, { force: true });
    throw error;
  }
}

/** Size and SHA-256 of a file, streamed. */
export async function hashFile(file: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha256: hash.digest("hex") };
}

/** The window's export URL at the source, without user, password or query (a play token). */
function archiveUrlWithoutSecrets(
  base: string,
  stream: string,
  w: { from: number; duration: number; key: string },
): string {
  const u = new URL(base);
  u.username = "";
  u.password = "";
  u.search = "";
  u.hash = "";
  const format = w.key.endsWith(".ts") ? "ts" : "mp4";
  return `${u.toString().replace(/\/$/, "")}/${streamPath(stream)}/archive-${w.from}-${w.duration}.${format}`;
}
