// --log-file FILE: one JSON line per request, for the operator. The kubelet discards a plugin's
// stderr when it succeeds (pkg/credentialprovider/plugin/plugin.go: execPlugin.ExecPlugin reads it
// only on error), so an outage hidden by the cache would otherwise leave no trace. Loaded only
// when the flag is given.
//
// Many provider processes append at once (the kubelet runs one per image): each line is written
// with one write(2) on a descriptor opened O_APPEND, which Linux serialises for regular files, so
// lines never interleave. When the file reaches its limit it is renamed to FILE.1 (the one before
// is replaced), and only by a process that still sees the same file it measured, so two rotating
// at once cannot rotate twice.
import { closeSync, fstatSync, openSync, renameSync, statSync, writeSync } from "node:fs";

export type LogRecord = {
  time: string;
  image: string | undefined;
  /** the auth key answered for: the image's registry */
  registry: string | undefined;
  /** the ECR registry host asked (after the mirror map) */
  asked: string | undefined;
  source: "cache" | "ecr" | "stale-cache" | "error";
  /** node, assume-role or web-identity */
  identity: string | undefined;
  role: string | undefined;
  /** since the process started, as the kubelet waits */
  durationMs: number;
  warning?: string;
  error?: string;
};

/** Appends one line; returns why it could not (the caller warns). Never throws. */
export function appendLog(path: string, maxBytes: number, record: LogRecord): string | undefined {
  const line = Buffer.from(`${JSON.stringify(record)}\n`, "utf8");
  let fd: number | undefined;
  try {
    fd = openSync(path, "a", 0o600);
    const st = fstatSync(fd);
    if (st.size > 0 && st.size + line.length > maxBytes) {
      let current: ReturnType<typeof statSync> | undefined;
      try {
        current = statSync(path);
      } catch {
        current = undefined;
      }
      if (current && current.ino === st.ino && current.dev === st.dev) renameSync(path, `${path}.1`);
      closeSync(fd);
      fd = openSync(path, "a", 0o600);
    }
    const n = writeSync(fd, line);
    return n === line.length ? undefined : `short write (${n} of ${line.length} bytes)`;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? "write failed";
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
