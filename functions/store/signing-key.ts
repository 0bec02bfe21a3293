/**
 * Whether a key for day proofs is configured, without loading signing.ts and the KMS client it
 * needs: the planner asks on every run, and loads signing.ts only when a key is there (a run
 * without one keeps the AWS KMS client's modules, about 1.6 MiB, out of its memory).
 */
import { STACK_SIGNING_KEY_ENV } from "../config/limits.ts";

/** Whether a key for day proofs is configured (configuredSigner would give one), asking nothing. */
export function signingKeyConfigured(
  evidence: { kmsKey?: string | undefined; signingKeyEnv: string },
  env: NodeJS.ProcessEnv,
): boolean {
  return Boolean(evidence.kmsKey ?? env[STACK_SIGNING_KEY_ENV] ?? env[evidence.signingKeyEnv]);
}
