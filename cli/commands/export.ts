/**
 * `flussonic-backup export` (a clip and its signed evidence, ops/export.ts), `export-key init` (an
 * Ed25519 key pair for it) and `verify-export` (the check anyone can run with the public key).
 */
import { resolve } from "node:path";
import { Mp4JoinError } from "../../functions/domain/mp4-join.ts";
import { operatorName } from "../../ops/audit.ts";
import { exportClip } from "../../ops/export.ts";
import { formatBytes } from "../../ops/progress.ts";
import { RestoreError } from "../../ops/restore.ts";
import {
  chooseSigner,
  initKey,
  KeyError,
  kmsClient,
  loadPublicKey,
  type Signer,
  writeKmsPublicKey,
} from "../../ops/signing.ts";
import { verifyExport } from "../../ops/verify-export.ts";
import { openBackupTarget, sourceNamed, type TargetOptions } from "./backup-target.ts";
import { isoTime, parseTimeRange, UsageError } from "./time-arg.ts";

interface Out {
  write(s: string): unknown;
}

export interface ExportCommandOptions extends TargetOptions {
  source: string;
  stream: string;
  from: string;
  to: string;
  out: string;
  allowGaps?: boolean | undefined;
  key?: string | undefined;
  kmsKey?: string | undefined;
  by?: string | undefined;
  env?: NodeJS.ProcessEnv;
  now?: () => number;
  stdout?: Out;
  stderr?: Out;
}

export async function exportCommand(o: ExportCommandOptions): Promise<number> {
  const stdout = o.stdout ?? process.stdout;
  const stderr = o.stderr ?? process.stderr;
  const { from, to } = parseTimeRange(o.from, o.to);
  const target = await openBackupTarget(o, { flussonic: false });
  let closeSigner = () => {};
  try {
    sourceNamed(target.config, o.source);
    let signer: Signer;
    try {
      signer = await chooseSigner({
        keyFile: o.key,
        kmsKey: o.kmsKey,
        config: target.config,
        env: o.env ?? process.env,
      });
    } catch (error) {
      if (error instanceof KeyError) throw new UsageError(`export: ${error.message}`);
      throw error;
    }
    closeSigner = () => signer.close?.();
    const r = await exportClip({
      store: target.store,
      config: target.config,
      source: o.source,
      stream: o.stream,
      from,
      to,
      out: o.out,
      allowGaps: Boolean(o.allowGaps),
      signer,
      by: o.by ?? operatorName(),
      now: (o.now ?? (() => Math.floor(Date.now() / 1000)))(),
    });
    stdout.write(
      `Exported ${o.source} "${o.stream}" ${isoTime(from)} – ${isoTime(to)} into ${o.out} (${r.restore.format}, ${formatBytes(r.restore.bytesWritten)}, ${r.restore.windows} window(s), SHA-256 ${r.evidence.clip.sha256}).\n` +
        `Evidence signed with key ${signer.keyId}: ${r.evidenceFile}${r.restore.holes.length > 0 ? ` (${r.restore.holes.length} gap(s) listed)` : ""}; check it with \`flussonic-backup verify-export ${o.out} --public-key <public key>\`.\n`,
    );
    return 0;
  } catch (error) {
    if (error instanceof RestoreError || error instanceof Mp4JoinError) {
      stderr.write(`export refused: ${error.message}\n`);
      return 1;
    }
    throw error;
  } finally {
    closeSigner();
    await target.close();
  }
}

/** `export-key public --kms-key <arn|alias> --out key.pub.pem`: the PEM of a KMS key's public key. */
export async function exportKeyPublicCommand(o: {
  kmsKey?: string | undefined;
  out: string;
  env?: NodeJS.ProcessEnv;
  stdout?: Out;
}): Promise<number> {
  const stdout = o.stdout ?? process.stdout;
  if (!o.kmsKey) throw new UsageError("export-key public: --kms-key <arn|alias> is required");
  const kms = kmsClient(o.env ?? process.env);
  try {
    const { keyId } = await writeKmsPublicKey(kms, o.kmsKey, resolve(o.out));
    stdout.write(
      `Wrote the public key of KMS key ${o.kmsKey} to ${resolve(o.out)} (key ${keyId}): give it to whoever checks exports (\`verify-export --public-key\`).\n`,
    );
    return 0;
  } catch (error) {
    if (error instanceof KeyError) throw new UsageError(`export-key public: ${error.message}`);
    throw error;
  } finally {
    kms.destroy();
  }
}

export function exportKeyInitCommand(o: { out: string; stdout?: Out }): number {
  const stdout = o.stdout ?? process.stdout;
  const file = resolve(o.out);
  const publicFile = file.replace(/(\.pem)?$/, ".pub.pem");
  try {
    const { keyId } = initKey(file, publicFile);
    stdout.write(
      `Wrote the export signing key ${file} (private: keep it secret, mode 0600) and its public key ${publicFile} (key ${keyId}): give the public key to whoever checks exports.\n`,
    );
    return 0;
  } catch (error) {
    if (error instanceof KeyError) throw new UsageError(`export-key init: ${error.message}`);
    throw error;
  }
}

export interface VerifyExportCommandOptions extends TargetOptions {
  clip: string;
  publicKey?: string | undefined;
  stdout?: Out;
}

export async function verifyExportCommand(o: VerifyExportCommandOptions): Promise<number> {
  const stdout = o.stdout ?? process.stdout;
  if (!o.publicKey)
    throw new UsageError("--public-key <file> is required (the PEM `export-key init` wrote beside the key)");
  let publicKey: ReturnType<typeof loadPublicKey>;
  try {
    publicKey = loadPublicKey(o.publicKey);
  } catch (error) {
    if (error instanceof KeyError) throw new UsageError(`verify-export: ${error.message}`);
    throw error;
  }
  const withBucket = Boolean(o.config || o.demo || o.embedded);
  const target = withBucket ? await openBackupTarget(o, { flussonic: false }) : undefined;
  try {
    const report = await verifyExport({ clip: o.clip, publicKey, store: target?.store });
    for (const line of report.lines) stdout.write(`${line}\n`);
    stdout.write(report.ok ? `${o.clip}: verified.\n` : `${o.clip}: NOT verified.\n`);
    return report.ok ? 0 : 1;
  } finally {
    await target?.close();
  }
}
