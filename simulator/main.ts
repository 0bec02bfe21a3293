/**
 * `npm run simulator`: a simulated Flussonic on a port, to point a configuration at. It serves real
 * H.264/AAC video when ffmpeg is installed (so a backup of it restores and plays), and takes the
 * admin login, play token and archive depth a real server would have; `--help` lists every flag.
 */
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import { fastClock } from "./clock.ts";
import { FlussonicSimulator, type SimAuth } from "./simulator.ts";

const HELP = `usage: npm run simulator -- [options]

  --port <n>              port to listen on (default 8080; 0: any free)
  --host <address>        address to listen on (default 127.0.0.1)
  --streams <n>           streams with a DVR archive (default 3)
  --days <d>              archive depth, the source's retention in days (default 1; 0.05 is 72 min)
  --seed <n>              seed of the archive's gaps and bitrates (default 1)
  --media real|synthetic  real: decodable H.264/AAC video (needs ffmpeg; the default when ffmpeg is
                          installed), so restored files and the player play; synthetic: framed bytes
                          that back up and verify but do not decode
  --username <name>       admin API login (Basic), with --password; default: no login asked
  --password <secret>
  --bearer <token>        admin API bearer token
  --play-token <token>    play token accepted as ?token= on playback URLs (recording_status.json,
                          exports); with --play-auth only it opens them
  --play-auth             playback URLs need the play token (an admin login gets 403)
  --range-fields seconds|milliseconds|both
                          range fields of dvr/ranges (default seconds)
  --shape spec|docs       spec: answers as Flussonic's OpenAPI says (default); docs: the older
                          documented shapes
  --ranges                answer Range requests on archive windows (206, ETag, If-Range); off:
                          whole exports only
  --clock-speed <x>       simulated seconds per real second (default 1): recording and the
                          source's retention (the archive start moving on) run x times faster
  -h, --help              this help
`;

/** One sentence and exit 2, as the product's own commands do for a usage mistake. */
function usage(message: string): never {
  process.stderr.write(`simulator: ${message} (see npm run simulator -- --help)\n`);
  process.exit(2);
}

function numberArg(name: string, text: string, min: number, max: number, fraction = false): number {
  const ok = (fraction ? /^\d+(\.\d+)?$/ : /^\d+$/).test(text);
  const n = Number(text);
  if (!ok || n < min || n > max)
    usage(`--${name}: expected a number between ${min} and ${max}, got "${text}"`);
  return n;
}

function choice<T extends string>(name: string, text: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(text))
    usage(`--${name}: expected ${allowed.join(" or ")}, got "${text}"`);
  return text as T;
}

let values: ReturnType<typeof parse>["values"];
function parse() {
  return parseArgs({
    options: {
      port: { type: "string", default: "8080" },
      host: { type: "string", default: "127.0.0.1" },
      streams: { type: "string", default: "3" },
      days: { type: "string", default: "1" },
      seed: { type: "string", default: "1" },
      media: { type: "string" },
      username: { type: "string" },
      password: { type: "string" },
      bearer: { type: "string" },
      "play-token": { type: "string" },
      "play-auth": { type: "boolean", default: false },
      "range-fields": { type: "string", default: "seconds" },
      shape: { type: "string", default: "spec" },
      ranges: { type: "boolean", default: false },
      "clock-speed": { type: "string", default: "1" },
      help: { type: "boolean", short: "h" },
    },
  });
}
try {
  ({ values } = parse());
} catch (error) {
  usage((error as Error).message.split("\n")[0]!.replace(/\. To specify .*$/, ""));
}
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

const hasFfmpeg = spawnSync("ffmpeg", ["-version"], { stdio: "ignore" }).status === 0;
const media = choice("media", values.media ?? (hasFfmpeg ? "real" : "synthetic"), [
  "real",
  "synthetic",
] as const);
if (media === "real" && !hasFfmpeg)
  usage("--media real needs ffmpeg on the PATH; install it, or use --media synthetic");
if ((values.username === undefined) !== (values.password === undefined))
  usage("--username and --password go together");
if (values["play-auth"] && values["play-token"] === undefined) usage("--play-auth needs --play-token");
const auth: SimAuth = {
  ...(values.username !== undefined
    ? { basic: { username: values.username, password: values.password! } }
    : {}),
  ...(values.bearer !== undefined ? { bearer: values.bearer } : {}),
  ...(values["play-token"] !== undefined ? { playToken: values["play-token"] } : {}),
  ...(values["play-auth"] ? { playAuth: true } : {}),
};

const sim = await FlussonicSimulator.start({
  port: numberArg("port", values.port, 0, 65_535),
  host: values.host,
  streams: numberArg("streams", values.streams, 1, 100),
  days: numberArg("days", values.days, 0.01, 365, true),
  seed: numberArg("seed", values.seed, 0, 2 ** 31),
  rangeFields: choice("range-fields", values["range-fields"], ["seconds", "milliseconds", "both"] as const),
  shape: choice("shape", values.shape, ["spec", "docs"] as const),
  ranges: values.ranges,
  media,
  now: fastClock(numberArg("clock-speed", values["clock-speed"], 0.01, 100_000, true)).now,
  ...(Object.keys(auth).length > 0 ? { auth } : {}),
});
const login =
  auth.basic !== undefined
    ? `admin login ${auth.basic.username} (Basic)`
    : auth.bearer !== undefined
      ? "admin bearer token"
      : "no admin login";
process.stdout.write(
  `Flussonic simulator on ${sim.url} (${media === "real" ? "real H.264/AAC video" : "synthetic bytes: backups of them do not decode; install ffmpeg for real video"}; ${login}${auth.playToken ? `; play token${auth.playAuth ? " required on playback URLs" : ""}` : ""}; ${values.days} day(s) of archive)\n`,
);
for (const s of sim.streams()) {
  const ranges = sim.rangesOf(s.name);
  const seconds = ranges.reduce((sum, r) => sum + (r.to - r.from), 0);
  process.stdout.write(
    `  ${s.name}: ${ranges.length} range(s), ${(seconds / 3600).toFixed(1)} h recorded, ${media === "real" ? "real video" : `${s.bitrateBps / 1000} kbit/s`}\n` +
      `    ${sim.url}/${s.name}/archive-${ranges.at(-1)!.to - 600}-600.mp4\n`,
  );
}
process.stdout.write("Ctrl-C to stop.\n");
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    void sim.close().then(() => process.exit(0));
  });
}
