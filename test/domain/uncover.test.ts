/**
 * `uncover` (verify --repair): a window found missing, corrupt or short stops being claimed; the
 * rest of the manifest stays.
 */
import { describe, expect, it } from "vitest";
import { emptyManifest, type Manifest, uncover } from "../../functions/domain/manifest.ts";

const base: Manifest = {
  ...emptyManifest("src1", "cam1"),
  covered: [
    { from: 0, to: 1800 },
    { from: 3000, to: 3600 },
  ],
  leases: [{ from: 1800, duration: 600, until: 99_999 }],
  windows: 4,
  bytes: 4000,
  sample: { bytes: 4000, seconds: 2400 },
  head: 3600,
  updatedAt: 10,
};

describe("uncover", () => {
  it("removes only the window's seconds; other coverage, leases and totals stay", () => {
    const m = uncover(base, 600, 1200);
    expect(m.covered).toEqual([
      { from: 0, to: 600 },
      { from: 1200, to: 1800 },
      { from: 3000, to: 3600 },
    ]);
    expect(m.leases).toEqual(base.leases);
    expect([m.windows, m.bytes, m.sample, m.head]).toEqual([4, 4000, base.sample, 3600]);
  });

  it("seconds not covered leave the manifest as it is (the same object), so a repeated repair writes nothing", () => {
    expect(uncover(base, 1800, 3000)).toBe(base);
    expect(uncover(base, 600, 600)).toBe(base);
    const once = uncover(base, 600, 1200);
    expect(uncover(once, 600, 1200)).toBe(once);
  });

  it("moves the head back to the newest second still covered when the newest window goes", () => {
    expect(uncover(base, 3000, 3600).head).toBe(1800);
    expect(uncover(uncover(base, 3000, 3600), 0, 1800).head).toBe(0);
    // A span inside, not at the head: the head stays.
    expect(uncover(base, 0, 600).head).toBe(3600);
  });
});
