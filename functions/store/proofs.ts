/**
 * Day proofs in the bucket (docs/evidence.md, "Day proofs"): the signed statement of what the
 * backup held of one stream on one UTC day, written once under
 * `.backup/proofs/{source}/{stream}/{day}.json` by `prove` or by the planner (day-proofs.ts), and
 * the planner's note of the last day proven per stream (`.backup/proofs/{source}.json`).
 */
import { type DayProof, leafHash, merkleRoot, type WindowEvidence } from "../domain/evidence.ts";
import { proofKey, provenKey, utcDate } from "../domain/keys.ts";
import { clipRanges, normalizeRanges, subtractRanges, type TimeRange } from "../domain/ranges.ts";
import { type BackupStore, CONDITIONAL_ATTEMPTS, raceBackoff, StoreError } from "./backup-store.ts";
import { storedWindowsIn } from "./holds.ts";
import type { Signer } from "./signing.ts";

export async function readProof(
  store: BackupStore,
  source: string,
  stream: string,
  day: string,
): Promise<DayProof | undefined> {
  return (await store.readObject<DayProof>(proofKey(store.prefix, source, stream, day)))?.body;
}

/** The day's proof: the stored one, or a new one signed and stored (write-once). */
export async function proveDay(o: {
  store: BackupStore;
  source: string;
  stream: string;
  day: string;
  /** What the source reports as recorded (unix seconds), or null when it could not be asked. */
  recorded: TimeRange[] | null;
  signer: Signer;
  now: number;
}): Promise<{ proof: DayProof; created: boolean }> {
  const existing = await readProof(o.store, o.source, o.stream, o.day);
  if (existing) return { proof: existing, created: false };
  const dayFrom = Date.parse(`${o.day}T00:00:00Z`) / 1000;
  const dayTo = dayFrom + 86400;
  const windows: WindowEvidence[] = (await storedWindowsIn(o.store, o.source, o.stream, dayFrom, dayTo))
    .filter((w) => utcDate(w.from) === o.day)
    .sort((a, b) => a.from - b.from || a.duration - b.duration)
    .map((w) => ({ key: w.key, from: w.from, duration: w.duration, size: w.size, sha256: w.sha256 }));
  const stored = normalizeRanges(windows.map((w) => ({ from: w.from, to: w.from + w.duration })));
  const recorded = o.recorded === null ? null : clipRanges(normalizeRanges(o.recorded), dayFrom, dayTo);
  const proof = await o.signer.sign<DayProof>({
    v: 1,
    kind: "flussonic-backup day proof",
    source: o.source,
    stream: o.stream,
    day: o.day,
    recorded,
    stored,
    missed: recorded === null ? null : subtractRanges(recorded, stored),
    windows,
    root: merkleRoot(windows.map(leafHash)).toString("hex"),
    at: o.now,
  });
  const written = await o.store.writeObject(
    proofKey(o.store.prefix, o.source, o.stream, o.day),
    JSON.stringify(proof),
    null,
  );
  if (!written) {
    // Another prove made it meanwhile: that one stands.
    const other = await readProof(o.store, o.source, o.stream, o.day);
    if (other) return { proof: other, created: false };
  }
  return { proof, created: true };
}

/** The last day proven of each stream of a source (the planner's, so that it asks no more). */
export interface ProvenDays {
  v: 1;
  streams: Record<string, string>;
}

export async function readProvenDays(
  store: BackupStore,
  source: string,
): Promise<{ days: ProvenDays; etag?: string }> {
  const got = await store.readObject<ProvenDays>(provenKey(store.prefix, source));
  if (!got) return { days: { v: 1, streams: {} } };
  return { days: { v: 1, streams: { ...got.body.streams } }, ...(got.etag ? { etag: got.etag } : {}) };
}

/** Notes `day` as proven for each stream given (never moving a stream's day back). */
export async function noteProvenDays(
  store: BackupStore,
  source: string,
  proven: Record<string, string>,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const { days, etag } = await readProvenDays(store, source);
    for (const [stream, day] of Object.entries(proven)) {
      if ((days.streams[stream] ?? "") < day) days.streams[stream] = day;
    }
    if (await store.writeObject(provenKey(store.prefix, source), JSON.stringify(days), etag ?? null)) return;
    if (attempt >= CONDITIONAL_ATTEMPTS) {
      throw new StoreError(`S3: the proven days of source ${source} kept changing while they were written`);
    }
    await raceBackoff(attempt);
  }
}
