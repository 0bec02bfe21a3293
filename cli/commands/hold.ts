/**
 * `flussonic-backup hold`, `release` and `holds`: keep a range of one stream past its retention
 * (ops/hold.ts), let it go, and list what is held.
 */
import type { Hold } from "../../functions/domain/evidence.ts";
import { readHoldBook } from "../../functions/store/holds.ts";
import { operatorName } from "../../ops/audit.ts";
import { HoldError, holdRange, releaseHold } from "../../ops/hold.ts";
import { formatDuration } from "../../ops/progress.ts";
import { openBackupTarget, sourceNamed, type TargetOptions } from "./backup-target.ts";
import { isoTime, parseTimeRange, UsageError } from "./time-arg.ts";

interface Out {
  write(s: string): unknown;
}

export interface HoldCommandOptions extends TargetOptions {
  source: string;
  stream?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  reason?: string | undefined;
  id?: string | undefined;
  by?: string | undefined;
  json?: boolean | undefined;
  now?: () => number;
  stdout?: Out;
  stderr?: Out;
}

function range(o: HoldCommandOptions): { from: number; to: number } {
  if (o.from === undefined || o.to === undefined) throw new UsageError("--from and --to are required");
  const { from, to } = parseTimeRange(o.from, o.to);
  return { from, to };
}

export async function holdCommand(o: HoldCommandOptions): Promise<number> {
  const stdout = o.stdout ?? process.stdout;
  const stderr = o.stderr ?? process.stderr;
  if (!o.stream) throw new UsageError("--stream is required");
  if (!o.reason?.trim())
    throw new UsageError('--reason is required: say why the range is held (e.g. --reason "case 2026-114")');
  const { from, to } = range(o);
  const target = await openBackupTarget(o, { flussonic: false });
  try {
    sourceNamed(target.config, o.source);
    const r = await holdRange({
      store: target.store,
      config: target.config,
      source: o.source,
      stream: o.stream,
      from,
      to,
      reason: o.reason.trim(),
      by: o.by ?? operatorName(),
      now: (o.now ?? (() => Math.floor(Date.now() / 1000)))(),
    });
    stdout.write(
      `Held ${o.source} "${o.stream}" ${isoTime(from)} – ${isoTime(to)}: hold ${r.hold.id}, ${r.windows} window(s) kept past retention ` +
        `(${r.hold.legalHold ? "each with an S3 legal hold" : "held copies, no Object Lock on the bucket"}); release it with \`release --source ${o.source} --id ${r.hold.id}\`.\n`,
    );
    if (r.missing.length > 0) {
      stdout.write(
        `The backup does not hold ${r.missing.reduce((n, m) => n + m.to - m.from, 0)} s of the range (windows stored there later are held as they arrive):\n`,
      );
      for (const m of r.missing)
        stdout.write(`  missing ${isoTime(m.from)} – ${isoTime(m.to)} (${formatDuration(m.to - m.from)})\n`);
    }
    return 0;
  } catch (error) {
    if (error instanceof HoldError) {
      stderr.write(`hold refused: ${error.message}\n`);
      return error.usage ? 2 : 1;
    }
    throw error;
  } finally {
    await target.close();
  }
}

export async function releaseCommand(o: HoldCommandOptions): Promise<number> {
  const stdout = o.stdout ?? process.stdout;
  const stderr = o.stderr ?? process.stderr;
  let span: { from: number; to: number } | undefined;
  if (o.id === undefined) {
    if (!o.stream)
      throw new UsageError("give --id <hold id>, or --stream, --from and --to as the hold was made");
    span = range(o);
  } else if (o.stream || o.from || o.to) {
    throw new UsageError("give --id or --stream/--from/--to, not both");
  }
  const target = await openBackupTarget(o, { flussonic: false });
  try {
    sourceNamed(target.config, o.source);
    const r = await releaseHold({
      store: target.store,
      source: o.source,
      id: o.id,
      stream: o.stream,
      from: span?.from,
      to: span?.to,
      by: o.by ?? operatorName(),
      now: (o.now ?? (() => Math.floor(Date.now() / 1000)))(),
    });
    for (const h of r.released) {
      stdout.write(
        `Released hold ${h.id}: ${o.source} "${h.stream}" ${isoTime(h.from)} – ${isoTime(h.to)} (${h.reason}).\n`,
      );
    }
    stdout.write(
      `${r.removed} held cop(ies) removed; windows still inside their stream's retention stay stored, older ones are gone.\n`,
    );
    return 0;
  } catch (error) {
    if (error instanceof HoldError) {
      stderr.write(`release refused: ${error.message}\n`);
      return 1;
    }
    throw error;
  } finally {
    await target.close();
  }
}

export async function holdsCommand(
  o: Omit<HoldCommandOptions, "source"> & { source?: string | undefined },
): Promise<number> {
  const stdout = o.stdout ?? process.stdout;
  const target = await openBackupTarget(o, { flussonic: false });
  try {
    const sources = o.source
      ? [sourceNamed(target.config, o.source).name]
      : target.config.sources.map((s) => s.name);
    const all: (Hold & { source: string })[] = [];
    for (const source of sources) {
      const { book } = await readHoldBook(target.store, source);
      for (const h of book.holds) if (!o.stream || h.stream === o.stream) all.push({ ...h, source });
    }
    if (o.json) stdout.write(`${JSON.stringify(all, null, 2)}\n`);
    else if (all.length === 0) stdout.write("No holds.\n");
    else for (const h of all) stdout.write(`${holdLine(h)}\n`);
    return 0;
  } finally {
    await target.close();
  }
}

/** One line per hold, for `holds` and `status`. */
export function holdLine(h: Hold & { source: string }): string {
  return `hold ${h.id} ${h.source} "${h.stream}" ${isoTime(h.from)} – ${isoTime(h.to)} (${formatDuration(h.to - h.from)}) by ${h.by} at ${isoTime(h.createdAt)}${h.legalHold ? ", legal hold" : ""}: ${h.reason}`;
}
