// resolvConf: a resolv.conf file turned into the result's dns, as host-local's dns.go does it.
import { readFileSync } from "node:fs";
import { ioFailure } from "../shared/cni/errors.ts";
import type { Dns } from "../shared/cni/result.ts";
import { errorMessage } from "../shared/json.ts";

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

export function readResolvConf(path: string): Dns {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === "ENOENT";
    throw ioFailure(`open ${path}: ${missing ? "no such file or directory" : errorMessage(e)}`);
  }
  return parseResolvConf(text);
}
