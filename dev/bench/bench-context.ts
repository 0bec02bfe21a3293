/** What every figure of the benchmark gets: the mode, the emulator process and a progress line. */
import { readFileSync } from "node:fs";
import type { S3Client } from "@aws-sdk/client-s3";
import type { EmulatorProcess } from "../kit/emulator-process.ts";

export interface BenchContext {
  /** Small sizes that run in seconds (checks the bench works, not the figures). */
  smoke: boolean;
  emulator: EmulatorProcess;
  s3: S3Client;
  /** Why rclone's rows are skipped, or undefined when rclone runs. */
  rcloneUnavailable: string | undefined;
  /** The simulated sources of figures 1 and 2 answer Range (`--ranges`): copies read in paced slices. */
  ranges?: boolean;
  /**
   * `--capture`: figure 6 also measures the source's rate from the packets (tcpdump); a string says
   * why it cannot here (tcpdump missing or not permitted), undefined: not asked.
   */
  capture?: true | string;
  /** Where profiles and scratch files go (bench-results/). */
  outDir: string;
  progress(line: string): void;
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); 0 elsewhere. */
export function processCpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "latin1").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}
