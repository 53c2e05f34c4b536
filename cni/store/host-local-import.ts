// Migration from host-local: its directory for a network holds one file per address, named by
// the address and containing "<id>\r\n<ifname>" (or only "<id>" in old versions). On first use
// berth takes those over as reservations, so switching a network from host-local to berth-ipam
// can never hand out an address that a running container still has.
import { readdirSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import type { StatementSync } from "node:sqlite";
import { formatIp, ipKey, parseIp } from "../ip.ts";
import type { Reservation } from "./store.ts";

const MARK = "host-local-imported";

/** Parses one host-local record file's content. */
export function parseHostLocalRecord(content: string): { containerId: string; ifname: string } | undefined {
  const [id = "", ifname = ""] = content.split(/\r?\n/).map((s) => s.trim());
  return id === "" ? undefined : { containerId: id, ifname };
}

/** Runs inside the store's write transaction; does the directory walk once per network. */
export function importHostLocalRecords(dir: string, q: (sql: string) => StatementSync): void {
  if (q("SELECT 1 FROM meta WHERE key = ?").get(MARK)) return;
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    names = [];
  }
  const insert = q(
    "INSERT OR IGNORE INTO reservation (ip, container_id, ifname, range_set, imported) VALUES (?, ?, ?, '', 1)",
  );
  for (const name of names) {
    const ip = parseIp(name);
    if (!ip || formatIp(ip) !== name) continue; // lock, last_reserved_ip.N, berth.db, …
    let rec: ReturnType<typeof parseHostLocalRecord>;
    try {
      rec = parseHostLocalRecord(readFileSync(join(dir, name), "utf8"));
    } catch {
      continue;
    }
    // An empty file is what a host-local crash leaves: its owner is unknown, so keep the address
    // out of circulation under a placeholder owner that GC can release.
    const owner = rec ?? { containerId: "host-local-unknown", ifname: "" };
    insert.run(ipKey(ip), owner.containerId, owner.ifname);
  }
  q("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)").run(MARK, new Date().toISOString());
}

/** After releasing taken-over records, remove their files so host-local would not see them taken. */
export function releaseHostLocalFiles(dir: string, released: readonly Reservation[]): void {
  for (const r of released) {
    const file = join(dir, formatIp(r.ip));
    try {
      const rec = parseHostLocalRecord(readFileSync(file, "utf8"));
      if (!rec || rec.containerId === r.containerId) unlinkSync(file);
    } catch {
      // already gone
    }
  }
}
