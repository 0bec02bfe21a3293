/**
 * `flussonic-backup pause --source s [--reason text]` and `resume --source s`: the maintenance
 * switch of a source. It is an object in the bucket (`<prefix>.backup/control/<source>.json`), so
 * it acts on every runtime at once: the planner plans nothing for a paused source and sends it no
 * request; copiers put windows already queued back with a delay (or, on a FIFO queue, leave them
 * to be planned again after resume). Copiers notice a change within 30 s.
 */
import { openBackupTarget, sourceNamed, type TargetOptions } from "./backup-target.ts";

export interface PauseCommandOptions extends TargetOptions {
  source: string;
  reason?: string | undefined;
  /** Unix seconds (tests). */
  now?: number;
  out?: { write(s: string): unknown };
}

export async function pauseCommand(o: PauseCommandOptions, paused: boolean): Promise<number> {
  const out = o.out ?? process.stdout;
  const target = await openBackupTarget(o, { flussonic: false });
  try {
    const source = sourceNamed(target.config, o.source);
    const before = await target.store.readControl(source.name);
    if (paused) {
      await target.store.writeControl(source.name, {
        paused: true,
        reason: o.reason ?? "",
        at: o.now ?? Math.floor(Date.now() / 1000),
      });
      out.write(
        `Source ${source.name} paused${o.reason ? ` (${o.reason})` : ""}${before ? " (it was already paused)" : ""}: ` +
          "nothing is planned or copied until `flussonic-backup resume`.\n",
      );
    } else {
      await target.store.writeControl(source.name, undefined);
      out.write(
        before
          ? `Source ${source.name} resumed: the next planner run plans what is missing.\n`
          : `Source ${source.name} was not paused by the operator.\n`,
      );
      if (source.paused) {
        out.write(`Note: "paused": true in the configuration still keeps ${source.name} paused.\n`);
      }
    }
    return 0;
  } finally {
    await target.close();
  }
}
