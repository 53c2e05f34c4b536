// CNI error codes (SPEC.md "Error codes") and the one error type every command throws.
// The dispatcher is the only place that turns a CniError into output.
import { errorMessage } from "../json.ts";

export const ErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IOFailure: 5,
  DecodingFailure: 6,
  InvalidNetworkConfig: 7,
  TryAgainLater: 11,
  PluginNotAvailable: 50,
  PluginNotAvailableLimitedConnectivity: 51,
  // Not in the spec: the Go libraries use 999 for every plain error, and host-local's allocation
  // failures therefore reach runtimes as 999. We keep it for those so runtimes see the same code.
  Internal: 999,
} as const;

export class CniError extends Error {
  readonly code: number;
  readonly details: string;
  constructor(code: number, msg: string, details = "") {
    super(msg);
    this.name = "CniError";
    this.code = code;
    this.details = details;
  }
}

export const incompatibleVersion = (msg: string, details = "") =>
  new CniError(ErrorCode.IncompatibleVersion, msg, details);
export const unknownContainer = (msg: string, details = "") => new CniError(ErrorCode.UnknownContainer, msg, details);
export const invalidEnv = (msg: string, details = "") => new CniError(ErrorCode.InvalidEnvironment, msg, details);
export const ioFailure = (msg: string, details = "") => new CniError(ErrorCode.IOFailure, msg, details);
export const decodingFailure = (msg: string, details = "") => new CniError(ErrorCode.DecodingFailure, msg, details);
export const invalidConfig = (msg: string, details = "") => new CniError(ErrorCode.InvalidNetworkConfig, msg, details);
export const tryAgainLater = (msg: string, details = "") => new CniError(ErrorCode.TryAgainLater, msg, details);
export const notAvailable = (msg: string, details = "") => new CniError(ErrorCode.PluginNotAvailable, msg, details);
export const internal = (msg: string, details = "") => new CniError(ErrorCode.Internal, msg, details);

/** Any thrown value as a CniError with a one-line message: never a stack trace on stdout. */
export function toCniError(e: unknown): CniError {
  if (e instanceof CniError) return e;
  return internal(errorMessage(e).split("\n")[0] || "internal error");
}
