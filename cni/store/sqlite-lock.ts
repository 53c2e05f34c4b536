// Taking SQLite's write lock without SQLite's busy handler: shared by the local store and the etcd
// store's node cache, both of which see bursts of processes queueing for one file's lock.
import type { DatabaseSync } from "node:sqlite";
import { isJsonObject } from "../../shared/json.ts";

/** SQLite's primary result code of a node:sqlite error (https://sqlite.org/rescode.html). */
export function sqliteCode(e: unknown): number | undefined {
  return isJsonObject(e) && typeof e.errcode === "number" ? e.errcode & 0xff : undefined;
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * BEGIN IMMEDIATE: waits for the write lock. SQLite's own busy handler (node:sqlite's `timeout`,
 * sqlite3_busy_timeout) sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50 and then 100 ms between
 * tries, so in a burst the lock sat free while every waiter slept: 0.45-1.05 s of the 7-11 s that
 * 200 concurrent ADDs held it (bench/burst-trace.ts). Here a waiter tries again after 0.5, 1, 2,
 * then every 4 ms (every 16 ms after a second of waiting, when many others are trying too), with
 * jitter so that waiters do not try in step; a failed try costs about 5 µs of CPU. Everything
 * else keeps SQLite's handler (a reader waiting out a log recovery or a checkpoint).
 */
export function beginImmediate(db: DatabaseSync, busyMs: number): void {
  // Date.now, not performance.now: the `performance` global loads perf_hooks, 2-3 ms per process.
  const start = Date.now();
  db.exec("PRAGMA busy_timeout = 0");
  try {
    for (let wait = 0.5; ; wait = Math.min(wait * 2, Date.now() - start < 1000 ? 4 : 16)) {
      try {
        db.exec("BEGIN IMMEDIATE");
        return;
      } catch (e) {
        if (sqliteCode(e) !== 5 || Date.now() - start >= busyMs) throw e;
      }
      Atomics.wait(pause, 0, 0, wait * (0.75 + Math.random() / 2));
    }
  } finally {
    db.exec(`PRAGMA busy_timeout = ${busyMs}`);
  }
}
