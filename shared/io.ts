// The only I/O the protocol library does: read all of stdin once, write stdout/stderr once.
// Synchronous on purpose: these programs are short-lived, and a single write per stream means a
// killed process never leaves half a JSON document for the runtime or the kubelet to parse.
import { readSync, writeSync } from "node:fs";

/** Default cap on stdin: a network config with prevResult or a kubelet request is a few KiB. */
export const MAX_STDIN_BYTES = 4 * 1024 * 1024;

export type StdinRead = { ok: true; text: string } | { ok: false; reason: "too-large" | "unreadable"; detail: string };

export function readStdin(maxBytes: number = MAX_STDIN_BYTES): StdinRead {
  const chunks: Buffer[] = [];
  let total = 0;
  const buf = Buffer.allocUnsafe(65536);
  for (;;) {
    let n: number;
    try {
      n = readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EAGAIN") continue; // a non-blocking pipe with nothing yet
      if (code === "EOF" || code === "EBADF") break; // no stdin at all reads as empty
      return { ok: false, reason: "unreadable", detail: code ?? "read error" };
    }
    if (n === 0) break;
    total += n;
    if (total > maxBytes) return { ok: false, reason: "too-large", detail: `more than ${maxBytes} bytes` };
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return { ok: true, text: Buffer.concat(chunks).toString("utf8") };
}

function writeAll(fd: number, text: string): void {
  const data = Buffer.from(text, "utf8");
  let off = 0;
  while (off < data.length) {
    try {
      off += writeSync(fd, data, off, data.length - off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EAGAIN") continue;
      return; // the reader went away; nothing useful left to do
    }
  }
}

export function writeStdout(text: string): void {
  writeAll(1, text);
}

export function writeStderr(text: string): void {
  writeAll(2, text);
}
