/**
 * `flussonic-backup rebuild --source S [--stream N]`: manifests, catalogs and the fragment index of
 * a source rebuilt from its stored window objects (ops/rebuild.ts), read from S3, never from the
 * source. Resumable: what already describes its object is kept. Exit status 1 when a stored window
 * is not whole media.
 */

import { appendAudit, operatorName } from "../../ops/audit.ts";
import { formatBytes } from "../../ops/progress.ts";
import { rebuildBackup } from "../../ops/rebuild.ts";
import { openBackupTarget, sourceNamed, type TargetOptions } from "./backup-target.ts";

export interface RebuildCommandOptions extends TargetOptions {
  source: string;
  stream?: string | undefined;
  /** Who rebuilds, for the audit trail (default user@host). */
  by?: string | undefined;
  out?: { write(s: string): unknown };
  /** Progress lines (default stderr). */
  progress?: { write(s: string): unknown };
}

export async function rebuildCommand(o: RebuildCommandOptions): Promise<number> {
  const out = o.out ?? process.stdout;
  const progress = o.progress ?? process.stderr;
  const target = await openBackupTarget(o, { flussonic: false });
  try {
    sourceNamed(target.config, o.source);
    let last = 0;
    const report = await rebuildBackup({
      config: target.config,
      store: target.store,
      source: o.source,
      stream: o.stream,
      onProgress: (p) => {
        const now = performance.now();
        if (now - last < 2000 && p.hashed !== p.total) return;
        last = now;
        progress.write(
          `rebuild: ${o.source} ${p.stream} ${p.day}: ${p.hashed}/${p.total} window(s) hashed\n`,
        );
      },
    });
    await appendAudit(target.store, {
      action: "rebuild",
      at: Math.floor(Date.now() / 1000),
      by: o.by ?? operatorName(),
      source: o.source,
      ...(o.stream !== undefined ? { stream: o.stream } : {}),
      detail: {
        streams: report.streams.length,
        catalogsWritten: report.streams.reduce((n, s) => n + s.catalogsWritten, 0),
        problems: report.problems.length,
      },
    });
    for (const s of report.streams) {
      out.write(
        `${report.source} ${s.stream}: ${s.stored} stored window(s): ${s.kept} catalogued already, ${s.fromRecords} from pending records, ` +
          `${s.hashed} read back and hashed (${formatBytes(s.bytesHashed)}), ${s.dropped} catalog entr(ies) of missing objects dropped; ` +
          `${s.catalogsWritten} catalog(s) written, manifest ${s.manifestWritten ? "rebuilt" : "unchanged"}, ${s.indexed} index entr(ies) written.\n`,
      );
      if (s.noLongerStoredSeconds > 0) {
        out.write(
          `  ${report.source} ${s.stream}: ${s.noLongerStoredSeconds} s no longer stored; the next run copies them if the source still has them.\n`,
        );
      }
    }
    if (report.streams.length === 0)
      out.write(`No stored window of source ${report.source} found: nothing to rebuild.\n`);
    for (const p of report.problems)
      out.write(`  ${p.kind.toUpperCase()} ${p.stream} ${p.key}: ${p.detail}\n`);
    return report.problems.some((p) => p.kind === "incomplete") ? 1 : 0;
  } finally {
    await target.close();
  }
}
