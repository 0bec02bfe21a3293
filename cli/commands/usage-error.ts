/** A command-line value the command cannot use; the CLI prints the message and exits with status 2. */
export class UsageError extends Error {
  readonly code = "FB_USAGE";
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
