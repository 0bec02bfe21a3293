/**
 * The pure parts of evidence: canonical JSON (what a signature covers) and the Merkle tree of a
 * day's windows with its inclusion proofs.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  canonicalJson,
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
});
