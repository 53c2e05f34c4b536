// The embedded default store: one SQLite database per network, in the network's directory
// (<dataDir>/<name>/berth.db, where host-local keeps its files).
//
// Why SQLite (node:sqlite, built into Node): many plugin processes run at once and any can be
// killed at any instant. SQLite gives a cross-process write lock (Node has no flock), atomic
// transactions that a kill rolls back (the WAL), and an index, so finding a free address or an
// attachment's records costs O(log n) instead of host-local's read of every file. Files per IP
// with O_EXCL would need our own lock, fsync discipline and a scan; a daemon would be one more
// thing to run on every node.
//
// A new store is built complete under a temporary name and then linked into place as berth.db
// (link(2) fails if the name exists, so of two processes creating the same network's store one
// wins and the other runs its command again on the winner's store). So berth.db never exists
// half-made, a failed first command leaves nothing behind, and an existing berth.db is opened
// without any schema work. Identity (cni/store/identity.ts) is checked inside every write
// transaction: a lost store is refused, never re-created.
import { accessSync, constants, linkSync, mkdirSync, renameSync, rmdirSync, type Stats, statSync } from "node:fs";
import { dirname } from "node:path";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { errorMessage } from "../../shared/json.ts";
import { errnoReason } from "../errno.ts";
import { formatIp, ipFromKey, ipKey, type Family } from "../ip.ts";
import { firstFreeInWalk } from "../range-set.ts";
import { fsFailure, RestoreConflictError, StoreError, type RestoreConflict, type StoreErrorKind } from "./errors.ts";
import {
  hasHostLocalRecords,
  importHostLocalRecords,
  importRecord,
  leftoverRecords,
  releaseHostLocalFiles,
  type Leftover,
} from "./host-local-import.ts";
import type { InspectableStore, StorageProblem, StoredReservation } from "./inspect.ts";
import {
  corruptStore,
  createFile,
  DB_FILE,
  dirEvidence,
  lostAfterOpen,
  lostBeforeOpen,
  lostStore,
  newStoreId,
  regularFile,
  removeIfThere,
  storeFiles,
  syncDir,
  tempName,
  writeIdFile,
  type StoreFiles,
} from "./identity.ts";
import type { Attachment, Reservation } from "./store.ts";
import { mark } from "../trace.ts";
import { raisePriority } from "./priority.ts";
import { beginImmediate, sqliteCode } from "./sqlite-lock.ts";
import { statementCache } from "./statements.ts";

export { DB_FILE };
// 1: reservations, cursors, meta. 2: reservation.reserved_at (an older store is migrated in place).
const SCHEMA_VERSION = 2;
// How long a process waits for another one's transaction before answering "try again later".
const BUSY_TIMEOUT_MS = 20_000;
/** The `meta` key of the store's identity (the same ID as in berth.id). */
const STORE_ID = "store_id";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS reservation (
  ip BLOB PRIMARY KEY,           -- 16 bytes, IPv4 mapped: sorts by address
  container_id TEXT NOT NULL,
  ifname TEXT NOT NULL,          -- '' for legacy ID-only host-local records
  range_set TEXT NOT NULL,
  imported INTEGER NOT NULL DEFAULT 0, -- 1: taken over from a host-local file of the same name
  reserved_at INTEGER            -- ms since the epoch; NULL: unknown (schema 1, a restore)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS reservation_owner ON reservation (container_id, ifname);
CREATE TABLE IF NOT EXISTS cursor (range_set TEXT PRIMARY KEY, ip BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
`;

const SQL = {
  getMeta: "SELECT value FROM meta WHERE key = ?",
  setMeta: "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
  scan: "SELECT ip FROM reservation WHERE ip >= ? AND ip <= ? ORDER BY ip",
  insert: "INSERT OR IGNORE INTO reservation (ip, container_id, ifname, range_set, reserved_at) VALUES (?, ?, ?, ?, ?)",
  moveCursor: "INSERT INTO cursor (range_set, ip) VALUES (?, ?) ON CONFLICT (range_set) DO UPDATE SET ip = excluded.ip",
  getCursor: "SELECT ip FROM cursor WHERE range_set = ?",
  release: "DELETE FROM reservation WHERE container_id = ? AND ifname IN (?, '') RETURNING *",
  byId: "SELECT * FROM reservation WHERE container_id = ? AND ifname = ? ORDER BY ip",
  byIp: "SELECT * FROM reservation WHERE ip = ?",
  attachments: "SELECT DISTINCT container_id, ifname FROM reservation ORDER BY container_id, ifname",
} as const;
// Prepared when a connection opens, before the write lock is taken: ADD and DEL use these.
const HOT = [SQL.getMeta, SQL.scan, SQL.insert, SQL.moveCursor, SQL.getCursor, SQL.release];

export type SqliteStore = InspectableStore;

export type SqliteOptions = { busyTimeoutMs?: number };

type Row = {
  ip: Uint8Array;
  container_id: string;
  ifname: string;
  range_set: string;
  imported: number;
  reserved_at: number | null;
};
const toReservation = (r: Row): Reservation => ({
  ip: ipFromKey(r.ip),
  containerId: r.container_id,
  ifname: r.ifname,
  rangeSet: r.range_set,
});
const toStored = (r: Row): StoredReservation => ({
  ip: ipFromKey(r.ip),
  containerId: r.container_id,
  ifname: r.ifname,
  rangeSet: r.range_set,
  reservedAt: r.reserved_at === null ? undefined : new Date(r.reserved_at),
});

const owner = (a: { containerId: string; ifname: string }): string => `${a.containerId}/${a.ifname || "(any)"}`;
function leftoverProblem(l: Leftover): StorageProblem {
  const rec = `host-local record file ${formatIp(l.ip)} (${owner(l.owner)})`;
  return l.holder
    ? {
        problem: `${rec} names another container than the store, which gives it to ${owner(l.holder)}`,
        repairable: false,
      }
    : { problem: `${rec} is not in the store`, repairable: true };
}

/** SQLite's own check of every page and index (https://sqlite.org/pragma.html#pragma_integrity_check). */
function integrityProblems(db: DatabaseSync): string[] {
  const rows = db.prepare("PRAGMA integrity_check").all() as { integrity_check: string }[];
  return rows.map((r) => r.integrity_check).filter((m) => m !== "ok");
}
// Damage confined to this secondary index is rebuilt from the table by REINDEX, losing nothing.
const INDEX = "reservation_owner";
const onlyIndexDamage = (problems: string[]): boolean => problems.every((p) => p.includes(`index ${INDEX}`));

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
function asStoreError(e: unknown, f: StoreFiles, busyMs: number): unknown {
  if (e instanceof StoreError) return e;
  const code = sqliteCode(e);
  const kind = code === undefined ? undefined : KIND_OF_CODE[code];
  if (!kind) return e;
  if (kind === "busy")
    return new StoreError(kind, f.dir, `store busy: another process held ${f.dir} for ${busyMs / 1000}s`);
  if (kind === "corrupt") return corruptStore(f.db, errorMessage(e));
  return new StoreError(kind, f.dir, `store in ${f.dir}: ${errorMessage(e)}${whyNotWritable(f.dir)}`, errorMessage(e));
}

/** SQLite says only "unable to open database file" or "readonly database": name the cause when it is the directory. */
function whyNotWritable(dir: string): string {
  try {
    accessSync(dir, constants.W_OK);
    return "";
  } catch (e) {
    return ` (the directory is not writable: ${errnoReason(e)})`;
  }
}

const sqlite = () => process.getBuiltinModule("node:sqlite") as typeof import("node:sqlite");

/** One open database and its statements, each prepared once. */
type Conn = { readonly db: DatabaseSync; q(sql: string): StatementSync };

function connect(path: string, busyMs: number): Conn {
  const db = new (sqlite().DatabaseSync)(path, { timeout: busyMs });
  const q = statementCache(db);
  try {
    // synchronous=FULL syncs every commit so a reservation survives power loss too. (WAL mode
    // is a property of the file, set once when the store is built.)
    db.exec("PRAGMA synchronous=FULL");
  } catch (e) {
    db.close();
    throw e;
  }
  return { db, q };
}

const closeQuietly = (c: Conn | undefined): void => {
  if (c?.db.isOpen) c.db.close();
};

const userVersion = (db: DatabaseSync): number =>
  (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;

/**
 * Brings a store written by an older berth to the current schema, in its own transaction; the
 * version is read again under the write lock, as another process may have migrated it meanwhile.
 * A newer store is left alone: its extra columns are nullable, so this version's writes still fit.
 */
function migrate(db: DatabaseSync): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    const from = userVersion(db);
    if (from < SCHEMA_VERSION) {
      if (from < 2) db.exec("ALTER TABLE reservation ADD COLUMN reserved_at INTEGER");
      db.exec(`PRAGMA user_version=${SCHEMA_VERSION}`);
    }
    db.exec("COMMIT");
  } catch (e) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw e;
  }
}

/** Opens an existing berth.db: a berth store (any schema version) with its hot statements prepared. */
function openExisting(f: StoreFiles, busyMs: number): Conn {
  const c = connect(f.db, busyMs);
  try {
    const v = userVersion(c.db);
    if (v === 0) throw lostStore(f, "is not a berth store (it holds no berth schema)");
    if (v < SCHEMA_VERSION) migrate(c.db);
    for (const sql of HOT) c.q(sql);
    return c;
  } catch (e) {
    closeQuietly(c);
    throw e;
  }
}

/**
 * The identity check inside the write transaction (so no other writer can change it meanwhile).
 * Returns the ID the identity file must get after the commit, if it must be (re)written: for a
 * store from before identities, which gets one now, or when the file was lost but the database is
 * intact.
 */
function checkIdentity(c: Conn, f: StoreFiles, fileId: string | undefined): string | undefined {
  const dbId = (c.q(SQL.getMeta).get(STORE_ID) as { value: string } | undefined)?.value;
  const why = lostAfterOpen(f, fileId, dbId);
  if (why) throw lostStore(f, why);
  if (dbId === undefined) {
    const id = newStoreId();
    c.q(SQL.setMeta).run(STORE_ID, id);
    return id;
  }
  return fileId === undefined ? dbId : undefined;
}

/**
 * Creates dir and any missing parents, one level at a time (a recursive mkdir reports ENOENT for a
 * read-only file system; one level reports EROFS, and the level that failed). Returns the
 * directories it created, deepest first.
 */
function makeDirs(dir: string): string[] {
  const missing: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    try {
      if (statSync(d).isDirectory()) break;
      throw new StoreError("io", d, `store: cannot create the store directory ${dir}: ${d} is not a directory`);
    } catch (e) {
      if (e instanceof StoreError) throw e;
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw fsFailure("open", d, e);
    }
    missing.push(d);
    if (dirname(d) === d) break;
  }
  const made: string[] = [];
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d, { mode: 0o755 });
      made.unshift(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") continue; // another process made it meanwhile
      removeDirs(made);
      throw fsFailure("create the store directory", d, e);
    }
  }
  // The new directories' entries must survive power loss as the store in them will.
  for (const d of made) syncDir(dirname(d));
  return made;
}

/** True if the network's directory exists, false if it does not; an I/O store error if it cannot be used. */
function checkDir(dir: string): boolean {
  let st: Stats;
  try {
    // Not throwIfNoEntry: it answers "no entry" for ENOTDIR too (a data dir that is a file).
    st = statSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw fsFailure("open the store directory", dir, e);
  }
  if (st.isDirectory()) return true;
  throw new StoreError("io", dir, `store: ${dir} is not a directory`);
}

/** Removes directories this process created for a store that was not made; never a non-empty one. */
function removeDirs(made: readonly string[]): void {
  for (const d of made) {
    try {
      rmdirSync(d);
    } catch {
      return; // another process is using it now (or it is gone): leave it and its parents
    }
  }
}

/** How a built store takes its place: as a new berth.db, or replacing a lost one. */
type Placement = { kind: "create" } | { kind: "replace"; setAside: string[] };

/**
 * Builds a complete store under a temporary name: schema, a new identity and whatever fill writes,
 * in one transaction; closed (SQLite then folds the log into the file and syncs it), and put in
 * place with its identity file. Returns undefined when placement "create" finds that another
 * process placed a berth.db first: nothing of this one is kept.
 */
async function buildStore<T>(
  f: StoreFiles,
  busyMs: number,
  fill: (c: Conn) => Promise<T>,
  placement: Placement,
): Promise<{ out: T; id: string } | undefined> {
  const tmp = tempName(f, DB_FILE);
  let c: Conn | undefined;
  try {
    createFile(tmp, ""); // created by us, mode 0600, never through a link; SQLite fills it
    c = connect(tmp, busyMs);
    c.db.exec("PRAGMA journal_mode=WAL"); // readers never block the writer; a killed writer's half transaction is discarded
    c.db.exec("BEGIN IMMEDIATE");
    c.db.exec(SCHEMA);
    c.db.exec(`PRAGMA user_version=${SCHEMA_VERSION}`);
    const id = newStoreId();
    c.q(SQL.setMeta).run(STORE_ID, id);
    const out = await fill(c);
    c.db.exec("COMMIT");
    c.db.close();
    if (placement.kind === "create") {
      try {
        linkSync(tmp, f.db);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EEXIST") return undefined;
        throw fsFailure("create", f.db, e);
      }
    } else {
      setAside(f, placement.setAside);
      try {
        renameSync(tmp, f.db);
      } catch (e) {
        throw fsFailure("replace", f.db, e);
      }
    }
    removeIfThere(tmp);
    writeIdFile(f, id);
    syncDir(f.dir);
    return { out, id };
  } catch (e) {
    if (c?.db.isOpen && c.db.isTransaction) c.db.exec("ROLLBACK");
    throw e;
  } finally {
    closeQuietly(c);
    for (const p of [tmp, `${tmp}-wal`, `${tmp}-shm`]) {
      try {
        removeIfThere(p);
      } catch {
        // best effort: a leftover temporary name is never read
      }
    }
  }
}

/**
 * Moves a lost store's files out of the way before its replacement goes in: a non-empty database
 * and its log are kept under a new name (the operator may want them: they may be another network's
 * store), and a log must never meet the new database, whose pages it would overwrite.
 */
function setAside(f: StoreFiles, kept: string[]): void {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const keep = (from: string, suffix: string) => {
    const st = regularFile(from);
    if (!st) return;
    if (st.size === 0) return removeIfThere(from);
    const to = `${f.db}.lost-${stamp}${suffix}`;
    try {
      renameSync(from, to);
    } catch (e) {
      throw fsFailure("set aside", from, e);
    }
    kept.push(to);
  };
  keep(f.db, "");
  keep(f.wal, "-wal");
  removeIfThere(f.shm);
}

/**
 * The store object: every method works on the connection of the transaction that is running
 * (conn, for this module's own use inside a transaction).
 */
function sqliteStore(networkDir: string, opts: SqliteOptions): SqliteStore & { conn(): Conn } {
  const f = storeFiles(networkDir);
  const busyMs = opts.busyTimeoutMs ?? BUSY_TIMEOUT_MS;
  let live: Conn | undefined;
  let cur: Conn | undefined;
  let imported = false;
  // host-local record files of released imported reservations: removed once the release commits,
  // never before (a rolled-back release keeps its file). A crash between the commit and the
  // removal leaves a file that only keeps host-local, should it ever return, off that address.
  let releasedFiles: Reservation[] = [];

  const c = (): Conn => {
    if (!cur) throw new Error("store used outside a transaction");
    return cur;
  };

  /** Walks the reserved addresses from lo in order until the first gap: only the run of taken
   * addresses that starts at lo is read, which round-robin keeps short, never the whole pool. */
  const firstFreeIn =
    (family: Family) =>
    (lo: bigint, hi: bigint): bigint | undefined => {
      let want = lo;
      for (const row of c()
        .q(SQL.scan)
        .iterate(ipKey({ family, value: lo }), ipKey({ family, value: hi }))) {
        if (ipFromKey((row as { ip: Uint8Array }).ip).value !== want) break;
        want++;
      }
      return want <= hi ? want : undefined;
    };

  /** fn in one write transaction on the existing berth.db. */
  async function inExisting<T>(fn: () => Promise<T>, fileId: string | undefined): Promise<T> {
    let conn: Conn;
    try {
      mark("open");
      live ??= openExisting(f, busyMs);
      conn = live;
    } catch (e) {
      throw asStoreError(e, f, busyMs);
    }
    const restorePriority = raisePriority(); // from asking for the write lock to the end of the transaction
    try {
      mark("begin");
      beginImmediate(conn.db, busyMs);
      mark("locked");
    } catch (e) {
      restorePriority();
      throw asStoreError(e, f, busyMs);
    }
    cur = conn;
    releasedFiles = [];
    try {
      const writeId = checkIdentity(conn, f, fileId);
      if (!imported) {
        // host-local's files in this directory become reservations before anything is handed out.
        importHostLocalRecords(networkDir, conn.q);
        imported = true;
      }
      const out = await fn();
      mark("commit");
      conn.db.exec("COMMIT");
      mark("committed");
      restorePriority();
      if (writeId) {
        writeIdFile(f, writeId);
        syncDir(f.dir);
      }
      releaseHostLocalFiles(networkDir, releasedFiles);
      return out;
    } catch (e) {
      if (conn.db.isTransaction) conn.db.exec("ROLLBACK");
      imported = false;
      throw asStoreError(e, f, busyMs);
    } finally {
      restorePriority();
      cur = undefined;
      releasedFiles = [];
    }
  }

  /** fn in the transaction that builds the network's store; undefined if another process built it first. */
  async function inNew<T>(fn: () => Promise<T>): Promise<{ out: T } | undefined> {
    const made = makeDirs(networkDir);
    releasedFiles = [];
    try {
      const built = await buildStore(
        f,
        busyMs,
        async (conn) => {
          cur = conn;
          importHostLocalRecords(networkDir, conn.q);
          return fn();
        },
        { kind: "create" },
      );
      if (built) releaseHostLocalFiles(networkDir, releasedFiles);
      else removeDirs(made); // empty only if the winner's store went away again
      return built;
    } catch (e) {
      removeDirs(made);
      throw asStoreError(e, f, busyMs);
    } finally {
      cur = undefined;
      releasedFiles = [];
    }
  }

  const store: SqliteStore & { conn(): Conn } = {
    conn: c,
    async transaction(fn) {
      // A few rounds at most: a round is lost only to a process that placed a store meanwhile.
      for (let round = 0; ; round++) {
        checkDir(networkDir);
        const ev = dirEvidence(f);
        const why = lostBeforeOpen(f, ev);
        if (why) throw lostStore(f, why);
        const fileId = ev.id === "damaged" ? undefined : ev.id;
        if (ev.dbSize !== undefined || live) return inExisting(fn, fileId);
        const built = await inNew(fn);
        if (built) return built.out;
        if (round >= 3) throw new StoreError("busy", f.dir, `store busy: ${f.dir} kept changing while it was created`);
      }
    },
    async reserve(r) {
      const key = ipKey(r.ip);
      const res = c().q(SQL.insert).run(key, r.containerId, r.ifname, r.rangeSet, Date.now());
      if (res.changes === 0) return false;
      c().q(SQL.moveCursor).run(r.rangeSet, key);
      return true;
    },
    async releaseById(a) {
      const rows = c().q(SQL.release).all(a.containerId, a.ifname) as Row[];
      releasedFiles.push(...rows.filter((r) => r.imported === 1).map(toReservation));
      return rows.map(toReservation);
    },
    async getById(a) {
      return (c().q(SQL.byId).all(a.containerId, a.ifname) as Row[]).map(toReservation);
    },
    async nextFree(set) {
      const row = c().q(SQL.getCursor).get(set.key) as { ip: Uint8Array } | undefined;
      return firstFreeInWalk(set, row ? ipFromKey(row.ip) : undefined, firstFreeIn(set.family));
    },
    async listAttachments() {
      return (c().q(SQL.attachments).all() as Row[]).map(
        (r): Attachment => ({ containerId: r.container_id, ifname: r.ifname }),
      );
    },
    async read(fn) {
      // The same identity checks as a write transaction, but a deferred one: no write lock.
      const ev = dirEvidence(f);
      const why = lostBeforeOpen(f, ev);
      if (why) throw lostStore(f, why);
      let conn: Conn;
      try {
        live ??= openExisting(f, busyMs);
        conn = live;
        conn.db.exec("BEGIN");
      } catch (e) {
        throw asStoreError(e, f, busyMs);
      }
      cur = conn;
      try {
        const dbId = (conn.q(SQL.getMeta).get(STORE_ID) as { value: string } | undefined)?.value;
        const lost = lostAfterOpen(f, ev.id === "damaged" ? undefined : ev.id, dbId);
        if (lost) throw lostStore(f, lost);
        const out = await fn();
        conn.db.exec("COMMIT");
        return out;
      } catch (e) {
        if (conn.db.isTransaction) conn.db.exec("ROLLBACK");
        throw asStoreError(e, f, busyMs);
      } finally {
        cur = undefined;
      }
    },
    async reservations(filter = {}) {
      const terms: [string, string | Uint8Array | undefined][] = [
        ["container_id = ?", filter.containerId],
        ["ifname IN (?, '')", filter.ifname],
        ["ip = ?", filter.ip && ipKey(filter.ip)],
      ];
      const used = terms.filter((t): t is [string, string | Uint8Array] => t[1] !== undefined);
      const where = used.length ? ` WHERE ${used.map((t) => t[0]).join(" AND ")}` : "";
      const sql = `SELECT ip, container_id, ifname, range_set, imported, reserved_at FROM reservation${where} ORDER BY ip`;
      const out: StoredReservation[] = [];
      for (const row of c()
        .q(sql)
        .iterate(...used.map((t) => t[1])))
        out.push(toStored(row as Row));
      return out;
    },
    async countReserved(family, lo, hi) {
      const row = c()
        .q("SELECT count(*) AS n FROM reservation WHERE ip BETWEEN ? AND ?")
        .get(ipKey({ family, value: lo }), ipKey({ family, value: hi })) as { n: number };
      return row.n;
    },
    async cursors() {
      return (c().q("SELECT range_set, ip FROM cursor ORDER BY range_set").all() as Row[]).map((r) => ({
        rangeSet: r.range_set,
        ip: ipFromKey(r.ip),
      }));
    },
    async rangeSetKeys() {
      const rows = c()
        .q("SELECT range_set FROM reservation UNION SELECT range_set FROM cursor ORDER BY 1")
        .all() as Row[];
      return rows.map((r) => r.range_set);
    },
    async releaseAddress(ip) {
      const row = c().q("DELETE FROM reservation WHERE ip = ? RETURNING *").get(ipKey(ip)) as Row | undefined;
      if (!row) return undefined;
      if (row.imported === 1) releasedFiles.push(toReservation(row));
      return toReservation(row);
    },
    async dropCursor(rangeSet) {
      return c().q("DELETE FROM cursor WHERE range_set = ?").run(rangeSet).changes > 0;
    },
    async checkStorage() {
      const integrity = integrityProblems(c().db);
      return [
        ...integrity.map((problem) => ({
          problem: `SQLite integrity check: ${problem}`,
          repairable: onlyIndexDamage(integrity),
        })),
        ...leftoverRecords(networkDir, c().q).map(leftoverProblem),
      ];
    },
    async repairStorage() {
      const done: string[] = [];
      const integrity = integrityProblems(c().db);
      if (integrity.length > 0 && onlyIndexDamage(integrity)) {
        c().db.exec(`REINDEX ${INDEX}`);
        done.push(`rebuilt index ${INDEX} from the reservations`);
      }
      for (const l of leftoverRecords(networkDir, c().q)) {
        if (l.holder || !importRecord(l, c().q)) continue;
        done.push(
          `took host-local record ${formatIp(l.ip)} into the store for ${owner(l.owner)} (release it if that container is gone)`,
        );
      }
      return done;
    },
    close() {
      mark("close");
      closeQuietly(live);
      live = undefined;
      mark("closed");
    },
  };
  return store;
}

/**
 * The network's store, for ADD: opened when its first transaction runs, and built by that
 * transaction if the network has none yet (then a failed transaction leaves nothing behind).
 */
export function createSqliteStore(networkDir: string, opts: SqliteOptions = {}): SqliteStore {
  const { conn: _, ...store } = sqliteStore(networkDir, opts);
  return store;
}

/**
 * The network's store if it has one: undefined for a network with nothing stored (no directory,
 * or one without a store and without host-local records), and nothing is written then (DEL,
 * CHECK, GC, STATUS change no state they do not own). A lost store is a "lost" store error.
 */
export function openSqliteStore(networkDir: string, opts: SqliteOptions = {}): SqliteStore | undefined {
  if (!checkDir(networkDir)) return undefined;
  const f = storeFiles(networkDir);
  const ev = dirEvidence(f);
  const why = lostBeforeOpen(f, ev);
  if (why) throw lostStore(f, why);
  if (ev.dbSize === undefined && !hasHostLocalRecords(networkDir)) return undefined;
  return createSqliteStore(networkDir, opts);
}

/** What a look at a network's store found, without changing it. */
export type StoreHealth =
  | { readonly state: "absent"; readonly path: string }
  | { readonly state: "ok"; readonly path: string; readonly storeId: string | undefined }
  | { readonly state: "lost" | "corrupt"; readonly path: string; readonly message: string; readonly detail: string };

/**
 * Checks a network's store: lost (missing, empty, not a berth store, another store's), corrupt
 * (SQLite reports damage; with integrity, SQLite's full integrity_check too), or ok. Takes no
 * write lock and writes nothing to the store.
 */
export function inspectSqliteStore(networkDir: string, opts: { integrity?: boolean } = {}): StoreHealth {
  const f = storeFiles(networkDir);
  const failed = (e: unknown): StoreHealth => {
    const err = asStoreError(e, f, 0);
    if (err instanceof StoreError && (err.kind === "lost" || err.kind === "corrupt"))
      return { state: err.kind, path: f.db, message: err.message, detail: err.detail };
    throw err;
  };
  let c: Conn | undefined;
  try {
    if (!checkDir(networkDir)) return { state: "absent", path: f.db };
    const ev = dirEvidence(f);
    const why = lostBeforeOpen(f, ev);
    if (why) throw lostStore(f, why);
    if (ev.dbSize === undefined) return { state: "absent", path: f.db };
    c = openExisting(f, 0);
    const dbId = (c.q(SQL.getMeta).get(STORE_ID) as { value: string } | undefined)?.value;
    const fileId = ev.id === "damaged" ? undefined : ev.id;
    const lost = lostAfterOpen(f, fileId, dbId);
    if (lost) throw lostStore(f, lost);
    if (opts.integrity) {
      const rows = c.db.prepare("PRAGMA integrity_check").all() as { integrity_check: string }[];
      const problems = rows.map((r) => r.integrity_check).filter((m) => m !== "ok");
      if (problems.length > 0) throw corruptStore(f.db, problems.join("; "));
    }
    return { state: "ok", path: f.db, storeId: dbId };
  } catch (e) {
    return failed(e);
  } finally {
    closeQuietly(c);
  }
}

/** What a restore did (or, dry, would do). */
export type SqliteRestore = {
  /** merged: into the network's intact store; rebuilt: a new store (the network's was lost or absent). */
  readonly mode: "merged" | "rebuilt";
  /** Reservations written (or, dry, to be written). */
  readonly restored: readonly Reservation[];
  /** Reservations the store already held for the same attachment: left as they are. */
  readonly alreadyHeld: readonly Reservation[];
  /** Files of the lost store kept under a new name. */
  readonly setAside: readonly string[];
  /** host-local records taken over into a rebuilt store (never over a restored address). */
  readonly hostLocalImported: number;
  /** The store's identity afterwards (undefined on a dry run that would build a new store). */
  readonly storeId: string | undefined;
};

const sameOwner = (a: Attachment, b: Attachment) => a.containerId === b.containerId && a.ifname === b.ifname;

function conflictError(f: StoreFiles, conflicts: readonly RestoreConflict[]): RestoreConflictError {
  const first = conflicts
    .slice(0, 5)
    .map(
      (x) =>
        `${formatIp(x.ip)} is held by ${x.holder.containerId}/${x.holder.ifname}, not ${x.wanted.containerId}/${x.wanted.ifname}`,
    );
  const more = conflicts.length > 5 ? ` (and ${conflicts.length - 5} more)` : "";
  return new RestoreConflictError(
    `restore into ${f.db} refused, nothing written: ${first.join("; ")}${more}`,
    conflicts,
  );
}

/** Best effort: overwrites a damaged store's identity so that no process accepts it any more. */
function retire(f: StoreFiles, busyMs: number): void {
  let c: Conn | undefined;
  try {
    c = connect(f.db, busyMs);
    c.db.exec("BEGIN IMMEDIATE");
    c.q(SQL.setMeta).run(STORE_ID, "retired");
    c.db.exec("COMMIT");
  } catch {
    // too damaged to write: too damaged for a command to commit to as well
  } finally {
    closeQuietly(c);
  }
}

/** Writes the list's reservations that are missing (the caller checked there are no conflicts). */
function writeReservations(c: Conn, list: readonly Reservation[]): void {
  for (const r of list) {
    const key = ipKey(r.ip);
    c.q(SQL.insert).run(key, r.containerId, r.ifname, r.rangeSet, null); // when it was first reserved is not known
    if (r.rangeSet !== "") c.q(SQL.moveCursor).run(r.rangeSet, key);
  }
}

/** Splits the list against what the store holds: to write, already held, conflicting. */
function against(c: Conn | undefined, list: readonly Reservation[]) {
  const restored: Reservation[] = [];
  const alreadyHeld: Reservation[] = [];
  const conflicts: RestoreConflict[] = [];
  for (const r of list) {
    const row = c?.q(SQL.byIp).get(ipKey(r.ip)) as Row | undefined;
    if (!row) restored.push(r);
    else if (sameOwner({ containerId: row.container_id, ifname: row.ifname }, r)) alreadyHeld.push(r);
    else conflicts.push({ ip: r.ip, holder: { containerId: row.container_id, ifname: row.ifname }, wanted: r });
  }
  return { restored, alreadyHeld, conflicts };
}

/**
 * Restores reservations into a network's store in one transaction, refusing the whole list if any
 * address would get two holders (within the list or against the store). An intact store gets the
 * missing ones merged in; a lost (or absent) store is rebuilt from the list, with a new identity,
 * its old files set aside, and host-local records in the directory taken over where no restored
 * reservation is. A corrupt store is refused (a corrupt store error) unless rebuildCorrupt.
 * Addresses are written in the order given; each set's cursor ends at the last one written.
 */
export async function restoreSqliteStore(
  networkDir: string,
  list: readonly Reservation[],
  opts: { dryRun?: boolean; rebuildCorrupt?: boolean; busyTimeoutMs?: number } = {},
): Promise<SqliteRestore> {
  const f = storeFiles(networkDir);
  const busyMs = opts.busyTimeoutMs ?? BUSY_TIMEOUT_MS;
  const self = against(undefined, []);
  const seen = new Map<string, Reservation>();
  const unique: Reservation[] = [];
  for (const r of list) {
    const k = Buffer.from(ipKey(r.ip)).toString("hex");
    const prior = seen.get(k);
    if (!prior) {
      seen.set(k, r);
      unique.push(r);
    } else if (!sameOwner(prior, r)) self.conflicts.push({ ip: r.ip, holder: prior, wanted: r });
  }
  if (self.conflicts.length > 0) throw conflictError(f, self.conflicts);

  const health = inspectSqliteStore(networkDir);
  if (health.state === "corrupt" && !opts.rebuildCorrupt)
    throw corruptStore(f.db, health.state === "corrupt" ? health.detail : "");

  if (health.state === "ok") {
    const s = sqliteStore(networkDir, { busyTimeoutMs: busyMs });
    const dry = new Error("dry run");
    let outcome: SqliteRestore | undefined;
    try {
      await s.transaction(async () => {
        const conn = s.conn();
        const split = against(conn, unique);
        if (split.conflicts.length > 0) throw conflictError(f, split.conflicts);
        if (!opts.dryRun) writeReservations(conn, split.restored);
        const storeId = (conn.q(SQL.getMeta).get(STORE_ID) as { value: string } | undefined)?.value;
        outcome = { mode: "merged", ...split, setAside: [], hostLocalImported: 0, storeId };
        if (opts.dryRun) throw dry; // rolled back
      });
    } catch (e) {
      if (e !== dry) throw e;
    } finally {
      s.close();
    }
    if (!outcome) throw new Error("restore: no outcome");
    return outcome;
  }

  if (opts.dryRun)
    return {
      mode: "rebuilt",
      restored: unique,
      alreadyHeld: [],
      setAside: [],
      hostLocalImported: 0,
      storeId: undefined,
    };
  // Processes may still have the damaged database open; once it carries no valid identity, none
  // of them can commit to it after it has been set aside.
  if (health.state === "corrupt") retire(f, busyMs);
  const made = makeDirs(networkDir);
  const setAsideFiles: string[] = [];
  try {
    let imported = 0;
    const built = await buildStore(
      f,
      busyMs,
      async (conn) => {
        writeReservations(conn, unique);
        imported = importHostLocalRecords(networkDir, conn.q);
      },
      // An absent store is created as ADD creates one (never over one made meanwhile); a lost one replaced.
      health.state === "absent" ? { kind: "create" } : { kind: "replace", setAside: setAsideFiles },
    );
    if (!built) return restoreSqliteStore(networkDir, list, opts); // an ADD created the store meanwhile: merge
    return {
      mode: "rebuilt",
      restored: unique,
      alreadyHeld: [],
      setAside: setAsideFiles,
      hostLocalImported: imported,
      storeId: built.id,
    };
  } catch (e) {
    removeDirs(made);
    throw asStoreError(e, f, busyMs);
  }
}
