/**
 * `npm run simulator`: a simulated Flussonic on a port, to point a configuration at.
 */
import { parseArgs } from "node:util";
import { FlussonicSimulator } from "./simulator.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8080" },
    host: { type: "string", default: "127.0.0.1" },
    streams: { type: "string", default: "3" },
    days: { type: "string", default: "1" },
    seed: { type: "string", default: "1" },
    "range-fields": { type: "string", default: "seconds" },
    shape: { type: "string", default: "spec" },
    ranges: { type: "boolean", default: false },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  process.stdout.write(
    "usage: npm run simulator -- [--port 8080] [--host 127.0.0.1] [--streams 3] [--days 1] [--seed 1] [--range-fields seconds|milliseconds|both] [--shape spec|docs] [--ranges]\n" +
      "  --shape   spec: answers as Flussonic's OpenAPI says; docs: the older documented shapes\n" +
      "  --ranges  answer Range requests on archive windows (206, ETag, If-Range); off: whole exports only\n",
  );
  process.exit(0);
}
const sim = await FlussonicSimulator.start({
  port: Number(values.port),
  host: values.host,
  streams: Number(values.streams),
  days: Number(values.days),
  seed: Number(values.seed),
  rangeFields:
    values["range-fields"] === "milliseconds" || values["range-fields"] === "both"
      ? values["range-fields"]
      : "seconds",
  shape: values.shape === "docs" ? "docs" : "spec",
  ranges: values.ranges,
});
process.stdout.write(`Flussonic simulator on ${sim.url}\n`);
for (const s of sim.streams()) {
  const ranges = sim.rangesOf(s.name);
  const seconds = ranges.reduce((sum, r) => sum + (r.to - r.from), 0);
  process.stdout.write(
    `  ${s.name}: ${ranges.length} range(s), ${(seconds / 3600).toFixed(1)} h recorded, ${s.bitrateBps / 1000} kbit/s\n` +
      `    ${sim.url}/${s.name}/archive-${ranges.at(-1)!.to - 600}-600.mp4\n`,
  );
}
process.stdout.write("Ctrl-C to stop.\n");
process.on("SIGINT", () => {
  void sim.close().then(() => process.exit(0));
});
