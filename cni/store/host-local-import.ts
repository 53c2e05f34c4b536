// Migration from host-local: its directory for a network holds one file per address, named by
// the address and containing "<id>\r\n<ifname>" (or only "<id>" in old versions). On first use
// berth takes those over as reservations, so switching a network from host-local to berth-ipam
// can never hand out an address that a running container still has.
import { closeSync, constants, openSync, readdirSync, readSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import type { StatementSync } from "node:sqlite";
import { formatIp, ipKey, parseIp } from "../ip.ts";
import { fsFailure } from "./errors.ts";
import type { Reservation } from "./store.ts";

const MARK = "host-local-imported";
// A record holds a container ID and an interface name; anything longer is not one of host-local's.
const MAX_RECORD = 4096;

/** The names in dir that are host-local record files (named by their address, as host-local writes them). */
function recordNames(dir: string): string[] {
  let entries: import("node:fs").Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    // Not knowing host-local's records could hand out an address a container still has.
    throw fsFailure("read the directory", dir, e);
  }
  return entries
    .filter((d) => d.isFile()) // never through a link
    .map((d) => d.name)
    .filter((name) => {
      const ip = parseIp(name);
      return ip !== undefined && formatIp(ip) === name; // not lock, last_reserved_ip.N, berth.db, …
    });
}

/** True when dir holds host-local records: a network host-local used, which berth takes over. */
export const hasHostLocalRecords = (dir: string): boolean => recordNames(dir).length > 0;

/** A record file's content, at most MAX_RECORD bytes, never through a link; undefined if unreadable. */
function readRecord(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const buf = Buffer.alloc(MAX_RECORD);
    return buf.subarray(0, readSync(fd, buf, 0, MAX_RECORD, 0)).toString("utf8");
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Parses one host-local record file's content. */
export function parseHostLocalRecord(content: string): { containerId: string; ifname: string } | undefined {
  const [id = "", ifname = ""] = content.split(/\r?\n/).map((s) => s.trim());
  return id === "" ? undefined : { containerId: id, ifname };
}

/**
 * Runs inside the store's write transaction; does the directory walk once per network. Returns how
 * many addresses it took over (none when it ran before).
 */
export function importHostLocalRecords(dir: string, q: (sql: string) => StatementSync): number {
  if (q("SELECT 1 FROM meta WHERE key = ?").get(MARK)) return 0;
  const names = recordNames(dir);
  const insert = q(
    "INSERT OR IGNORE INTO reservation (ip, container_id, ifname, range_set, imported) VALUES (?, ?, ?, '', 1)",
  );
  let taken = 0;
  for (const name of names) {
    const ip = parseIp(name);
    if (!ip) continue;
    const content = readRecord(join(dir, name));
    // An empty file is what a host-local crash leaves, and an unreadable one says no more: the
    // owner is unknown, so keep the address out of circulation under a placeholder owner that GC
    // can release.
    const rec = content === undefined ? undefined : parseHostLocalRecord(content);
    const owner = rec ?? { containerId: "host-local-unknown", ifname: "" };
    taken += Number(insert.run(ipKey(ip), owner.containerId, owner.ifname).changes);
  }
  q("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)").run(MARK, new Date().toISOString());
  return taken;
}

/** After releasing taken-over records, remove their files so host-local would not see them taken. */
export function releaseHostLocalFiles(dir: string, released: readonly Reservation[]): void {
  for (const r of released) {
    const file = join(dir, formatIp(r.ip));
    try {
      const content = readRecord(file);
      const rec = content === undefined ? undefined : parseHostLocalRecord(content);
      if (content !== undefined && (!rec || rec.containerId === r.containerId)) unlinkSync(file);
    } catch {
      // already gone
    }
  }
}
