/**
 * Signing keys of exports and day proofs, as the operator commands use them: the signers live in
 * functions/store/signing.ts (the planner signs day proofs too); the choice of key for a command
 * (`--key`, `--kms-key`, the config) is here.
 */
import type { BackupConfig } from "../functions/config/config.ts";
import { KeyError, kmsClient, kmsSigner, loadSigner, type Signer } from "../functions/store/signing.ts";

export {
  initKey,
  KeyError,
  keyIdOf,
  kmsClient,
  kmsPublicKey,
  kmsSigner,
  loadPublicKey,
  loadSigner,
  type Signer,
  signatureProblem,
  writeKmsPublicKey,
} from "../functions/store/signing.ts";

/**
 * The signer a command uses: `--key <file>`, else `--kms-key <arn|alias>`, else the KMS key of
 * `evidence.kmsKey`, else the PEM in the variable `evidence.signingKeyEnv` names.
 */
export async function chooseSigner(o: {
  keyFile?: string | undefined;
  kmsKey?: string | undefined;
  config: BackupConfig;
  env: NodeJS.ProcessEnv;
}): Promise<Signer> {
  if (o.keyFile && o.kmsKey) throw new KeyError("--key and --kms-key: give one of them");
  const kmsKey = o.keyFile ? undefined : (o.kmsKey ?? o.config.evidence.kmsKey);
  if (kmsKey === undefined)
    return loadSigner({ keyFile: o.keyFile, envName: o.config.evidence.signingKeyEnv, env: o.env });
  const kms = kmsClient(o.env);
  try {
    return await kmsSigner(kms, kmsKey);
  } catch (error) {
    kms.destroy();
    throw error;
  }
}
