// A command in a private mount namespace of its own: what it mounts there is gone when it exits,
// and nothing propagates back to the machine.
export const UNSHARE = "/usr/bin/unshare";

/** unshare's arguments that run script with sh, its "$@" being rest, in a private mount namespace. */
export function privateMountArgs(script: string, rest: string[]): string[] {
  return ["--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh", ...rest];
}
