// resolvConf: a resolv.conf file turned into the result's dns, as host-local's dns.go does it.
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from "node:fs";
import { invalidConfig, ioFailure } from "../shared/cni/errors.ts";
import type { Dns } from "../shared/cni/result.ts";
import { errnoReason } from "./errno.ts";

export function parseResolvConf(text: string): Dns {
  const dns: Dns = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const fields = line.split(/\s+/);
    if (fields.length < 2) continue;
    const [key, first, ...rest] = fields as [string, string, ...string[]];
    switch (key) {
      case "nameserver":
        dns.nameservers = [...(dns.nameservers ?? []), first];
        break;
      case "domain":
        dns.domain = first; // the last one wins
        break;
      case "search":
        dns.search = [...(dns.search ?? []), first, ...rest];
        break;
      case "options":
        dns.options = [...(dns.options ?? []), first, ...rest];
        break;
    }
  }
  return dns;
}

// A resolv.conf is a few lines; glibc reads at most a few names of each kind from it.
export const MAX_RESOLV_CONF = 64 * 1024;

/**
 * Reads resolvConf: only a regular file of at most 64 KiB, read with one bounded read. A FIFO, a
 * device (/dev/zero would be read for ever), a directory or a huge file is an invalid config
 * (code 7); a file that cannot be opened or read is an I/O failure (code 5). Opened non-blocking
 * so that a FIFO without a writer answers at once instead of hanging.
 */
export function readResolvConf(path: string): Dns {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === "ENOENT";
    throw ioFailure(`open ${path}: ${missing ? "no such file or directory" : errnoReason(e)}`);
  }
  try {
    let st: Stats;
    try {
      st = fstatSync(fd);
    } catch (e) {
      throw ioFailure(`stat ${path}: ${errnoReason(e)}`);
    }
    if (!st.isFile()) throw invalidConfig(`ipam.resolvConf ${path} is not a regular file`);
    const tooBig = () => invalidConfig(`ipam.resolvConf ${path} is larger than ${MAX_RESOLV_CONF / 1024} KiB`);
    if (st.size > MAX_RESOLV_CONF) throw tooBig();
    const buf = Buffer.alloc(MAX_RESOLV_CONF + 1);
    let n = 0;
    try {
      for (let got = 1; got > 0 && n < buf.length; n += got) got = readSync(fd, buf, n, buf.length - n, n);
    } catch (e) {
      throw ioFailure(`read ${path}: ${errnoReason(e)}`);
    }
    if (n > MAX_RESOLV_CONF) throw tooBig(); // it grew since fstat
    return parseResolvConf(buf.subarray(0, n).toString("utf8"));
  } finally {
    closeSync(fd);
  }
}
