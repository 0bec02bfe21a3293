/**
 * `flussonic-backup prove --source S --stream X --day D [--window T] [--check]`: the day's signed
 * statement of what the backup held (ops/prove.ts), made once and kept; with `--window`, the
 * inclusion proof of the window holding that time; with `--check`, the stored windows compared
 * with it now (exit 1 when one is gone or changed).
 */
import { utcDate } from "../../functions/domain/keys.ts";
import { checkProof, proveDay, readProof, windowInclusion } from "../../ops/prove.ts";
import { chooseSigner, KeyError, loadPublicKey, type Signer } from "../../ops/signing.ts";
import { openBackupTarget, sourceNamed, type TargetOptions } from "./backup-target.ts";
import { isoTime, parseTimeArg, UsageError } from "./time-arg.ts";

export interface ProveCommandOptions extends TargetOptions {
  source: string;
  stream: string;
  day: string;
  window?: string | undefined;
  check?: boolean | undefined;
  key?: string | undefined;
  kmsKey?: string | undefined;
  publicKey?: string | undefined;
  json?: boolean | undefined;
  env?: NodeJS.ProcessEnv;
  now?: () => number;
  stdout?: { write(s: string): unknown };
}

export async function proveCommand(o: ProveCommandOptions): Promise<number> {
  const stdout = o.stdout ?? process.stdout;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(o.day) || Number.isNaN(Date.parse(`${o.day}T00:00:00Z`))) {
    throw new UsageError(`--day: expected a UTC date like 2026-11-25, got "${o.day}"`);
  }
  const now = (o.now ?? (() => Math.floor(Date.now() / 1000)))();
  const dayEnd = Date.parse(`${o.day}T00:00:00Z`) / 1000 + 86400;
  const windowAt = o.window === undefined ? undefined : parseTimeArg("--window", o.window);
  if (windowAt !== undefined && utcDate(windowAt) !== o.day) {
    throw new UsageError(`--window ${isoTime(windowAt)} is not on --day ${o.day}`);
  }
  const target = await openBackupTarget(o, { flussonic: !o.check });
  let closeSigner = () => {};
  try {
    const source = sourceNamed(target.config, o.source);
    let proof = await readProof(target.store, o.source, o.stream, o.day);
    if (!proof) {
      if (o.check) {
        stdout.write(
          `No proof of ${o.source} "${o.stream}" ${o.day} to check (\`prove\` without --check makes one).\n`,
        );
        return 1;
      }
      if (dayEnd + target.config.settleSeconds > now) {
        throw new UsageError(
          `--day ${o.day} is not over yet: a day's proof is made once the day has ended (after ${isoTime(dayEnd + target.config.settleSeconds)})`,
        );
      }
      const { manifest, etag } = await target.store.readManifest(o.source, o.stream);
      if (etag === undefined)
        throw new UsageError(`--stream: the backup has no stream "${o.stream}" of source ${o.source}`);
      void manifest;
      let signer: Signer;
      try {
        signer = await chooseSigner({
          keyFile: o.key,
          kmsKey: o.kmsKey,
          config: target.config,
          env: o.env ?? process.env,
        });
      } catch (error) {
        if (error instanceof KeyError) throw new UsageError(`prove: ${error.message}`);
        throw error;
      }
      closeSigner = () => signer.close?.();
      const dayFrom = dayEnd - 86400;
      const recorded = await target
        .flussonic(source.name)
        .recordedRanges(o.stream, { from: dayFrom, to: dayEnd })
        .catch(() => null);
      proof = (
        await proveDay({
          store: target.store,
          source: o.source,
          stream: o.stream,
          day: o.day,
          recorded,
          signer,
          now,
        })
      ).proof;
    }
    if (o.check) {
      const publicKey = o.publicKey ? loadPublicKey(o.publicKey) : undefined;
      const lines = await checkProof(target.store, proof, publicKey);
      for (const l of lines) stdout.write(`${l}\n`);
      return lines.some((l) => l.startsWith("FAILED")) ? 1 : 0;
    }
    if (windowAt !== undefined) {
      const inc = windowInclusion(proof, windowAt);
      if (!inc) {
        stdout.write(`No window of the proof of ${o.day} holds ${isoTime(windowAt)}.\n`);
        return 1;
      }
      stdout.write(
        `${JSON.stringify({ root: proof.root, window: inc.window, proof: inc.steps }, null, 2)}\n`,
      );
      return 0;
    }
    stdout.write(`${JSON.stringify(proof, null, 2)}\n`);
    return 0;
  } finally {
    closeSigner();
    await target.close();
  }
}
