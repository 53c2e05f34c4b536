// What the IPAM plugin under test holds for one network, read straight from its store: berth-ipam's
// SQLite file `<dataDir>/<network>/berth.db` (table `reservation`) or host-local's record files
// `<dataDir>/<network>/<ip>` ("<containerID>\r\n<ifname>"). A stop-gap until the operator CLI
// (`berth-ipam list --json`) exists; tests call only `heldAddresses`.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";

export type Holding = { ip: string; containerId: string; ifname: string };

/** The store's 16-byte key (IPv4 as ::ffff:a.b.c.d) as text; IPv6 in its shortest form. */
function keyToIp(key: Uint8Array): string {
  const b = Buffer.from(key);
  if (b.length === 16 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff)
    return [...b.subarray(12)].join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // Let URL parsing canonicalise (compresses the longest zero run).
  return new URL(`http://[${groups.join(":")}]/`).hostname.slice(1, -1);
}

function fromSqlite(file: string): Holding[] {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const rows = db.prepare("SELECT ip, container_id, ifname FROM reservation").all() as {
      ip: Uint8Array;
      container_id: string;
      ifname: string;
    }[];
    return rows.map((r) => ({ ip: keyToIp(r.ip), containerId: r.container_id, ifname: r.ifname }));
  } finally {
    db.close();
  }
}

function fromHostLocal(dir: string): Holding[] {
  return readdirSync(dir)
    .filter((f) => isIP(f) !== 0)
    .map((f) => {
      const [containerId = "", ifname = ""] = readFileSync(join(dir, f), "utf8").split("\r\n");
      return { ip: f, containerId: containerId.trim(), ifname: ifname.trim() };
    });
}

/** Every address the plugin holds in `network`, sorted by address text. */
export function heldAddresses(dataDir: string, network: string): Holding[] {
  const dir = join(dataDir, network);
  if (!existsSync(dir)) return [];
  const db = join(dir, "berth.db");
  const all = existsSync(db) ? fromSqlite(db) : fromHostLocal(dir);
  return all.sort((a, b) => a.ip.localeCompare(b.ip) || a.containerId.localeCompare(b.containerId));
}

/** Garbage over every page of network's berth.db but the first (the schema): `database disk image is malformed`. */
export function scrambleStorePages(net: string): string {
  const path = join(net, "berth.db");
  const bytes = readFileSync(path);
  for (let i = 4096; i < bytes.length; i++) bytes[i] = (i * 7919) & 0xff;
  writeFileSync(path, bytes);
  return path;
}
