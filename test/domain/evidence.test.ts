/**
 * The pure parts of evidence: canonical JSON (what a signature covers) and the Merkle tree of a
 * day's windows with its inclusion proofs.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  applyEpisodeHolds,
  canonicalJson,
  type EpisodeSeen,
  emptyHoldBook,
  episodeHoldChanges,
  episodeHoldId,
  episodeRange,
  type Hold,
  holdsOverlapping,
  inclusionProof,
  leafHash,
  merkleRoot,
  signedBytes,
  verifyInclusion,
  type WindowEvidence,
} from "../../functions/domain/evidence.ts";

const windows = (n: number): WindowEvidence[] =>
  Array.from({ length: n }, (_, i) => ({
    key: `k/${i}`,
    from: 1000 + i * 600,
    duration: 600,
    size: 100 + i,
    sha256: String(i).padStart(64, "0"),
  }));

describe("evidence", () => {
  it("canonical JSON sorts keys at every level and drops undefined fields; signatures cover its SHA-256", () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: undefined, x: "s" }], c: null } })).toBe(
      '{"a":{"c":null,"d":[2,{"x":"s","z":1}]},"b":1}',
    );
    expect(
      signedBytes({ b: 2, a: 1, signature: { alg: "Ed25519", keyId: "k", value: "v" } }).toString(),
    ).toBe(
      `flussonic-backup signature v1 sha256:${createHash("sha256").update('{"a":1,"b":2}').digest("hex")}`,
    );
  });

  it("every leaf of trees of 1 to 9 windows proves its inclusion; another leaf or root does not", () => {
    for (let n = 1; n <= 9; n++) {
      const leaves = windows(n).map(leafHash);
      const root = merkleRoot(leaves).toString("hex");
      for (let i = 0; i < n; i++) {
        const steps = inclusionProof(leaves, i);
        expect(verifyInclusion(leaves[i]!, steps, root), `${i} of ${n}`).toBe(true);
        if (n > 1)
          expect(verifyInclusion(leaves[(i + 1) % n]!, steps, root), `${i} of ${n}, other leaf`).toBe(false);
      }
    }
  });

  it("the root changes with any window's size, hash or time, and with their order; not with the key", () => {
    const ws = windows(4);
    const root = (list: WindowEvidence[]) => merkleRoot(list.map(leafHash)).toString("hex");
    const base = root(ws);
    expect(root(ws.map((w, i) => (i === 2 ? { ...w, size: w.size + 1 } : w)))).not.toBe(base);
    expect(root(ws.map((w, i) => (i === 0 ? { ...w, sha256: "f".repeat(64) } : w)))).not.toBe(base);
    expect(root(ws.map((w, i) => (i === 3 ? { ...w, from: w.from + 1 } : w)))).not.toBe(base);
    expect(root([ws[1]!, ws[0]!, ws[2]!, ws[3]!])).not.toBe(base);
    expect(root(ws.slice(0, 3))).not.toBe(base);
    // A held copy (another key) proves the same window.
    expect(root(ws.map((w) => ({ ...w, key: `held/${w.key}` })))).toBe(base);
  });

  it("canonical JSON writes an undefined array item as null, as JSON does, and sorts any key order", () => {
    expect(canonicalJson([1, undefined, 2])).toBe("[1,null,2]");
    expect(canonicalJson([1, undefined, 2])).toBe(JSON.stringify([1, undefined, 2]));
    const reversed = { e: 5, d: 4, c: 3, b: 2, a: 1 };
    const shuffled = { c: 3, a: 1, e: 5, b: 2, d: 4 };
    expect(canonicalJson(reversed)).toBe('{"a":1,"b":2,"c":3,"d":4,"e":5}');
    expect(canonicalJson(shuffled)).toBe(canonicalJson(reversed));
  });

  it("hashes as RFC 6962 does (0x00 before a leaf, 0x01 before a node), so a verifier outside can recompute a root", () => {
    const sha = (...parts: (Buffer | string)[]) => {
      const h = createHash("sha256");
      for (const p of parts) h.update(p);
      return h.digest();
    };
    const [a, b] = windows(2);
    const leafA = sha(
      Buffer.from([0]),
      canonicalJson({ from: a!.from, duration: 600, size: a!.size, sha256: a!.sha256 }),
    );
    const leafB = sha(
      Buffer.from([0]),
      canonicalJson({ from: b!.from, duration: 600, size: b!.size, sha256: b!.sha256 }),
    );
    expect(leafHash(a!)).toEqual(leafA);
    expect(merkleRoot([leafA, leafB])).toEqual(sha(Buffer.from([1]), leafA, leafB));
    // A day with no window: the SHA-256 of nothing.
    expect(merkleRoot([]).toString("hex")).toBe(
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
  });

  it("an inclusion proof names the side of each sibling", () => {
    const leaves = windows(3).map(leafHash);
    const pairHash = createHash("sha256")
      .update(Buffer.from([1]))
      .update(leaves[0]!)
      .update(leaves[1]!)
      .digest();
    expect(inclusionProof(leaves, 1)).toEqual([
      { side: "left", hash: leaves[0]!.toString("hex") },
      { side: "right", hash: leaves[2]!.toString("hex") },
    ]);
    expect(inclusionProof(leaves, 2)).toEqual([{ side: "left", hash: pairHash.toString("hex") }]);
  });
});

describe("holds", () => {
  const hold = (stream: string, from: number, to: number): Hold => ({
    id: `${stream}-${from}`,
    stream,
    from,
    to,
    reason: "incident",
    by: "ops@host",
    createdAt: 1,
    legalHold: false,
  });

  it("a source with no hold has an empty book", () => {
    expect(emptyHoldBook("site-a")).toEqual({ v: 1, source: "site-a", holds: [] });
  });

  it("finds the holds of the stream overlapping a range, not those of another stream or only touching it", () => {
    const book = {
      ...emptyHoldBook("site-a"),
      holds: [hold("cam", 100, 200), hold("cam", 300, 400), hold("door", 100, 400)],
    };
    expect(holdsOverlapping(book, "cam", 150, 160).map((h) => h.id)).toEqual(["cam-100"]);
    expect(holdsOverlapping(book, "cam", 199, 301).map((h) => h.id)).toEqual(["cam-100", "cam-300"]);
    // [200, 300) touches both holds and overlaps neither.
    expect(holdsOverlapping(book, "cam", 200, 300)).toEqual([]);
    expect(holdsOverlapping(book, "door", 0, 101).map((h) => h.id)).toEqual(["door-100"]);
    expect(holdsOverlapping(book, "gate", 0, 1000)).toEqual([]);
  });
});

describe("holds from episodes", () => {
  const T = 1_764_000_000;
  const ep = (o: Partial<EpisodeSeen> = {}): EpisodeSeen => ({
    id: "42",
    stream: "cam1",
    openedAtMs: T * 1000 + 400,
    updatedAtMs: (T + 60) * 1000 + 1,
    ...o,
  });
  const roll = { preRollSeconds: 10, postRollSeconds: 20, now: T + 100, legalHold: false };

  it("an episode holds from its opening less the pre-roll to its close (or last update) plus the post-roll, whole seconds outward", () => {
    expect(episodeRange(ep(), 10, 20)).toEqual({ from: T - 10, to: T + 61 + 20 });
    expect(episodeRange(ep({ closedAtMs: (T + 90) * 1000 }), 10, 20)).toEqual({
      from: T - 10,
      to: T + 90 + 20,
    });
    // A close before the last update (clocks apart) does not cut the hold short.
    expect(episodeRange(ep({ closedAtMs: T * 1000 }), 0, 0)).toEqual({ from: T, to: T + 61 });
    expect(episodeHoldId("cam 1@7/x")).toBe("episode-cam_1@7_x");
  });

  it("a new episode is one hold; the same again changes nothing; a moved one grows by the seconds added, never shrinks", () => {
    const first = episodeHoldChanges(emptyHoldBook("s"), [ep()], roll);
    expect(first).toEqual([
      {
        kind: "new",
        added: [{ from: T - 10, to: T + 81 }],
        hold: {
          id: "episode-42",
          stream: "cam1",
          from: T - 10,
          to: T + 81,
          reason: "Flussonic episode 42",
          by: "episode",
          createdAt: T + 100,
          legalHold: false,
          origin: { episode: "42" },
        },
      },
    ]);
    const book = applyEpisodeHolds(emptyHoldBook("s"), first);
    expect(episodeHoldChanges(book, [ep()], roll)).toEqual([]);
    const grown = episodeHoldChanges(book, [ep({ closedAtMs: (T + 200) * 1000 })], roll);
    expect(grown.map((c) => [c.kind, c.added, c.hold.from, c.hold.to])).toEqual([
      ["grown", [{ from: T + 81, to: T + 220 }], T - 10, T + 220],
    ]);
    // A later answer with an earlier end (an episode re-opened, a clock moved) never shrinks it.
    const after = applyEpisodeHolds(book, grown);
    expect(episodeHoldChanges(after, [ep({ updatedAtMs: (T + 5) * 1000 })], roll)).toEqual([]);
    expect(after.holds).toHaveLength(1);
    // The same episode on another stream is another hold.
    expect(episodeHoldChanges(after, [ep({ stream: "cam2" })], roll).map((c) => c.kind)).toEqual(["new"]);
  });

  it("a released episode is not held again; an operator's hold is never touched", () => {
    const book = {
      ...emptyHoldBook("s"),
      holds: [
        {
          id: "20261120-aa",
          stream: "cam1",
          from: 0,
          to: 10,
          reason: "x",
          by: "op",
          createdAt: 1,
          legalHold: true,
        },
      ],
      releasedEpisodes: [{ stream: "cam1", id: "episode-42" }],
    };
    expect(episodeHoldChanges(book, [ep()], roll)).toEqual([]);
    const other = episodeHoldChanges(book, [ep({ id: "43" })], roll);
    expect(applyEpisodeHolds(book, other).holds.map((h) => h.id)).toEqual(["20261120-aa", "episode-43"]);
  });
});
