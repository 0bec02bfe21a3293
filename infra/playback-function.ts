/**
 * A Lambda function of playback (the playback handler, the signing-key custom resource): made as
 * the backup's are (infra/backup-function.ts), with a role that only reads keys and secrets, and
 * `files` copied beside the bundle (the page and hls.js the playback function serves).
 */
import type { Construct } from "constructs";
import { BackupFunction, type BackupFunctionProps } from "./backup-function.ts";

export interface PlaybackFunctionProps extends Omit<BackupFunctionProps, "name" | "roleScope"> {
  /** The entry `functions/lambda/<entry>.ts`. */
  entry: "playback" | "playback-signing-key";
}

export class PlaybackFunction extends BackupFunction {
  constructor(scope: Construct, id: string, props: PlaybackFunctionProps) {
    const { entry, ...rest } = props;
    super(scope, id, { ...rest, name: entry, roleScope: "only the keys and secrets it reads" });
  }
}
