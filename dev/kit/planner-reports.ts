/**
 * For planner tests: a plan report's errors and planned windows as sorted, comparable strings, and
 * the endpoints of one planner signing as its own client behind an S3 fault proxy (the proxy's log
 * then tells the planners' requests apart).
 */
import type { PlanReport } from "../../functions/planner/plan-backup.ts";
import type { Endpoints } from "../../local/aws-clients.ts";
import type { S3FaultProxy } from "./s3-fault-proxy.ts";

/** Every source's errors, `stream: message` (`-` for a source's own). */
export function errorsOf(report: PlanReport): string[] {
  return report.sources.flatMap((s) => s.errors.map((e) => `${e.stream ?? "-"}: ${e.message}`));
}

/** Every planned window, `stream@from+duration`, sorted. */
export function plannedOf(report: PlanReport): string[] {
  return report.sources.flatMap((s) => s.planned.map((m) => `${m.stream}@${m.from}+${m.duration}`)).sort();
}

/** Endpoints that send S3 through `proxy`, signed with `accessKeyId` (the proxy log's `client`). */
export function signedAs(endpoints: Endpoints, proxy: S3FaultProxy, accessKeyId: string): Endpoints {
  return { ...endpoints, s3Endpoint: proxy.url, credentials: { accessKeyId, secretAccessKey: "embedded" } };
}
