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
 * generation's semi-spaces capped at 1 MiB, so that a paced download's reads (small buffers that
 * live for a slice) are freed as it goes. Measured with the esbuild copier bundle copying the 150 MB
 * reference window at the whole 100 Mbit/s (load 6-9, 5 runs each): peak RSS 152-153 -> 128-133
 * MiB every time. Its CPU is not reliably lower: 1.34-2.32 s (mean 1.78) against 1.95-2.23 s (mean
 * 2.09), set by how many old-space collections V8 makes for the reads' external memory (1 or about
 * 35 with the flag, about 20 without; 1 uncapped).
 */
export const COPIER_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=1"];
