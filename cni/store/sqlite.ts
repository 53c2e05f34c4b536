// The embedded default store: one SQLite database per network, in the network's directory
// (<dataDir>/<name>/berth.db, where host-local keeps its files).
//
// Why SQLite (node:sqlite, built into Node): many plugin processes run at once and any can be
// killed at any instant. SQLite gives a cross-process write lock (Node has no flock), atomic
// transactions that a kill rolls back (the WAL), and an index, so finding a free address or an
// attachment's records costs O(log n) instead of host-local's read of every file. Files per IP
// with O_EXCL would need our own lock, fsync discipline and a scan; a daemon would be one more
// thing to run on every node.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { ioFailure, tryAgainLater } from "../../shared/cni/errors.ts";
import { ipFromKey, ipKey, withValue } from "../ip.ts";
import { importHostLocalRecords, releaseHostLocalFiles } from "./host-local-import.ts";
import type { Attachment, Reservation, Store } from "./store.ts";

export const DB_FILE = "berth.db";
const SCHEMA_VERSION = 1;
// How long a process waits for another one's transaction before answering "try again later".
const BUSY_TIMEOUT_MS = 20_000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS reservation (
  ip BLOB PRIMARY KEY,           -- 16 bytes, IPv4 mapped: sorts by address
  container_id TEXT NOT NULL,
  ifname TEXT NOT NULL,          -- '' for legacy ID-only host-local records
  range_set TEXT NOT NULL,
  imported INTEGER NOT NULL DEFAULT 0  -- 1: taken over from a host-local file of the same name
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS reservation_owner ON reservation (container_id, ifname);
CREATE TABLE IF NOT EXISTS cursor (range_set TEXT PRIMARY KEY, ip BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
`;

export type SqliteStore = Store & { close(): void };

type Row = { ip: Uint8Array; container_id: string; ifname: string; range_set: string; imported: number };
const toReservation = (r: Row): Reservation => ({
  ip: ipFromKey(r.ip),
  containerId: r.container_id,
  ifname: r.ifname,
  rangeSet: r.range_set,
});

function isBusy(e: unknown): boolean {
  const err = e as { errcode?: number; message?: string };
  return err.errcode === 5 || err.errcode === 6 || /database is locked|SQLITE_BUSY/.test(err.message ?? "");
}

function openDb(path: string): DatabaseSync {
  // Loaded here, not at start-up: VERSION, --version and the about text never touch the store.
  const { DatabaseSync } = process.getBuiltinModule("node:sqlite") as typeof import("node:sqlite");
  const db = new DatabaseSync(path, { timeout: BUSY_TIMEOUT_MS });
  // WAL: readers never block the writer, and a killed writer's half transaction is discarded.
  // synchronous=FULL syncs every commit so a reservation survives power loss too.
  db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
  const v = (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;
  if (v < SCHEMA_VERSION) {
    db.exec("BEGIN IMMEDIATE");
    try {
      db.exec(SCHEMA);
      db.exec(`PRAGMA user_version=${SCHEMA_VERSION}`);
      db.exec("COMMIT");
    } catch (e) {
      db.exec("ROLLBACK");
      throw e;
    }
  }
  return db;
}

/**
 * Opens the network's store. With create=false a network that has no directory yet has nothing
 * stored: undefined is returned and nothing is written (DEL, CHECK, GC, STATUS change no state
 * they do not own).
 */
export function openSqliteStore(networkDir: string, create: boolean): SqliteStore | undefined {
  if (!existsSync(networkDir)) {
    if (!create) return undefined;
    mkdirSync(networkDir, { recursive: true, mode: 0o755 });
  }
  let db: DatabaseSync;
  try {
    db = openDb(join(networkDir, DB_FILE));
  } catch (e) {
    if (isBusy(e)) throw tryAgainLater(`store busy: ${(e as Error).message}`);
    throw ioFailure(`cannot open store in ${networkDir}: ${(e as Error).message}`);
  }
  const stmt = new Map<string, StatementSync>();
  const q = (sql: string): StatementSync => {
    let s = stmt.get(sql);
    if (!s) {
      s = db.prepare(sql);
      stmt.set(sql, s);
    }
    return s;
  };
  let imported = false;

  const store: SqliteStore = {
    async transaction(fn) {
      try {
        db.exec("BEGIN IMMEDIATE");
      } catch (e) {
        if (isBusy(e))
          throw tryAgainLater(`store busy: another process held ${networkDir} for ${BUSY_TIMEOUT_MS / 1000}s`);
        throw e;
      }
      try {
        if (!imported) {
          // host-local's files in this directory become reservations before anything is handed out.
          importHostLocalRecords(networkDir, q);
          imported = true;
        }
        const out = await fn();
        db.exec("COMMIT");
        return out;
      } catch (e) {
        if (db.isTransaction) db.exec("ROLLBACK");
        imported = false;
        throw e;
      }
    },
    async reserve(r) {
      const key = ipKey(r.ip);
      const res = q("INSERT OR IGNORE INTO reservation (ip, container_id, ifname, range_set) VALUES (?, ?, ?, ?)").run(
        key,
        r.containerId,
        r.ifname,
        r.rangeSet,
      );
      if (res.changes === 0) return false;
      q("INSERT INTO cursor (range_set, ip) VALUES (?, ?) ON CONFLICT (range_set) DO UPDATE SET ip = excluded.ip").run(
        r.rangeSet,
        key,
      );
      return true;
    },
    async releaseById(a) {
      const rows = q("DELETE FROM reservation WHERE container_id = ? AND ifname IN (?, '') RETURNING *").all(
        a.containerId,
        a.ifname,
      ) as Row[];
      const gone = rows.map(toReservation);
      const fromHostLocal = rows.filter((r) => r.imported === 1).map(toReservation);
      if (fromHostLocal.length) releaseHostLocalFiles(networkDir, fromHostLocal);
      return gone;
    },
    async getById(a) {
      return (
        q("SELECT * FROM reservation WHERE container_id = ? AND ifname = ? ORDER BY ip").all(
          a.containerId,
          a.ifname,
        ) as Row[]
      ).map(toReservation);
    },
    async lastReserved(rangeSet) {
      const row = q("SELECT ip FROM cursor WHERE range_set = ?").get(rangeSet) as { ip: Uint8Array } | undefined;
      return row ? ipFromKey(row.ip) : undefined;
    },
    async firstFree(lo, hi) {
      // Walk the reserved addresses from lo in order until the first gap: this reads only the run
      // of taken addresses that starts at lo, which round-robin keeps short, never the whole pool.
      let want = lo.value;
      for (const row of q("SELECT ip FROM reservation WHERE ip >= ? AND ip <= ? ORDER BY ip").iterate(
        ipKey(lo),
        ipKey(hi),
      )) {
        const taken = ipFromKey((row as { ip: Uint8Array }).ip).value;
        if (taken !== want) break;
        want++;
      }
      return want <= hi.value ? withValue(lo, want) : undefined;
    },
    async listAttachments() {
      return (
        q("SELECT DISTINCT container_id, ifname FROM reservation ORDER BY container_id, ifname").all() as Row[]
      ).map((r): Attachment => ({ containerId: r.container_id, ifname: r.ifname }));
    },
    close() {
      db.close();
    },
  };
  return store;
}
