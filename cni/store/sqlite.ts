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
import { errorMessage, isJsonObject } from "../../shared/json.ts";
import { ipFromKey, ipKey, type Family } from "../ip.ts";
import { firstFreeInWalk } from "../range-set.ts";
import { StoreError, type StoreErrorKind } from "./errors.ts";
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

export type SqliteOptions = { busyTimeoutMs?: number };

type Row = { ip: Uint8Array; container_id: string; ifname: string; range_set: string; imported: number };
const toReservation = (r: Row): Reservation => ({
  ip: ipFromKey(r.ip),
  containerId: r.container_id,
  ifname: r.ifname,
  rangeSet: r.range_set,
});

/** SQLite's primary result code of an error node:sqlite threw, if it is one. */
function sqliteCode(e: unknown): number | undefined {
  return isJsonObject(e) && typeof e.errcode === "number" ? e.errcode & 0xff : undefined;
}

// SQLite's result codes (https://sqlite.org/rescode.html): PERM 3, BUSY 5, LOCKED 6, READONLY 8,
// IOERR 10, CORRUPT 11, FULL 13, CANTOPEN 14, NOTADB 26.
const KIND_OF_CODE: Partial<Record<number, StoreErrorKind>> = {
  3: "io",
  5: "busy",
  6: "busy",
  8: "io",
  10: "io",
  11: "corrupt",
  13: "io",
  14: "io",
  26: "corrupt",
};

/** The store's failures as store errors; anything else (a bug, fn's own errors) passes unchanged. */
function asStoreError(e: unknown, dir: string, busyMs: number): unknown {
  const code = sqliteCode(e);
  const kind = code === undefined ? undefined : KIND_OF_CODE[code];
  if (!kind) return e;
  if (kind === "busy")
    return new StoreError(kind, dir, `store busy: another process held ${dir} for ${busyMs / 1000}s`);
  return new StoreError(kind, dir, `store in ${dir}: ${errorMessage(e)}`);
}

function openDb(path: string, busyMs: number): DatabaseSync {
  // Loaded here, not at start-up: VERSION, --version and the about text never touch the store.
  const { DatabaseSync } = process.getBuiltinModule("node:sqlite") as typeof import("node:sqlite");
  const db = new DatabaseSync(path, { timeout: busyMs });
  try {
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
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}

/** Opens the network's store, creating its directory and database on first use (ADD). */
export function createSqliteStore(networkDir: string, opts: SqliteOptions = {}): SqliteStore {
  try {
    mkdirSync(networkDir, { recursive: true, mode: 0o755 });
  } catch (e) {
    throw new StoreError("io", networkDir, `cannot create store directory ${networkDir}: ${errorMessage(e)}`);
  }
  return sqliteStore(networkDir, opts);
}

/**
 * Opens the network's store if it has one. A network that has no directory yet has nothing stored:
 * undefined, and nothing is written (DEL, CHECK, GC, STATUS change no state they do not own).
 */
export function openSqliteStore(networkDir: string, opts: SqliteOptions = {}): SqliteStore | undefined {
  return existsSync(networkDir) ? sqliteStore(networkDir, opts) : undefined;
}

function sqliteStore(networkDir: string, opts: SqliteOptions): SqliteStore {
  const busyMs = opts.busyTimeoutMs ?? BUSY_TIMEOUT_MS;
  let db: DatabaseSync;
  try {
    db = openDb(join(networkDir, DB_FILE), busyMs);
  } catch (e) {
    const err = asStoreError(e, networkDir, busyMs);
    if (err instanceof StoreError) throw err;
    throw new StoreError("io", networkDir, `cannot open store in ${networkDir}: ${errorMessage(e)}`);
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
  // host-local record files of released imported reservations: removed once the release commits,
  // never before (a rolled-back release keeps its file). A crash between the commit and the
  // removal leaves a file that only keeps host-local, should it ever return, off that address.
  let releasedFiles: Reservation[] = [];

  /** Walks the reserved addresses from lo in order until the first gap: only the run of taken
   * addresses that starts at lo is read, which round-robin keeps short, never the whole pool. */
  const firstFreeIn =
    (family: Family) =>
    (lo: bigint, hi: bigint): bigint | undefined => {
      let want = lo;
      for (const row of q("SELECT ip FROM reservation WHERE ip >= ? AND ip <= ? ORDER BY ip").iterate(
        ipKey({ family, value: lo }),
        ipKey({ family, value: hi }),
      )) {
        if (ipFromKey((row as { ip: Uint8Array }).ip).value !== want) break;
        want++;
      }
      return want <= hi ? want : undefined;
    };

  const store: SqliteStore = {
    async transaction(fn) {
      try {
        db.exec("BEGIN IMMEDIATE");
      } catch (e) {
        throw asStoreError(e, networkDir, busyMs);
      }
      releasedFiles = [];
      try {
        if (!imported) {
          // host-local's files in this directory become reservations before anything is handed out.
          importHostLocalRecords(networkDir, q);
          imported = true;
        }
        const out = await fn();
        db.exec("COMMIT");
        releaseHostLocalFiles(networkDir, releasedFiles);
        return out;
      } catch (e) {
        if (db.isTransaction) db.exec("ROLLBACK");
        imported = false;
        throw asStoreError(e, networkDir, busyMs);
      } finally {
        releasedFiles = [];
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
      releasedFiles.push(...rows.filter((r) => r.imported === 1).map(toReservation));
      return rows.map(toReservation);
    },
    async getById(a) {
      return (
        q("SELECT * FROM reservation WHERE container_id = ? AND ifname = ? ORDER BY ip").all(
          a.containerId,
          a.ifname,
        ) as Row[]
      ).map(toReservation);
    },
    async nextFree(set) {
      const row = q("SELECT ip FROM cursor WHERE range_set = ?").get(set.key) as { ip: Uint8Array } | undefined;
      return firstFreeInWalk(set, row ? ipFromKey(row.ip) : undefined, firstFreeIn(set.family));
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
