// A file-system error in words, for messages that say what failed and where.

/** A Node file-system error's reason with its code: "no such file or directory (ENOENT)". */
export function errnoReason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.code === "string" && typeof err.errno === "number") {
    const { getSystemErrorMessage } = process.getBuiltinModule("node:util") as typeof import("node:util");
    return `${getSystemErrorMessage(err.errno)} (${err.code})`;
  }
  return err instanceof Error ? err.message.split("\n")[0] || String(e) : String(e);
}
