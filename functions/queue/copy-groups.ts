/**
 * FIFO message groups and deduplication ids of copy messages: how a Central source's per-server cap
 * holds across copier invocations in AWS (docs/central.md, "Each server's cap").
 *
 * SQS FIFO hands out the next message of a message group only once the one before it is deleted
 * or moved to the dead-letter queue, to any number of consumers. A Central source's windows are
 * therefore sent in the groups `<server>#0` … `<server>#<n-1>` (n = eachServer.maxConcurrentCopies):
 * at most n copies of one server are in flight, whatever the number of copier invocations, with no
 * request added per copy.
 *
 * Groups are assigned round-robin per server in the order the planner sends (deadline first), so
 * the n most urgent windows of a server head its n groups and are copied first. (Assigning by the
 * window's start would put aligned windows of different streams, e.g. every camera's 12:00 window,
 * into one group and copy them one after another.) Each run starts the round at a group derived
 * from the run's time and the server, so that runs sending a few windows each do not all load
 * group 0.
 */
import { createHash } from "node:crypto";
import { type SourceConfig, serverCaps } from "../config/config.ts";
import type { CopyMessage } from "../domain/archive.ts";

/** What a FIFO queue needs besides the body. */
export interface FifoIds {
  groupId: string;
  deduplicationId: string;
}

/** SQS: up to 128 characters, alphanumeric and punctuation (`!"#$%&'()*+,-./:;<=>?@[\]^_\`{|}~`). */
const SQS_ID = /^[\x21-\x7e]{1,128}$/;

function sqsId(text: string): string {
  return SQS_ID.test(text) ? text : createHash("sha256").update(text).digest("hex");
}

/**
 * The deduplication id of a window under one lease: a window planned again after its lease ended
 * has a new id (it is not dropped as a duplicate), while a batch re-sent after a lost answer within
 * SQS's 5-minute deduplication interval is (no window queued twice).
 */
export function deduplicationId(m: CopyMessage): string {
  return sqsId(`${m.stream}/${m.from}/${m.duration}/${m.leaseUntil}`);
}

/** The server of a Central source's stream (`<hostname>/<stream>`). */
export function serverOf(stream: string): string {
  const cut = stream.indexOf("/");
  return cut > 0 ? stream.slice(0, cut) : stream;
}

/** The group `<server>#<k>` (a hash of the server when that is not a valid SQS id). */
export function serverGroup(server: string, k: number): string {
  const id = `${server}#${k}`;
  return SQS_ID.test(id) ? id : `${createHash("sha256").update(server).digest("hex")}#${k}`;
}

/**
 * The group of each message of one run of `source` (in the order sent), or undefined when the
 * source's groups are not per server: a `kind: "server"` source, or a fleet capped at one copy at
 * a time (its single group, added by the copier's SQS client, is the tighter cap).
 */
export function copyGroups(
  source: SourceConfig,
  messages: readonly CopyMessage[],
  runAt: number,
): (string | undefined)[] {
  if (source.kind !== "central" || source.maxConcurrentCopies <= 1) return messages.map(() => undefined);
  const n = Math.max(1, serverCaps(source).maxConcurrentCopies);
  const next = new Map<string, number>();
  return messages.map((m) => {
    const server = serverOf(m.stream);
    let k = next.get(server);
    if (k === undefined) k = createHash("sha256").update(`${server}@${runAt}`).digest().readUInt32BE(0) % n;
    next.set(server, (k + 1) % n);
    return serverGroup(server, k);
  });
}
