/**
 * Where the copy queues are, for `run` and the operator commands alike (one definition): in SQS
 * (AWS_ENDPOINT_URL_SQS, or AWS) or, for S3-compatible stores without a queue service, embedded and
 * kept in a state directory (`--queues embedded --state-dir dir`) while the backup itself is at the
 * S3 endpoint of the AWS variables.
 */
import { type Command, Option } from "commander";
import type { Endpoints } from "../../local/aws-clients.ts";
import type { EmbeddedEmulator } from "../../local/embedded.ts";
import { UsageError } from "./usage-error.ts";

/** Default state directory of `--embedded` and `--queues embedded`. */
export const DEFAULT_STATE_DIR = ".flussonic-backup";

export interface QueueChoice {
  /** `--queues <where>` (default sqs). */
  queues?: "sqs" | "embedded" | undefined;
  /** `--state-dir <dir>`: the state of the embedded queues (default .flussonic-backup). */
  stateDir?: string | undefined;
}

/** Adds `--queues <where>` and `--state-dir <dir>` to a command. */
export function queueOptions(command: Command): Command {
  return command
    .addOption(
      new Option(
        "--queues <where>",
        "where the copy queues are: sqs (AWS_ENDPOINT_URL_SQS or AWS) or embedded (local, kept in --state-dir; for S3-only stores)",
      ).choices(["sqs", "embedded"]),
    )
    .option(
      "--state-dir <dir>",
      `state of --queues embedded, kept across runs (default ${DEFAULT_STATE_DIR})`,
    );
}

/**
 * Checks the choice against the other ways of giving the backup (`--embedded`, `--demo`) and
 * returns where the queues are; a usage error for a combination that cannot be meant.
 */
export function checkQueueChoice(
  o: QueueChoice,
  other: { embedded?: boolean; demo?: boolean },
): "sqs" | "embedded" {
  const queues = o.queues ?? "sqs";
  if (queues !== "sqs" && queues !== "embedded") {
    throw new UsageError(`--queues: expected "sqs" or "embedded", got ${JSON.stringify(queues)}`);
  }
  if (queues === "embedded" && other.embedded) {
    throw new UsageError(
      "--queues embedded and --embedded: --embedded keeps the queues (and the backup) local already; give one",
    );
  }
  if (queues === "embedded" && other.demo) {
    throw new UsageError(
      "--queues embedded and --demo: the demo's queues are in its own state already; give one",
    );
  }
  if (o.stateDir !== undefined && queues !== "embedded") {
    throw new UsageError(
      "--state-dir is the state of --queues embedded; add --queues embedded (or use --embedded dir)",
    );
  }
  return queues;
}

/**
 * The endpoints with the queues embedded: the S3 endpoint of `endpoints` (the AWS variables) and
 * the queues of an emulator started on the state directory (the caller stops it).
 */
export async function withEmbeddedQueues(
  endpoints: Endpoints,
  stateDir: string | undefined,
): Promise<{ endpoints: Endpoints; emulator: EmbeddedEmulator }> {
  const { startEmbedded } = await import("../../local/embedded.ts");
  const emulator = await startEmbedded(stateDir ?? DEFAULT_STATE_DIR);
  return {
    endpoints: {
      ...endpoints,
      sqsEndpoint: emulator.endpoints.sqsEndpoint,
      sqsCredentials: emulator.endpoints.credentials,
    },
    emulator,
  };
}
