import { describe, expect, it } from "vitest";
import { parseTimeArg, parseTimeSpan, UsageError } from "../../cli/commands/time-arg.ts";

const T = Math.floor(Date.UTC(2026, 10, 20, 12, 17, 0) / 1000);

describe("time arguments", () => {
  it("accept unix seconds and ISO 8601 with Z, an offset, no zone (UTC) or a bare date", () => {
    expect(parseTimeArg("--from", String(T))).toBe(T);
    expect(parseTimeArg("--from", "2026-11-20T12:17:00Z")).toBe(T);
    expect(parseTimeArg("--from", "2026-11-20T14:17:00+02:00")).toBe(T);
    expect(parseTimeArg("--from", "2026-11-20T12:17")).toBe(T);
    expect(parseTimeArg("--from", "2026-11-20 12:17:00.750Z")).toBe(T);
    expect(parseTimeArg("--to", "2026-11-20")).toBe(Math.floor(Date.UTC(2026, 10, 20) / 1000));
  });

  it("refuse anything else with a message naming the flag", () => {
    for (const bad of ["yesterday", "2026-13-01T00:00Z", "12:17", "-5", "1.5e9", ""]) {
      expect(() => parseTimeArg("--to", bad), bad).toThrow(UsageError);
      expect(() => parseTimeArg("--to", bad), bad).toThrow(/^--to: expected a time as ISO 8601/);
    }
  });

  it("refuse a span that ends before it starts", () => {
    expect(() => parseTimeSpan(String(T), String(T - 1))).toThrow(/--to .* must be after --from/);
    expect(parseTimeSpan(undefined, String(T))).toEqual({ from: undefined, to: T });
  });
});
