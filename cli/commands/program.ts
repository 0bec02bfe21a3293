/**
 * The `flussonic-backup` command line. Every subcommand has --help.
 */
import { readFileSync } from "node:fs";
import { enableCompileCache } from "node:module";
import { Command, CommanderError, Option } from "commander";
import {
  COPY_TIMEOUT,
  DEFAULT_COPY_TIMEOUT_SECONDS,
  DEMO_HOURS,
  DEMO_STREAMS,
  parseNumberArg,
} from "./number-arg.ts";
import { checkQueueChoice, queueOptions } from "./queue-options.ts";
import { UsageError } from "./usage-error.ts";

// Every command starts a new process: Node's code cache (in the OS temp directory) nearly halves the
// start-up CPU of the modules loaded from here on (the AWS SDK, zod, the commands).
enableCompileCache?.();

const VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

const program = new Command()
  .name("flussonic-backup")
  .description(
    "Back up Flussonic DVR archives into S3: plan missing windows, copy them with a source-protecting cap.",
  )
  .version(`flussonic-backup ${VERSION}`, "-V, --version", "print the version and exit")
  // Usage mistakes (unknown option, missing argument) exit 2 like every other usage error: commander
  // throws instead of exiting, and the one error boundary below maps its exit code.
  .exitOverride()
  .showHelpAfterError();

queueOptions(
  program
    .command("run")
    .description("Run the planner and the copiers locally (same handlers as in AWS)")
    .requiredOption("-c, --config <file>", "configuration file (JSON, comments allowed)")
    .option("--once", "plan once, copy everything planned, print a summary and exit (non-zero on failures)")
    .option(
      "--embedded [dir]",
      "use the embedded S3/SQS emulator instead of AWS endpoints; state kept in dir across runs (default .flussonic-backup)",
    )
    .option("--log-windows", "log every window copied, retried or dropped")
    .option(
      "-v, --verbose",
      "old name of --log-windows (kept working); also prints the stack trace on a failure",
    )
    .option("--dry-run", "plan as usual and print what would be copied; queue, lease and write nothing")
    .addOption(copyTimeoutOption("longest one window copy may take")),
)
  .option("--no-s3-checksums", "do not ask the S3 endpoint for SHA-256 part checksums (stores without them)")
  .option("--no-conditional-writes", "write manifests without If-Match/If-None-Match (stores without them)")
  .addOption(
    textDefault(
      "--grace-seconds <n>",
      "service: after SIGTERM/SIGINT, how long running copies may take to finish",
      30,
    ),
  )
  .option(
    "--metrics-port <port>",
    "service: serve /metrics (Prometheus) and /healthz on this port (0: any free)",
  )
  .addOption(textDefault("--metrics-host <address>", "address the metrics server listens on", "127.0.0.1"))
  .addHelpText(
    "after",
    "\nEndpoints: AWS_REGION, credentials and AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL_SQS (e.g. LocalStack)\nselect where the backup goes unless --embedded is given; with --queues embedded only the S3 one is used.",
  )
  .action(async (opts) => {
    const copyTimeoutSeconds = parseNumberArg("--copy-timeout", opts.copyTimeout, COPY_TIMEOUT);
    const embedded = opts.embedded === true ? ".flussonic-backup" : opts.embedded;
    if (opts.dryRun) {
      // The dry run sends nothing to the queues; the choice is still checked like run's.
      checkQueueChoice(opts, { embedded: embedded !== undefined });
      const { dryRunCommand } = await import("./dry-run.ts");
      process.exitCode = await dryRunCommand({ configFile: opts.config, embedded, copyTimeoutSeconds });
      return;
    }
    if (opts.verbose) {
      process.stderr.write(
        "note: run --verbose logs every window as before; its own name is now --log-windows (--verbose also prints the stack trace on a failure, as in every command)\n",
      );
    }
    const { runCommand } = await import("./run.ts");
    process.exitCode = await runCommand({
      configFile: opts.config,
      once: Boolean(opts.once),
      embedded,
      verbose: Boolean(opts.logWindows || opts.verbose),
      copyTimeoutSeconds,
      queues: opts.queues,
      stateDir: opts.stateDir,
      s3Checksums: opts.s3Checksums,
      conditionalWrites: opts.conditionalWrites,
      graceSeconds: parseNumberArg("--grace-seconds", opts.graceSeconds, {
        unit: "whole seconds",
        min: 0,
        max: 3600,
      }),
      metricsPort:
        opts.metricsPort === undefined
          ? undefined
          : parseNumberArg("--metrics-port", opts.metricsPort, {
              unit: "a port number",
              min: 0,
              max: 65_535,
            }),
      metricsHost: opts.metricsHost,
    });
  });

const config = program.command("config").description("Check a configuration file or print its JSON Schema");
config
  .command("check")
  .description("Validate a configuration file and the environment variables it names")
  .argument("<file>", "configuration file")
  .option("--no-env", "do not check that the secrets' environment variables are set")
  .action(async (file: string, opts: { env: boolean }) => {
    const { configWarnings, loadConfigFile, resolveAllCredentials } = await import(
      "../../functions/config/config.ts"
    );
    const cfg = loadConfigFile(file);
    if (opts.env) resolveAllCredentials(cfg, file, process.env);
    for (const warning of configWarnings(cfg)) process.stderr.write(`warning: ${warning}\n`);
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
  .action(async () => {
    const { configJsonSchema } = await import("../../functions/config/config.ts");
    process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
  });

program
  .command("demo")
  .description(
    "The demo behind `npm start`: a simulated Flussonic, the embedded emulator, a full backup, a coverage summary",
  )
  .addOption(textDefault("--dir <dir>", "where the demo keeps its emulator state across runs", ".demo"))
  .addOption(textDefault("--streams <n>", "simulated streams", 4))
  .addOption(textDefault("--hours <n>", "hours of archive", 3))
  .action(async (opts) => {
    const { demoCommand } = await import("./demo.ts");
    process.exitCode = await demoCommand({
      dir: opts.dir,
      streams: parseNumberArg("--streams", opts.streams, DEMO_STREAMS),
      hours: parseNumberArg("--hours", opts.hours, DEMO_HOURS),
    });
  });

/** The help line of the commands that take `--from`/`--to`. */
const TIMES_HELP = "\nTimes: ISO 8601 (UTC unless a zone is given) or unix seconds.";

/** Options of every operator command: where the backup is (the queues: the same choice as `run`). */
function targetOptions(command: Command): Command {
  return queueOptions(
    command
      .option("-c, --config <file>", "configuration file (JSON, comments allowed)")
      .option(
        "--embedded [dir]",
        "use the embedded S3/SQS emulator with its state in dir (default .flussonic-backup), like `run --embedded`",
      )
      .option(
        "--demo [dir]",
        "the demo's backup: the configuration and emulator state `npm start` keeps in dir (default .demo)",
      ),
  )
    .option("--verbose", "on a failure, print the stack trace too (also with DEBUG set)")
    .addHelpText(
      "after",
      "\nEndpoints: AWS_REGION, credentials and AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL_SQS select where the backup is\nunless --embedded or --demo is given; with --queues embedded (as `run` was given) only the S3 one is used.",
    );
}

targetOptions(
  program
    .command("status")
    .description(
      "Per source and stream: archive vs backup (coverage, missing, not yet due, lag, bytes) and the queues",
    )
    .option("--source <name>", "only this source")
    .option("--stream <name>", "only this stream")
    .option("--json", "print the status as JSON")
    .option("--html <file>", "write a self-contained HTML page with a timeline per stream")
    .addOption(copyTimeoutOption("the copier timeout the planner sizes windows with")),
).action(async (opts) => {
  const copyTimeoutSeconds = parseNumberArg("--copy-timeout", opts.copyTimeout, COPY_TIMEOUT);
  const { statusCommand } = await import("./status.ts");
  const { operatorAction } = await import("./backup-target.ts");
  await operatorAction(() => statusCommand({ ...opts, copyTimeoutSeconds }));
});

targetOptions(
  program
    .command("cost")
    .description(
      "Per source and stream: bytes stored by storage class, S3 requests and Lambda GB-seconds counted, the month at list prices",
    )
    .option("--since <time>", "windows copied from this time on (default: the last 30 days)")
    .option("--source <name>", "only this source")
    .option("--stream <name>", "only this stream")
    .option("--json", "print the report as JSON"),
).action(async (opts) => {
  const { costCommand } = await import("./cost.ts");
  const { operatorAction } = await import("./backup-target.ts");
  await operatorAction(() => costCommand(opts));
});

targetOptions(
  program
    .command("verify")
    .description(
      "Re-read stored windows and compare size and SHA-256 with the copy records (exit 1 on any problem)",
    )
    .option("--source <name>", "only this source")
    .option("--stream <name>", "only this stream")
    .option("--from <time>", "only windows ending after this time")
    .option("--to <time>", "only windows starting before this time")
    .option("--json", "print the report as JSON")
    .option(
      "--repair",
      "stop counting missing, corrupt and short windows as backed up, so the next run copies them again (exit 1 only on what is left unrepaired)",
    )
    .addHelpText("after", TIMES_HELP),
).action(async (opts) => {
  const { verifyCommand } = await import("./verify.ts");
  const { operatorAction } = await import("./backup-target.ts");
  await operatorAction(() => verifyCommand(opts));
});

targetOptions(
  program
    .command("reindex")
    .description(
      "Build the fragment index (for playback) of windows stored before copiers recorded it, by ranged reads from S3",
    )
    .option("--source <name>", "only this source")
    .option("--stream <name>", "only this stream")
    .option("--from <time>", "only windows ending after this time")
    .option("--to <time>", "only windows starting before this time")
    .addHelpText("after", TIMES_HELP),
).action(async (opts) => {
  const { reindexCommand } = await import("./reindex.ts");
  const { operatorAction } = await import("./backup-target.ts");
  await operatorAction(() => reindexCommand(opts));
});

targetOptions(
  program
    .command("rebuild")
    .description(
      "Rebuild a source's manifests, catalogs and fragment index from its stored windows (read back from S3, never from the source)",
    )
    .requiredOption("--source <name>", "the source")
    .option("--stream <name>", "only this stream"),
).action(async (opts) => {
  const { rebuildCommand } = await import("./rebuild.ts");
  const { operatorAction } = await import("./backup-target.ts");
  await operatorAction(() => rebuildCommand(opts));
});

targetOptions(
  program
    .command("restore")
    .description("Bring a time range of one stream back as one playable file in the stored format")
    .requiredOption("--source <name>", "source")
    .requiredOption("--stream <name>", "stream")
    .requiredOption("--from <time>", "start of the range")
    .requiredOption("--to <time>", "end of the range")
    .requiredOption("--out <file>", "file to write (.mp4 or .ts, as stored)")
    .option("--allow-gaps", "join what the backup has even when the range has holes")
    .addHelpText("after", TIMES_HELP),
).action(async (opts) => {
  const { restoreCommand } = await import("./restore.ts");
  const { operatorAction } = await import("./backup-target.ts");
  await operatorAction(() => restoreCommand(opts));
});

/** The range options of `hold`, `release` and `export`. */
const RANGE_HELP = `${TIMES_HELP}\nWho: --by names the operator in the audit trail (default user@host).`;

targetOptions(
  program
    .command("hold")
    .description(
      "Keep a range of one stream past its retention (a case is open): each stored window overlapping it is held, and windows stored later inside it",
    )
    .requiredOption("--source <name>", "source")
    .requiredOption("--stream <name>", "stream")
    .requiredOption("--from <time>", "start of the range")
    .requiredOption("--to <time>", "end of the range")
    .requiredOption("--reason <text>", "why (kept with the hold and in the audit trail)")
    .option("--by <name>", "who holds it (default user@host)")
    .addHelpText("after", RANGE_HELP),
).action(async (opts) => {
  const { holdCommand } = await import("./hold.ts");
  const { operatorAction } = await import("./backup-target.ts");
  await operatorAction(() => holdCommand(opts));
});

targetOptions(
  program
    .command("release")
    .description("Release a hold (by --id, or the --stream/--from/--to it was made with)")
    .requiredOption("--source <name>", "source")
    .option("--id <hold>", "the hold's id (`holds` lists them)")
    .option("--stream <name>", "stream")
    .option("--from <time>", "start of the range")
    .option("--to <time>", "end of the range")
    .option("--by <name>", "who releases it (default user@host)")
    .addHelpText("after", RANGE_HELP),
).action(async (opts) => {
  const { releaseCommand } = await import("./hold.ts");
  const { operatorAction } = await import("./backup-target.ts");
  await operatorAction(() => releaseCommand(opts));
});

targetOptions(
  program
    .command("holds")
    .description("List the holds in the bucket")
    .option("--source <name>", "only this source")
    .option("--stream <name>", "only this stream")
    .option("--json", "print them as JSON"),
).action(async (opts) => {
  const { holdsCommand } = await import("./hold.ts");
  const { operatorAction } = await import("./backup-target.ts");
  await operatorAction(() => holdsCommand(opts));
});

targetOptions(
  signingOptions(
    program
      .command("export")
      .description(
        "Export a range of one stream as a clip (as `restore` does) with <clip>.evidence.json: what it was made of, signed",
      )
      .requiredOption("--source <name>", "source")
      .requiredOption("--stream <name>", "stream")
      .requiredOption("--from <time>", "start of the range")
      .requiredOption("--to <time>", "end of the range")
      .requiredOption("--out <file>", "clip to write (.mp4 or .ts, as stored)")
      .option("--allow-gaps", "join what the backup has even when the range has holes (they are listed)"),
  )
    .option("--by <name>", "who exports (default user@host)")
    .addHelpText("after", RANGE_HELP),
).action(async (opts) => {
  const { exportCommand } = await import("./export.ts");
  const { operatorAction } = await import("./backup-target.ts");
  await operatorAction(() => exportCommand(opts));
});

const exportKey = program.command("export-key").description("Signing keys of exports and day proofs");
exportKey
  .command("init")
  .description("Write a new Ed25519 key pair: <file> (private, mode 0600) and <file>.pub.pem")
  .requiredOption("--out <file>", "the private key file to write (never overwritten)")
  .action(async (opts) => {
    const { exportKeyInitCommand } = await import("./export.ts");
    process.exitCode = exportKeyInitCommand(opts);
  });
exportKey
  .command("public")
  .description("Write the PEM public key of a KMS signing key (GetPublicKey), for verify-export --public-key")
  .requiredOption("--kms-key <arn|alias>", "the KMS key (ECC_NIST_EDWARDS25519) that signs")
  .requiredOption("--out <file>", "the public key file to write (never overwritten)")
  .action(async (opts) => {
    const { exportKeyPublicCommand } = await import("./export.ts");
    const { operatorAction } = await import("./backup-target.ts");
    await operatorAction(() => exportKeyPublicCommand(opts));
  });

targetOptions(
  program
    .command("verify-export")
    .description(
      "Check an exported clip with the public key alone: the evidence's signature, the clip's SHA-256, and (given the backup) its windows",
    )
    .argument("<clip>", "the exported clip (its evidence is <clip>.evidence.json)")
    .requiredOption("--public-key <file>", "the PEM public key of the export key")
    .addHelpText(
      "after",
      "\nWithout -c/--embedded/--demo only the files are checked; with them, every window the clip names is read back.",
    ),
).action(async (clip: string, opts) => {
  const { verifyExportCommand } = await import("./export.ts");
  const { operatorAction } = await import("./backup-target.ts");
  await operatorAction(() => verifyExportCommand({ ...opts, clip }));
});

targetOptions(
  program
    .command("audit")
    .description(
      "List the audit trail: exports, holds, releases, playback tokens, verify --repair and rebuild",
    )
    .option("--since <time>", "only records from this time on")
    .option("--json", "print them as JSON")
    .addHelpText("after", TIMES_HELP),
).action(async (opts) => {
  const { auditCommand } = await import("./audit.ts");
  const { operatorAction } = await import("./backup-target.ts");
  await operatorAction(() => auditCommand(opts));
});

targetOptions(
  signingOptions(
    program
      .command("prove")
      .description(
        "A stream's day: the signed statement of what the backup held (made once, kept), a window's inclusion proof, or a check",
      )
      .requiredOption("--source <name>", "source")
      .requiredOption("--stream <name>", "stream")
      .requiredOption("--day <YYYY-MM-DD>", "the UTC day")
      .option("--window <time>", "print the inclusion proof of the window holding this time")
      .option(
        "--check",
        "compare the stored windows with the day's proof now (exit 1 when one is gone or changed)",
      ),
  )
    .option("--public-key <file>", "with --check: also check the proof's signature")
    .addHelpText("after", TIMES_HELP),
).action(async (opts) => {
  const { proveCommand } = await import("./prove.ts");
  const { operatorAction } = await import("./backup-target.ts");
  await operatorAction(() => proveCommand(opts));
});

targetOptions(
  program
    .command("redrive")
    .description("Move a source's dead-lettered windows back to its copy queue (after fixing the cause)")
    .requiredOption("--source <name>", "source")
    .option("--dry-run", "list the dead-lettered windows and their reasons, move nothing"),
).action(async (opts) => {
  const { redriveCommand } = await import("./redrive.ts");
  const { operatorAction } = await import("./backup-target.ts");
  await operatorAction(() => redriveCommand(opts));
});

targetOptions(
  program
    .command("pause")
    .description(
      "Pause a source for maintenance: nothing planned or copied, no request to it, until `resume` (all runtimes)",
    )
    .requiredOption("--source <name>", "source")
    .option("--reason <text>", "why (kept with the switch and logged by the planner)"),
).action(async (opts) => {
  const { pauseCommand } = await import("./pause.ts");
  const { operatorAction } = await import("./backup-target.ts");
  await operatorAction(() => pauseCommand(opts, true));
});

targetOptions(
  program
    .command("resume")
    .description("Resume a source paused with `pause`")
    .requiredOption("--source <name>", "source"),
).action(async (opts) => {
  const { pauseCommand } = await import("./pause.ts");
  const { operatorAction } = await import("./backup-target.ts");
  await operatorAction(() => pauseCommand(opts, false));
});

targetOptions(
  program
    .command("serve")
    .description(
      "Watch the backup: Flussonic's DVR playback URLs served from S3, and a page with timelines and a player at /",
    )
    .addOption(textDefault("--host <address>", "address to listen on", "127.0.0.1"))
    .addOption(textDefault("--port <port>", "port to listen on (0: any free)", 8090))
    .option("--no-auth", "no playback tokens (allowed only on a loopback host)")
    .option(
      "--cors-origin <origin>",
      "let players on this origin (scheme://host[:port], or * for any) read answers; repeatable (default: none)",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option(
      "--allowed-host <name>",
      "also answer requests whose Host is this name (besides IP addresses, localhost and this machine's name); repeatable",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option(
      "--upstream <url>",
      "the Flussonic server (http://host:port) whose playback URLs /{stream}/{file} are forwarded to it while it answers and served from the backup when it does not",
    )
    .addOption(
      textDefault(
        "--upstream-timeout <ms>",
        "how long to wait for the server's answer before serving from the backup",
        3000,
      ),
    ),
).action(async (opts) => {
  const { serveCommand } = await import("./serve.ts");
  const { operatorAction } = await import("./backup-target.ts");
  await operatorAction(() =>
    serveCommand({
      ...opts,
      port: parseNumberArg("--port", opts.port, { unit: "a port number", min: 0, max: 65_535 }),
      upstreamTimeoutMs: parseNumberArg("--upstream-timeout", opts.upstreamTimeout, {
        unit: "milliseconds",
        min: 1,
        max: 600_000,
      }),
    }),
  );
});

program
  .command("playback-token")
  .description("Print a playback token (?token=) for a source or one stream; the token is the last line")
  .requiredOption("-c, --config <file>", "configuration file (JSON, comments allowed)")
  .requiredOption("--source <name>", "source")
  .option("--stream <name>", "only this stream (default: every stream of the source)")
  .addOption(textDefault("--ttl <seconds>", "how long the token is valid", 86_400))
  .option("--embedded [dir]", "the audit record goes to the backup `run --embedded` keeps in dir")
  .option("--by <name>", "who issues the token, for the audit trail (default user@host)")
  .option("--require-audit", "issue no token unless its audit record is written")
  .option("--no-audit", "do not write the audit record (nor try)")
  .addHelpText(
    "after",
    "\nThe key is the first of the comma-separated secrets in the environment variable the configuration's\nplayback.tokenKeysEnv names (default FLUSSONIC_BACKUP_PLAYBACK_KEYS); `serve` accepts tokens signed with any of them.\nEach token is recorded in the audit trail of the configuration's bucket (the AWS variables, or --embedded);\nwithout access to it the token is still printed and stderr says no record was written.",
  )
  .action(async (opts) => {
    const ttlSeconds = parseNumberArg("--ttl", opts.ttl, { unit: "whole seconds", min: 1, max: 31_536_000 });
    const { playbackTokenCommand } = await import("./playback-token.ts");
    const { operatorAction } = await import("./backup-target.ts");
    const { UsageError } = await import("./usage-error.ts");
    if (opts.requireAudit && opts.audit === false)
      throw new UsageError("--require-audit and --no-audit: give one of them");
    const audit = opts.audit === false ? "off" : opts.requireAudit ? "required" : "auto";
    await operatorAction(() => playbackTokenCommand({ ...opts, ttlSeconds, audit }));
  });

try {
  await program.parseAsync();
} catch (error) {
  // --help and --version end with exit code 0; commander's usage errors (its message is printed
  // already) exit 2 like ours.
  if (error instanceof CommanderError) process.exitCode = error.exitCode === 0 ? 0 : 2;
  else process.exitCode = await reportFailure(error);
}

/** `--copy-timeout <seconds>`: text with a text default, parsed strictly by the action. */
/** How `export` and `prove` sign: a local Ed25519 key or an AWS KMS key. */
function signingOptions(command: Command): Command {
  return command
    .option(
      "--key <file>",
      "the Ed25519 signing key (default: evidence.kmsKey, else the PEM in evidence.signingKeyEnv)",
    )
    .option(
      "--kms-key <arn|alias>",
      "sign with this AWS KMS key (ECC_NIST_EDWARDS25519) instead of a local key",
    );
}

function copyTimeoutOption(description: string): Option {
  return textDefault("--copy-timeout <seconds>", description, DEFAULT_COPY_TIMEOUT_SECONDS);
}

/**
 * An option whose value is text (parsed strictly by the action, see number-arg.ts) with a default,
 * shown in --help as written (`default: 900`, not the quoted string commander shows for text).
 */
function textDefault(flags: string, description: string, value: string | number): Option {
  return new Option(flags, description).default(String(value), String(value));
}

/**
 * The one error boundary of every command: usage and configuration errors print their message
 * (exit 2); failures a user can meet print one or two lines naming the resource and what to do
 * (exit 1); anything else its name and message. The stack only with --verbose or DEBUG set.
 */
async function reportFailure(error: unknown): Promise<number> {
  const verbose =
    process.argv.slice(2).some((a) => a === "--verbose" || a === "-v") || Boolean(process.env.DEBUG);
  const stack = () => {
    if (verbose && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  };
  const { ConfigError } = await import("../../functions/config/config.ts");
  if (error instanceof UsageError || error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    stack();
    return 2;
  }
  const { explainError, errorContext } = await import("./error-messages.ts");
  const explained = explainError(error, errorContext);
  const command = process.argv[2] ?? "";
  if (explained) {
    process.stderr.write(`flussonic-backup ${command}: ${explained}\n`);
  } else {
    const what = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    process.stderr.write(
      `flussonic-backup ${command} failed: ${what}${verbose ? "" : " (--verbose or DEBUG=1 shows the stack)"}\n`,
    );
  }
  stack();
  return 1;
}
