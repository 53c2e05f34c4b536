// A store must know that it existed. An empty or missing berth.db looks exactly like a network
// never used, and taking it for one hands out the addresses that running containers still hold.
// So every store has an identity, a random ID kept in two places: in the database (its `meta`
// table, key `store_id`) and in a file beside it, `<dataDir>/<network>/berth.id`. The file shows
// that the directory had a store, which a missing or empty database cannot; the ID in both places
// shows that the database is that store and not another one put there (another network's
// berth.db, a copy from another node, a restore of the wrong backup). Only the pair decides: a
// directory can exist without a store (host-local's records before the first berth command), and
// a database alone cannot tell a truncation from a fresh start.
//
// This module holds the file side and the verdicts; cni/store/sqlite.ts reads the database side.
import {
  closeSync,
  constants,
  fsyncSync,
  lstatSync,
  openSync,
  readSync,
  renameSync,
  type Stats,
  unlinkSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { fsFailure, StoreError } from "./errors.ts";

export const DB_FILE = "berth.db";
export const ID_FILE = "berth.id";
/** Where libcni (containerd, CRI-O, podman) keeps one result per attachment: what recovery reads. */
export const CNI_RESULTS_DIR = "/var/lib/cni/results";

/** The files of one network's store. */
export type StoreFiles = {
  readonly dir: string;
  readonly db: string;
  readonly wal: string;
  readonly shm: string;
  readonly id: string;
};

export const storeFiles = (networkDir: string): StoreFiles => {
  const db = join(networkDir, DB_FILE);
  return { dir: networkDir, db, wal: `${db}-wal`, shm: `${db}-shm`, id: join(networkDir, ID_FILE) };
};

/** The command an operator runs to rebuild this network's store from the runtimes' result cache. */
export const recoverCommand = (f: StoreFiles): string =>
  `berth-ipam recover --from-cni-cache ${CNI_RESULTS_DIR} --data-dir ${dirname(f.dir)} --network ${basename(f.dir)}`;

/**
 * lstat that answers undefined for a file that is not there. A symbolic link, or anything but a
 * regular file, is refused: the store is never opened or created through one (it could point at
 * another network's store or outside the data dir).
 */
export function regularFile(path: string): Stats | undefined {
  let st: Stats | undefined;
  try {
    // A missing file is the common case: no exception for it. (This also answers "no entry" for
    // ENOTDIR; callers have checked the directory first.)
    st = lstatSync(path, { throwIfNoEntry: false });
  } catch (e) {
    throw fsFailure("read", path, e);
  }
  if (!st) return undefined;
  if (st.isSymbolicLink())
    throw new StoreError("io", path, `store: ${path} is a symbolic link; berth never opens a store through one`);
  if (!st.isFile()) throw new StoreError("io", path, `store: ${path} is not a regular file`);
  return st;
}

const ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// node:crypto is loaded only here, when a store is made: loading it costs every process several ms.
const crypto = () => process.getBuiltinModule("node:crypto") as typeof import("node:crypto");
export const newStoreId = (): string => crypto().randomUUID();
export const isStoreId = (s: string): boolean => ID_RE.test(s);

/** The identity file's ID; undefined when there is none, "damaged" when it holds anything else. */
export function readIdFile(f: StoreFiles): string | "damaged" | undefined {
  const st = regularFile(f.id);
  if (!st) return undefined;
  if (st.size > 256) return "damaged";
  let fd: number;
  try {
    fd = openSync(f.id, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw fsFailure("read", f.id, e);
  }
  try {
    const buf = Buffer.alloc(257);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const id = buf.subarray(0, n).toString("utf8").trim();
    return isStoreId(id) ? id : "damaged";
  } catch (e) {
    throw fsFailure("read", f.id, e);
  } finally {
    closeSync(fd);
  }
}

/** A name in the network's directory that nothing else uses, for a file about to be renamed or linked. */
export const tempName = (f: StoreFiles, what: string): string =>
  join(f.dir, `.${what}.${process.pid}.${crypto().randomBytes(6).toString("hex")}.new`);

/** Creates a file that did not exist (never through a link), mode 0600, with the given content, synced. */
export function createFile(path: string, content: string): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    throw fsFailure("create", path, e);
  }
  try {
    if (content.length > 0) writeSync(fd, content);
    fsyncSync(fd);
  } catch (e) {
    throw fsFailure("write", path, e);
  } finally {
    closeSync(fd);
  }
}

/** Makes the directory's entries durable (a created, linked or renamed file survives power loss). */
export function syncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch (e) {
    throw fsFailure("open", dir, e);
  }
  try {
    fsyncSync(fd);
  } catch (e) {
    throw fsFailure("sync", dir, e);
  } finally {
    closeSync(fd);
  }
}

export function removeIfThere(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw fsFailure("remove", path, e);
  }
}

/**
 * Writes the identity file: a new file renamed over the old one, so a reader sees the old ID or
 * the new one, never a part, and a symbolic link in its place is replaced, not followed. The caller
 * syncs the directory.
 */
export function writeIdFile(f: StoreFiles, id: string): void {
  const tmp = tempName(f, ID_FILE);
  try {
    createFile(tmp, `${id}\n`);
    renameSync(tmp, f.id);
  } catch (e) {
    removeIfThere(tmp);
    throw e instanceof StoreError ? e : fsFailure("write", f.id, e);
  }
}

/** What the network's directory shows about its store, before any database is opened. */
export type DirEvidence = {
  /** berth.db's size, or undefined when there is none. */
  readonly dbSize: number | undefined;
  /** The identity file's ID ("damaged" when unreadable), or undefined when there is none. */
  readonly id: string | "damaged" | undefined;
  /** berth.db-wal or berth.db-shm is there: some process had a database open in this directory. */
  readonly journal: boolean;
};

/**
 * Reads the evidence; a file that is a link or not a regular file is refused (an I/O store error).
 * The order matters while another process creates the store: berth.db appears first, its log and
 * identity file after it, so they are read before it. Seeing either and then no berth.db means
 * berth.db went away, never that it was still being made.
 */
export function dirEvidence(f: StoreFiles): DirEvidence {
  const journal = regularFile(f.wal) !== undefined || regularFile(f.shm) !== undefined;
  const id = readIdFile(f);
  const db = regularFile(f.db);
  return { dbSize: db?.size, id, journal };
}

/** Why a store that the directory shows was in use cannot be used, or undefined if it may be opened. */
export function lostBeforeOpen(f: StoreFiles, ev: DirEvidence): string | undefined {
  if (ev.id === "damaged") return `cannot be checked: its identity file ${f.id} is damaged`;
  if (ev.dbSize === undefined) {
    if (ev.id) return `is missing, but the identity file ${f.id} shows this network had a store`;
    if (ev.journal)
      return `is missing, but its write-ahead log ${basename(f.wal)} or ${basename(f.shm)} is still there`;
    return undefined;
  }
  if (ev.dbSize === 0) return "is empty (zero length)";
  return undefined;
}

/** The database's identity against the file's: why they do not belong together, or undefined. */
export function lostAfterOpen(f: StoreFiles, fileId: string | undefined, dbId: string | undefined): string | undefined {
  if (fileId === undefined) return undefined; // a store from before identities, or its file was lost: adopted
  if (dbId === undefined) return `is not this network's store: it has no identity, ${f.id} says ${fileId}`;
  if (dbId !== fileId) return `is another store (identity ${dbId}), not this network's (${f.id} says ${fileId})`;
  return undefined;
}

/** The error every command gets for a lost store: the file, why, and the recovery command. */
export const lostStore = (f: StoreFiles, why: string): StoreError =>
  new StoreError(
    "lost",
    f.db,
    `store lost: ${f.db} ${why}; nothing is handed out until it is recovered: run \`${recoverCommand(f)}\``,
  );

/** The error every command gets for a damaged database. */
export const corruptStore = (path: string, detail: string): StoreError =>
  new StoreError("corrupt", path, `store corrupt: ${path}; run \`berth-ipam verify\``, detail);
