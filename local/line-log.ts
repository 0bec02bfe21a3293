/**
 * A plain line logger for the local runtime (the Lambda handlers use Powertools Logger; both fit
 * the same small Log interface). Lines go to stderr so that stdout stays for results.
 */
import type { Log } from "../functions/shared/log.ts";

export type Level = "debug" | "info" | "warn" | "error";
const ORDER: Level[] = ["debug", "info", "warn", "error"];

/**
 * A logger writing lines of `level` and above. `skip` names messages left out (e.g. `run --once`
 * leaves out "planning failed": its summary lists each planning error once, explained).
 */
export function lineLog(
  level: Level,
  write: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
  skip: ReadonlySet<string> = new Set(),
): Log {
  const min = ORDER.indexOf(level);
  const at =
    (l: Level) =>
    (message: string, ...extra: unknown[]) => {
      if (ORDER.indexOf(l) < min || skip.has(message)) return;
      const fields = extra
        .flatMap((e) => (e && typeof e === "object" ? Object.entries(e as Record<string, unknown>) : []))
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${typeof v === "string" && !/\s/.test(v) ? v : JSON.stringify(v)}`)
        .join(" ");
      write(
        `${new Date().toISOString()} ${l.toUpperCase().padEnd(5)} ${message}${fields ? ` ${fields}` : ""}`,
      );
    };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") } as Log;
}
