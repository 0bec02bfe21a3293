import type { Logger } from "@aws-lambda-powertools/logger";

/**
 * What the product's code logs through: Powertools' Logger in Lambda, a line logger on one
 * machine (local/line-log.ts), or a silent one in tests.
 */
export type Log = Pick<Logger, "debug" | "info" | "warn" | "error">;
