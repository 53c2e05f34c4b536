// A berth store exactly as schema 1 (before reservation.reserved_at) left it: for the tests of
// the migration to schema 2.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { ipKey, parseIp } from "../../cni/ip.ts";

export type Schema1Row = { ip: string; containerId: string; ifname: string; rangeSet: string };

export function schema1Store(networkDir: string, rows: readonly Schema1Row[]): void {
  mkdirSync(networkDir, { recursive: true });
  const db = new DatabaseSync(join(networkDir, "berth.db"));
  try {
    db.exec(`PRAGMA journal_mode=WAL;
CREATE TABLE reservation (ip BLOB PRIMARY KEY, container_id TEXT NOT NULL, ifname TEXT NOT NULL,
  range_set TEXT NOT NULL, imported INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE INDEX reservation_owner ON reservation (container_id, ifname);
CREATE TABLE cursor (range_set TEXT PRIMARY KEY, ip BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
INSERT INTO meta VALUES ('host-local-imported', '2026-01-01T00:00:00Z');
PRAGMA user_version=1;`);
    const insert = db.prepare("INSERT INTO reservation VALUES (?, ?, ?, ?, 0)");
    for (const r of rows) {
      const ip = parseIp(r.ip);
      if (!ip) throw new Error(`bad address ${r.ip}`);
      insert.run(ipKey(ip), r.containerId, r.ifname, r.rangeSet);
    }
  } finally {
    db.close();
  }
}

export function schemaVersion(networkDir: string): number {
  const db = new DatabaseSync(join(networkDir, "berth.db"), { readOnly: true });
  try {
    return (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;
  } finally {
    db.close();
  }
}
