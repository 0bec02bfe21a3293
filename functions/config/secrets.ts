/**
 * A source's credentials: resolved from environment variables (local runtime) or the Secrets
 * Manager secret the config names (AWS), held in values that never print themselves.
 */
import { inspect } from "node:util";
import { ConfigError } from "./parse.ts";
import type { AuthConfig, BackupConfig } from "./schema.ts";
/** A secret value that never prints itself: logs, errors and JSON show `***`. */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  /** The value, for the one place that puts it on the wire. */
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return "***";
  }
  toJSON(): string {
    return "***";
  }
  [inspect.custom](): string {
    return "Secret(***)";
  }
}

/** Credentials of one source, with secrets resolved. */
export type SourceCredentials =
  | { type: "none" }
  | { type: "basic"; username: string; password: Secret }
  | { type: "bearer"; token: Secret }
  | { type: "token"; token: Secret };

/** Looks up a source's secrets; `lookup` returns undefined when a secret is not set. */
export function resolveCredentials(
  auth: AuthConfig,
  lookup: (name: string) => string | undefined,
  where: string,
): SourceCredentials {
  const need = (name: string | undefined, field: string, secretField: string): Secret => {
    if (name === undefined) {
      throw new ConfigError([
        `${where}.auth.${field}: is required here: this runtime reads secrets from environment variables (${secretField} is read in AWS only)`,
      ]);
    }
    const value = lookup(name);
    if (value === undefined || value === "") {
      throw new ConfigError([`${where}.auth.${field}: environment variable ${name} is not set`]);
    }
    return new Secret(value);
  };
  switch (auth.type) {
    case "none":
      return { type: "none" };
    case "basic":
      return {
        type: "basic",
        username: auth.username,
        password: need(auth.passwordEnv, "passwordEnv", "passwordSecret"),
      };
    case "bearer":
      return { type: "bearer", token: need(auth.tokenEnv, "tokenEnv", "tokenSecret") };
    case "token":
      return { type: "token", token: need(auth.tokenEnv, "tokenEnv", "tokenSecret") };
  }
}

/** The Secrets Manager secret (name or ARN) of a source's credentials, if the config names one. */
export function authSecretReference(
  auth: AuthConfig,
): { field: string; secret: string | undefined } | undefined {
  switch (auth.type) {
    case "none":
      return undefined;
    case "basic":
      return { field: "passwordSecret", secret: auth.passwordSecret };
    case "bearer":
    case "token":
      return { field: "tokenSecret", secret: auth.tokenSecret };
  }
}

/** Builds a source's credentials from the value of its secret (read from Secrets Manager). */
export function credentialsFromSecret(auth: AuthConfig, value: string): SourceCredentials {
  switch (auth.type) {
    case "none":
      return { type: "none" };
    case "basic":
      return { type: "basic", username: auth.username, password: new Secret(value) };
    case "bearer":
      return { type: "bearer", token: new Secret(value) };
    case "token":
      return { type: "token", token: new Secret(value) };
  }
}

/** Resolves every source's credentials from `env`, reporting every missing variable at once. */
export function resolveAllCredentials(
  config: BackupConfig,
  file: string,
  env: NodeJS.ProcessEnv,
): Map<string, SourceCredentials> {
  const out = new Map<string, SourceCredentials>();
  const problems: string[] = [];
  config.sources.forEach((source, i) => {
    try {
      out.set(
        source.name,
        resolveCredentials(source.auth, (n) => env[n], `${file}: sources[${i}]`),
      );
    } catch (error) {
      if (error instanceof ConfigError) problems.push(...error.problems);
      else throw error;
    }
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}
