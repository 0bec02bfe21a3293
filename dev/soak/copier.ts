/**
 * One copier of the soak (dev/soak/main.ts) in its own process, on the real clock: copies from
 * the sources' queues until SIGTERM (stops cleanly) or SIGKILL (the soak's chaos). Setup in
 * FB_SOAK_COPIER (JSON: the configuration text and the endpoints).
 */
import { parseConfig } from "../../functions/config/config.ts";
import { lineLog } from "../../local/line-log.ts";
import { LocalRuntime } from "../../local/runtime.ts";

const setup = JSON.parse(process.env.FB_SOAK_COPIER ?? "{}");
const rt = await LocalRuntime.create({
  config: parseConfig(setup.config, "soak-config.json"),
  credentials: new Map(),
  endpoints: setup.endpoints,
  logger: lineLog("warn", (l) => process.stderr.write(`${l}\n`)),
  copyTimeoutSeconds: 60,
  retryBaseSeconds: 2,
  waitTimeSeconds: 1,
  partSize: 5 * 1024 * 1024,
  deferSeconds: 30,
});
await rt.startCopiers();
process.stdout.write("copying\n");
process.once("SIGTERM", () => {
  void rt.stopCopiers(5000).finally(() => process.exit(0));
});
