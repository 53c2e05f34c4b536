// How an operator command fails: exit 1 with one line on stderr when the work failed, exit 2 when
// the command line itself is wrong (as the argument parser's own errors).
import type { CniError } from "../../shared/cni/errors.ts";

export class CliError extends Error {
  readonly exitCode: 1 | 2;
  /** The plugin's own error, when the failure is what a CNI command would have answered. */
  readonly cni: CniError | undefined;
  constructor(exitCode: 1 | 2, message: string, cni?: CniError) {
    super(message);
    this.name = "CliError";
    this.exitCode = exitCode;
    this.cni = cni;
  }
}

export const failure = (message: string): CliError => new CliError(1, message);
export const usageError = (message: string): CliError => new CliError(2, message);
