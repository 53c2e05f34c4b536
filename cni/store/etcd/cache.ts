// The node's local view of its part of the pool, in <dataDir>/<network>/berth-etcd.db: the etcd
// keys it has read or written, each with the mod_revision it had. It lets a common ADD or DEL be
// one etcd request: the txn guards every key it used with "mod_revision is still this", so a
// stale entry can make a txn fail (and its failure branch brings the fresh value) but can never
// make one succeed on wrong data. Losing the file costs a few extra requests, nothing else.
//
// Its write transaction is also the node's lock for the network: plugin processes on one node
// take turns (as Calico's per-host lock does, cni-plugin#985), so they never race each other for
// the same block. A process killed mid-way loses its lock with its file handles.
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { errorMessage } from "../../../shared/json.ts";
import { beginImmediate, sqliteCode } from "../sqlite-lock.ts";
import type { KeyValue } from "./transport.ts";
import { statementCache } from "../statements.ts";

export const CACHE_FILE = "berth-etcd.db";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  mod_revision TEXT NOT NULL,
  owner TEXT                       -- for block keys: the owning node ("" when free)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_owner ON kv (owner, key) WHERE owner IS NOT NULL;
CREATE TABLE IF NOT EXISTS cursor (range_set TEXT PRIMARY KEY, ip TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
`;

export type CacheRow = { key: string; value: string; rev: bigint };

export type NodeCache = {
  /**
   * "write" takes the node's lock for this network (waits at most the open timeout); "read" (STATUS)
   * only reads, never waits, and drops what it learns if a writer holds the lock.
   */
  begin(mode?: "write" | "read"): void;
  commit(): void;
  rollback(): void;
  get(key: string): CacheRow | undefined;
  set(key: string, value: string, rev: bigint, owner: string | undefined): void;
  delete(key: string): void;
  /** Replaces every row in [key, rangeEnd) with a complete, fresh range read. */
  replaceRange(
    key: string,
    rangeEnd: string,
    kvs: readonly KeyValue[],
    owner: (kv: KeyValue) => string | undefined,
  ): void;
  /** Rows in [key, rangeEnd) whose owner is `owner`. */
  owned(key: string, rangeEnd: string, owner: string): CacheRow[];
  rows(): CacheRow[];
  cursor(rangeSet: string): string | undefined;
  setCursor(rangeSet: string, ip: string): void;
  meta(key: string): string | undefined;
  setMeta(key: string, value: string): void;
  /** Adds to a counter kept for benchmarks and operators (requests, conflicts, ...). */
  count(name: string, n: number): void;
  counters(): Record<string, number>;
  close(): void;
};

export type CacheError = Error & { busy: boolean };

// SQLITE_BUSY (5) or SQLITE_LOCKED (6), extended codes included.
const isBusy = (e: unknown): boolean => sqliteCode(e) === 5 || sqliteCode(e) === 6;

function cacheError(e: unknown, what: string): CacheError {
  const err = new Error(`${what}: ${errorMessage(e)}`) as CacheError;
  err.busy = isBusy(e);
  return err;
}

function openDb(path: string, timeoutMs: number): DatabaseSync {
  const { DatabaseSync } = process.getBuiltinModule("node:sqlite") as typeof import("node:sqlite");
  const db = new DatabaseSync(path, { timeout: Math.max(1, Math.floor(timeoutMs)) });
  try {
    // WAL: a killed writer's half transaction is discarded. No fsync at all (synchronous=OFF), not
    // even in the checkpoint SQLite runs when the last process closes the file: a write lost to a
    // power cut only makes the cache stale (its revision guards handle that), and a file the cut
    // damaged is rebuilt from etcd (openCache).
    db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;");
    db.exec(SCHEMA);
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Opening runs statements of its own (the journal mode, the schema), and in WAL mode those can
 * fail "busy" while the last process to close the file cleans up its log or the first after a crash
 * recovers it, both under an exclusive lock (https://sqlite.org/wal.html, "Sometimes Queries Return
 * SQLITE_BUSY In WAL Mode"); so can switching a brand-new file to WAL while other processes open it.
 * Without this, a network's first ADDs from many processes at once failed "database is locked"
 * (test/etcd/blackbox.test.ts, "nodes adding at once"): try again for as long as the node's lock may
 * be waited for.
 */
function openBusyAware(path: string, timeoutMs: number): DatabaseSync {
  const start = Date.now();
  for (;;) {
    try {
      return openDb(path, timeoutMs);
    } catch (e) {
      if (!isBusy(e) || Date.now() - start >= timeoutMs) throw e;
    }
    Atomics.wait(pause, 0, 0, 2 + Math.random() * 4);
  }
}

/**
 * Opens (creating if needed) the cache for one network. `identity` names the pool it mirrors
 * (prefix and node): a cache made for another one is emptied. A damaged file is rebuilt: the
 * cache holds nothing that etcd does not.
 */
export function openCache(networkDir: string, timeoutMs: number, identity: string): NodeCache {
  if (!existsSync(networkDir)) mkdirSync(networkDir, { recursive: true, mode: 0o755 });
  const path = join(networkDir, CACHE_FILE);
  let db: DatabaseSync;
  try {
    db = openBusyAware(path, timeoutMs);
  } catch (e) {
    if (isBusy(e)) throw cacheError(e, `node cache ${path} busy`);
    for (const suffix of ["", "-wal", "-shm"]) rmSync(`${path}${suffix}`, { force: true });
    try {
      db = openDb(path, timeoutMs);
    } catch (e2) {
      throw cacheError(e2, `cannot open node cache ${path}`);
    }
  }
  const q = statementCache(db);
  type Row = { key: string; value: string; mod_revision: string };
  const toRow = (r: Row): CacheRow => ({ key: r.key, value: r.value, rev: BigInt(r.mod_revision) });
  const pending = new Map<string, number>();
  let reading = false;
  /** A write in a read transaction is best effort: the cache is a hint, and a writer is busy. */
  const write = (f: () => void) => {
    if (!reading) return f();
    try {
      f();
    } catch (e) {
      if (!isBusy(e)) throw e;
    }
  };

  const cache: NodeCache = {
    begin(mode = "write") {
      reading = mode === "read";
      try {
        if (reading) db.exec("BEGIN");
        else beginImmediate(db, timeoutMs);
      } catch (e) {
        throw cacheError(e, `node cache ${path} busy`);
      }
      const was = q("SELECT value FROM meta WHERE key = 'identity'").get() as { value: string } | undefined;
      if (was?.value !== identity) {
        write(() => {
          db.exec("DELETE FROM kv; DELETE FROM cursor;");
          q("INSERT OR REPLACE INTO meta (key, value) VALUES ('identity', ?)").run(identity);
        });
      }
    },
    commit() {
      for (const [name, n] of pending) {
        write(() =>
          q(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value",
          ).run(`count.${name}`, String(n)),
        );
      }
      pending.clear();
      if (db.isTransaction) db.exec("COMMIT");
    },
    rollback() {
      pending.clear();
      if (db.isTransaction) db.exec("ROLLBACK");
    },
    get(key) {
      const r = q("SELECT key, value, mod_revision FROM kv WHERE key = ?").get(key) as Row | undefined;
      return r ? toRow(r) : undefined;
    },
    set(key, value, rev, owner) {
      write(() =>
        q("INSERT OR REPLACE INTO kv (key, value, mod_revision, owner) VALUES (?, ?, ?, ?)").run(
          key,
          value,
          String(rev),
          owner ?? null,
        ),
      );
    },
    delete(key) {
      write(() => q("DELETE FROM kv WHERE key = ?").run(key));
    },
    replaceRange(key, rangeEnd, kvs, owner) {
      write(() => q("DELETE FROM kv WHERE key >= ? AND key < ?").run(key, rangeEnd));
      for (const kv of kvs) cache.set(kv.key, kv.value, kv.modRevision, owner(kv));
    },
    owned(key, rangeEnd, owner) {
      return (
        q("SELECT key, value, mod_revision FROM kv WHERE owner = ? AND key >= ? AND key < ? ORDER BY key").all(
          owner,
          key,
          rangeEnd,
        ) as Row[]
      ).map(toRow);
    },
    rows() {
      return (q("SELECT key, value, mod_revision FROM kv ORDER BY key").all() as Row[]).map(toRow);
    },
    cursor(rangeSet) {
      return (q("SELECT ip FROM cursor WHERE range_set = ?").get(rangeSet) as { ip: string } | undefined)?.ip;
    },
    setCursor(rangeSet, ip) {
      write(() => q("INSERT OR REPLACE INTO cursor (range_set, ip) VALUES (?, ?)").run(rangeSet, ip));
    },
    meta(key) {
      return (q("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | undefined)?.value;
    },
    setMeta(key, value) {
      write(() => q("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)").run(key, value));
    },
    count(name, n) {
      if (n) pending.set(name, (pending.get(name) ?? 0) + n);
    },
    counters() {
      const out: Record<string, number> = {};
      for (const r of q("SELECT key, value FROM meta WHERE key LIKE 'count.%'").all() as {
        key: string;
        value: string;
      }[]) {
        out[r.key.slice("count.".length)] = Number(r.value);
      }
      return out;
    },
    close() {
      try {
        if (db.isTransaction) db.exec("ROLLBACK");
      } finally {
        db.close();
      }
    },
  };
  return cache;
}

/** The same view held in memory only: for operator commands that act for another node. */
export function memoryCache(): NodeCache {
  const kv = new Map<string, CacheRow & { owner: string | undefined }>();
  const cursors = new Map<string, string>();
  const meta = new Map<string, string>();
  const inRange = (k: string, lo: string, hi: string) => k >= lo && k < hi;
  return {
    begin() {},
    commit() {},
    rollback() {},
    get: (key) => {
      const r = kv.get(key);
      return r ? { key, value: r.value, rev: r.rev } : undefined;
    },
    set(key, value, rev, owner) {
      kv.set(key, { key, value, rev, owner });
    },
    delete(key) {
      kv.delete(key);
    },
    replaceRange(key, rangeEnd, kvs, owner) {
      for (const k of [...kv.keys()]) if (inRange(k, key, rangeEnd)) kv.delete(k);
      for (const x of kvs) kv.set(x.key, { key: x.key, value: x.value, rev: x.modRevision, owner: owner(x) });
    },
    owned(key, rangeEnd, owner) {
      return [...kv.values()]
        .filter((r) => r.owner === owner && inRange(r.key, key, rangeEnd))
        .sort((a, b) => (a.key < b.key ? -1 : 1))
        .map((r) => ({ key: r.key, value: r.value, rev: r.rev }));
    },
    rows: () =>
      [...kv.values()]
        .sort((a, b) => (a.key < b.key ? -1 : 1))
        .map((r) => ({ key: r.key, value: r.value, rev: r.rev })),
    cursor: (s) => cursors.get(s),
    setCursor(s, ip) {
      cursors.set(s, ip);
    },
    meta: (k) => meta.get(k),
    setMeta(k, v) {
      meta.set(k, v);
    },
    count() {},
    counters: () => ({}),
    close() {},
  };
}
