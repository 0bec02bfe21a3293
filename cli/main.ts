#!/usr/bin/env node
/**
 * The `flussonic-backup` command line. Every subcommand has --help.
 */
import { Command, Option } from "commander";
import { ConfigError, configJsonSchema, loadConfigFile, resolveAllCredentials } from "../functions/config.ts";
import { runCommand } from "./run.ts";

const program = new Command()
  .name("flussonic-backup")
  .description(
    "Back up Flussonic DVR archives into S3: plan missing windows, copy them with a source-protecting cap.",
  )
  .showHelpAfterError();

program
  .command("run")
  .description("Run the planner and the copiers locally (same handlers as in AWS)")
  .requiredOption("-c, --config <file>", "configuration file (JSON, comments allowed)")
  .option("--once", "plan once, copy everything planned, print a summary and exit (non-zero on failures)")
  .option(
    "--embedded [dir]",
    "use the embedded S3/SQS emulator instead of AWS endpoints; state kept in dir across runs (default .flussonic-backup)",
  )
  .option("-v, --verbose", "log every window")
  .addOption(
    new Option("--copy-timeout <seconds>", "longest one window copy may take")
      .default("900")
      .argParser(Number),
  )
  .addHelpText(
    "after",
    "\nEndpoints: AWS_REGION, credentials and AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL_SQS (e.g. LocalStack)\nselect where the backup goes unless --embedded is given.",
  )
  .action(async (opts) => {
    process.exitCode = await runCommand({
      configFile: opts.config,
      once: Boolean(opts.once),
      embedded: opts.embedded === true ? ".flussonic-backup" : opts.embedded,
      verbose: Boolean(opts.verbose),
      copyTimeoutSeconds: opts.copyTimeout,
    });
  });

const config = program.command("config").description("Check a configuration file or print its JSON Schema");
config
  .command("check")
  .description("Validate a configuration file and the environment variables it names")
  .argument("<file>", "configuration file")
  .option("--no-env", "do not check that the secrets' environment variables are set")
  .action((file: string, opts: { env: boolean }) => {
    const cfg = loadConfigFile(file);
    if (opts.env) resolveAllCredentials(cfg, file, process.env);
    const streams = cfg.sources.map(
      (s) => `${s.name} (${s.streams === "all" ? "all streams" : `${s.streams.length} stream(s)`})`,
    );
    process.stdout.write(
      `${file}: valid; bucket ${cfg.bucket}, prefix "${cfg.prefix}", sources: ${streams.join(", ")}\n`,
    );
  });
config
  .command("schema")
  .description('Print the JSON Schema of the configuration file (for editors: "$schema")')
  .action(() => {
    process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
  });

program
  .command("demo")
  .description(
    "The demo behind `npm start`: a simulated Flussonic, the embedded emulator, a full backup, a coverage summary",
  )
  .option("--dir <dir>", "where the demo keeps its emulator state across runs", ".demo")
  .option("--streams <n>", "simulated streams", "4")
  .option("--hours <n>", "hours of archive", "3")
  .action(async (opts) => {
    const { demoCommand } = await import("./demo.ts");
    process.exitCode = await demoCommand({
      dir: opts.dir,
      streams: Number(opts.streams),
      hours: Number(opts.hours),
    });
  });

try {
  await program.parseAsync();
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exitCode = 2;
  } else {
    throw error;
  }
}
