// The runtimes' own record of every attachment: libcni (containerd, CRI-O, podman, nerdctl, any
// libcni runtime) writes the result of each successful ADD to
// `<cacheDir>/results/<network>-<containerID>-<ifname>` and removes it on DEL
// (containernetworking/cni libcni/api.go: cacheAdd, cacheDel, cachedInfo). What is there is what
// the node's containers hold, so a lost store can be rebuilt from it.
//
// Each file is libcni's cachedInfo as JSON: {"kind": "cniCacheV1", "containerId", "ifName",
// "networkName", "config" (base64), "netns" (newer libcni), "cniArgs", "capabilityArgs",
// "result"}. The result is in the network's cniVersion: `ips[].address` (0.3.0 and later) or
// `ip4.ip` / `ip6.ip` (0.1.0, 0.2.0), CIDR notation. The file name cannot be split reliably
// (network names and container IDs may contain "-"), so only the JSON fields identify the entry,
// as libcni's GetCachedAttachments does; files from before cniCacheV1 (a bare result) are skipped.
import { closeSync, constants, type Dirent, fstatSync, openSync, readdirSync, readSync } from "node:fs";
import { join } from "node:path";
import { asJsonObject, isJsonObject, type JsonObject } from "../../shared/json.ts";
import { errnoReason } from "../errno.ts";
import { parseCidr, type Ip } from "../ip.ts";

export const CNI_CACHE_KIND = "cniCacheV1";
// A cached result with its config is a few KiB; a file far larger is not one.
const MAX_ENTRY = 1024 * 1024;

/** One attachment of the network as the runtime's cache records it. */
export type CachedAttachment = {
  readonly network: string;
  readonly containerId: string;
  readonly ifname: string;
  /** The cached result's addresses, in its order, without their prefix lengths. */
  readonly addresses: readonly Ip[];
  /** The cache file it came from. */
  readonly file: string;
  /** The network namespace, when the runtime's libcni records it (newer libcni). */
  readonly netns?: string;
};

/** A file of the network that was not used, and why. */
export type CacheSkip = { readonly file: string; readonly reason: string };

export type CniCacheScan = {
  readonly dir: string;
  /** Sorted by file name. */
  readonly attachments: readonly CachedAttachment[];
  readonly skipped: readonly CacheSkip[];
};

/** At most MAX_ENTRY + 1 bytes of a regular file, never through a link. */
function readEntry(path: string): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    if (!fstatSync(fd).isFile()) throw new Error("not a regular file");
    const buf = Buffer.alloc(MAX_ENTRY + 1);
    let n = 0;
    for (let got = 1; got > 0 && n < buf.length; n += got) got = readSync(fd, buf, n, buf.length - n, n);
    if (n > MAX_ENTRY) throw new Error(`larger than ${MAX_ENTRY} bytes`);
    return buf.subarray(0, n).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

/** The addresses of a cached result of any CNI version; a reason string when it has none usable. */
function resultAddresses(result: JsonObject): Ip[] | string {
  const texts: unknown[] = [];
  if (Array.isArray(result.ips)) for (const ip of result.ips) texts.push(asJsonObject(ip)?.address);
  for (const k of ["ip4", "ip6"]) {
    const old = asJsonObject(result[k]);
    if (old) texts.push(old.ip);
  }
  if (texts.length === 0) return "the cached result lists no addresses";
  const out: Ip[] = [];
  for (const t of texts) {
    const c = typeof t === "string" ? parseCidr(t) : undefined;
    if (!c) return `the cached result has an invalid address ${JSON.stringify(t)}`;
    out.push(c.ip);
  }
  return out;
}

/** One cache file's entry for the network: the attachment, a skip, or undefined (another network's). */
function entryOf(file: string, text: string, network: string): CachedAttachment | CacheSkip | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { file, reason: "not JSON" };
  }
  if (!isJsonObject(parsed)) return { file, reason: "not a JSON object" };
  if (parsed.kind !== CNI_CACHE_KIND)
    return { file, reason: `not a libcni ${CNI_CACHE_KIND} entry (kind ${JSON.stringify(parsed.kind ?? null)})` };
  if (parsed.networkName !== network) {
    // the name only looked like this network's ("<network>-…" is also a prefix of "<network>-x-…")
    if (typeof parsed.networkName === "string" && parsed.networkName !== "") return undefined;
    return { file, reason: "no networkName" };
  }
  const { containerId, ifName, result, netns } = parsed;
  if (typeof containerId !== "string" || containerId === "") return { file, reason: "no containerId" };
  if (typeof ifName !== "string" || ifName === "") return { file, reason: "no ifName" };
  const res = asJsonObject(result);
  if (!res) return { file, reason: "no result" };
  const addresses = resultAddresses(res);
  if (typeof addresses === "string") return { file, reason: addresses };
  return {
    network,
    containerId,
    ifname: ifName,
    addresses,
    file,
    ...(typeof netns === "string" && netns !== "" ? { netns } : {}),
  };
}

/**
 * Reads a libcni result cache directory (e.g. /var/lib/cni/results) and returns the network's
 * attachments and their addresses, and the network's files it could not use. Files of other
 * networks are ignored. Throws an Error naming the directory if it cannot be read.
 */
export function readCniCache(dir: string, network: string): CniCacheScan {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    throw new Error(`cannot read the CNI result cache ${dir}: ${errnoReason(e)}`);
  }
  const attachments: CachedAttachment[] = [];
  const skipped: CacheSkip[] = [];
  const prefix = `${network}-`;
  for (const d of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (!d.name.startsWith(prefix)) continue;
    const file = join(dir, d.name);
    if (!d.isFile()) {
      skipped.push({ file, reason: d.isSymbolicLink() ? "a symbolic link" : "not a regular file" });
      continue;
    }
    let text: string;
    try {
      text = readEntry(file);
    } catch (e) {
      skipped.push({ file, reason: `unreadable: ${errnoReason(e)}` });
      continue;
    }
    const entry = entryOf(file, text, network);
    if (!entry) continue;
    if ("reason" in entry) skipped.push(entry);
    else attachments.push(entry);
  }
  return { dir, attachments, skipped };
}
