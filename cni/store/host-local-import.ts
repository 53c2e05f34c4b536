// Migration from host-local: its directory for a network holds one file per address, named by
// the address and containing "<id>\r\n<ifname>" (or only "<id>" in old versions). On first use
// berth takes those over as reservations, so switching a network from host-local to berth-ipam
// can never hand out an address that a running container still has.
import { closeSync, constants, fstatSync, openSync, readdirSync, readSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import type { StatementSync } from "node:sqlite";
import { formatIp, ipKey, parseIp, type Ip } from "../ip.ts";
import { fsFailure } from "./errors.ts";
import type { Attachment, Reservation } from "./store.ts";

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

/** A record file's content (at most MAX_RECORD bytes) and when host-local wrote it, never through a link; undefined if unreadable. */
function readRecordFile(path: string): { content: string; writtenAt: number } | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const buf = Buffer.alloc(MAX_RECORD);
    const content = buf.subarray(0, readSync(fd, buf, 0, MAX_RECORD, 0)).toString("utf8");
    return { content, writtenAt: Math.trunc(fstatSync(fd).mtimeMs) };
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

const readRecord = (path: string): string | undefined => readRecordFile(path)?.content;

/** Parses one host-local record file's content. */
export function parseHostLocalRecord(content: string): { containerId: string; ifname: string } | undefined {
  const [id = "", ifname = ""] = content.split(/\r?\n/).map((s) => s.trim());
  return id === "" ? undefined : { containerId: id, ifname };
}

/**
 * The owner given to an empty record file (what a host-local crash leaves) or an unreadable one,
 * which says no more: the owner is unknown, so the address is kept out of circulation under a
 * placeholder owner that GC can release.
 */
export const UNKNOWN_OWNER: Attachment = { containerId: "host-local-unknown", ifname: "" };

/** One record file: its address, its owner, and when host-local wrote it (the reservation's time). */
export type HostLocalRecord = { ip: Ip; owner: Attachment; writtenAt: number | null };

/** Every host-local record file in dir. */
export function hostLocalRecords(dir: string): HostLocalRecord[] {
  const out: HostLocalRecord[] = [];
  for (const name of recordNames(dir)) {
    const ip = parseIp(name);
    if (!ip) continue;
    const file = readRecordFile(join(dir, name));
    const rec = file === undefined ? undefined : parseHostLocalRecord(file.content);
    out.push({ ip, owner: rec ?? UNKNOWN_OWNER, writtenAt: file?.writtenAt ?? null });
  }
  return out;
}

const INSERT =
  "INSERT OR IGNORE INTO reservation (ip, container_id, ifname, range_set, imported, reserved_at) VALUES (?, ?, ?, '', 1, ?)";

/**
 * Runs inside the store's write transaction; does the directory walk once per network. Returns how
 * many addresses it took over (none when it ran before).
 */
export function importHostLocalRecords(dir: string, q: (sql: string) => StatementSync): number {
  if (q("SELECT 1 FROM meta WHERE key = ?").get(MARK)) return 0;
  let taken = 0;
  for (const r of hostLocalRecords(dir)) taken += Number(importRecord(r, q));
  q("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)").run(MARK, new Date().toISOString());
  return taken;
}

/** Takes one record into the store (if its address is free), dated by its file. */
export function importRecord(r: HostLocalRecord, q: (sql: string) => StatementSync): boolean {
  return q(INSERT).run(ipKey(r.ip), r.owner.containerId, r.owner.ifname, r.writtenAt).changes > 0;
}

/** A record file the store does not match: its address is free, or held by another container. */
export type Leftover = HostLocalRecord & { holder: Attachment | undefined };

/**
 * Record files left after the import that the store does not account for: written by a host-local
 * that ran again, or kept by a crash between a release's commit and the file's removal. Before the
 * import nothing is left over: the first transaction takes every file in.
 */
export function leftoverRecords(dir: string, q: (sql: string) => StatementSync): Leftover[] {
  if (!q("SELECT 1 FROM meta WHERE key = ?").get(MARK)) return [];
  const holderOf = q("SELECT container_id, ifname FROM reservation WHERE ip = ?");
  const out: Leftover[] = [];
  for (const r of hostLocalRecords(dir)) {
    const row = holderOf.get(ipKey(r.ip)) as { container_id: string; ifname: string } | undefined;
    if (row?.container_id === r.owner.containerId) continue;
    out.push({ ...r, holder: row ? { containerId: row.container_id, ifname: row.ifname } : undefined });
  }
  return out;
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
