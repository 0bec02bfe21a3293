/**
 * Numbers the copier's Lambda handler and the CDK stack must agree on, in one place: the stack sets
 * the function timeout and the queues' visibility timeout and redrive from them.
 */

/** The copier's Lambda timeout (Lambda's maximum); the planner sizes windows to a third of it. */
export const COPIER_TIMEOUT_SECONDS = 900;

/**
 * At this receive the copier dead-letters a still-failing window itself, with the reason. The
 * queues redrive one receive later (the backstop for a copier that died without answering), as
 * the local runtime does (functions/queue/source-queues.ts).
 */
export const COPIER_MAX_RECEIVE_COUNT = 5;

/**
 * The planner's environment variable holding the ARN of the KMS key the stack creates for exports
 * and day proofs (deployment.exportSigningKey): the planner signs each day's proof with it.
 */
export const STACK_SIGNING_KEY_ENV = "FLUSSONIC_BACKUP_SIGNING_KMS_KEY";

/**
 * V8 flags of the copier's Lambda process (NODE_OPTIONS, after --enable-source-maps): the young
 * generation's semi-spaces capped at 1 MiB. A paced download's socket reads are small buffers that
 * live for a slice; in a young generation grown to 16 MiB they pile up until V8 collects the old
 * space for their external memory (about 30 full collections in a 150 MB window at the cap,
 * against 1 uncapped). Measured with the esbuild copier bundle copying the reference window at the
 * whole 100 Mbit/s (load 7-9): peak RSS 152 -> 128 MiB, CPU 2.0-2.2 -> 1.5 s.
 */
export const COPIER_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=1"];
