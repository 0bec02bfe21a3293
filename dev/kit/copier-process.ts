/**
 * A copier in its own process, for tests that kill it mid-upload (SIGKILL: no chance to abort).
 * Reads its setup from FB_COPIER (JSON: config text, endpoints, clock, part size) and copies from
 * the queues until killed.
 */
import { parseConfig } from "../../functions/config/config.ts";
import { lineLog } from "../../local/line-log.ts";
import { LocalRuntime } from "../../local/runtime.ts";

const setup = JSON.parse(process.env.FB_COPIER ?? "{}");
const rt = await LocalRuntime.create({
  config: parseConfig(setup.config, "copier-process"),
  credentials: new Map(),
  endpoints: setup.endpoints,
  logger: lineLog("warn", (l) => process.stderr.write(`${l}\n`)),
  now: () => setup.now,
  copyTimeoutSeconds: 60,
  waitTimeSeconds: 1,
  partSize: setup.partSize,
  // The tests kill it mid multipart upload: fixed parts, whatever the window's size.
  fixedParts: true,
});
await rt.startCopiers();
process.stdout.write("copying\n");
