/**
 * Where a process spent its CPU: the functions with the most self time in a V8 profile written by
 * `node --cpu-prof`, grouped by function and file.
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface HotFunction {
  function: string;
  /** File relative to the repository (or the runtime's own name), with the line. */
  where: string;
  selfSeconds: number;
  share: number;
}

/** Self time by area: a package, a file of ours, Node's internals, the garbage collector. */
export function cpuByArea(functions: HotFunction[]): { area: string; share: number }[] {
  const areas = new Map<string, number>();
  for (const f of functions) {
    const m = /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(f.where);
    const area = m
      ? m[1]!
      : f.where.startsWith("node:")
        ? "node internals"
        : f.where === "(native)"
          ? f.function
          : f.where.replace(/:\d+$/, "");
    areas.set(area, (areas.get(area) ?? 0) + f.share);
  }
  return [...areas.entries()].map(([area, share]) => ({ area, share })).sort((a, b) => b.share - a.share);
}

/** The `top` functions by self time in a .cpuprofile file (all of them with `top` = Infinity). */
export function hotFunctions(file: string, top = 12): HotFunction[] {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfMicros = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    // A sample's time is the delta to the next one.
    const dt = deltas[i + 1] ?? 0;
    selfMicros.set(samples[i]!, (selfMicros.get(samples[i]!) ?? 0) + dt);
  }
  const grouped = new Map<string, HotFunction>();
  let total = 0;
  for (const [id, micros] of selfMicros) {
    const node = byId.get(id);
    if (!node) continue;
    const name = node.callFrame.functionName || "(anonymous)";
    if (name === "(idle)" || name === "(program)") continue;
    total += micros;
    const url = node.callFrame.url
      .replace(/^file:\/\//, "")
      .replace(/^.*\/(node_modules|functions|local|bench|tools)\//, "$1/");
    const where = url ? `${url}:${node.callFrame.lineNumber + 1}` : "(native)";
    const key = `${name} ${where}`;
    const entry = grouped.get(key) ?? { function: name, where, selfSeconds: 0, share: 0 };
    entry.selfSeconds += micros / 1e6;
    grouped.set(key, entry);
  }
  const all = [...grouped.values()].sort((a, b) => b.selfSeconds - a.selfSeconds);
  for (const e of all) e.share = total > 0 ? (e.selfSeconds * 1e6) / total : 0;
  return all.slice(0, top);
}
