// Chooses the store for a network from its config's `store` section: the embedded SQLite store in
// <dataDir>/<name> (the default), or the cluster-wide etcd store, whose code (and node:net) is
// loaded only for a network that selects it.
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { StoreConfig } from "../config.ts";
import { ID_FILE } from "./identity.ts";
import type { InspectableStore } from "./inspect.ts";
import {
  createSqliteStore,
  DB_FILE,
  inspectSqliteStore,
  openSqliteStore,
  restoreSqliteStore,
  type SqliteRestore,
  type StoreHealth,
} from "./sqlite.ts";
import type { Reservation, Store } from "./store.ts";

/** Which network's store, and where the node keeps its state. */
export type StoreLocation = {
  readonly dataDir: string;
  readonly network: string;
  /** Absent: the local store. */
  readonly store?: StoreConfig;
};

/** A store as one command holds it: used for one transaction, then closed. */
export type OpenedStore = Store & { close(): void };

export type OpenOptions = {
  /** A cluster store's budget for this command's etcd requests, rotation included (5 s). */
  budgetMs?: number;
  /** STATUS: only looks, so never waits for the node's other commands. */
  readOnly?: boolean;
};

// At most 2 s for one request and 5 s in all, then "try again later" (CNI code 11). The budget
// leaves room for the process's own start, so an idle node's runtime has its answer within 5 s of the exec.
export const CLUSTER_BUDGET_MS = 4800;
const REQUEST_TIMEOUT_MS = 2000;

// The network name was checked against the skel's pattern, so it cannot climb out of dataDir.
export const networkDir = (loc: StoreLocation): string => join(loc.dataDir, loc.network);

async function openEtcd(loc: StoreLocation, o: OpenOptions): Promise<OpenedStore> {
  if (loc.store?.type !== "etcd") throw new Error("not an etcd store");
  const { openEtcdStore } = await import("./etcd/store.ts");
  const budgetMs = o.budgetMs ?? CLUSTER_BUDGET_MS;
  return openEtcdStore({
    config: loc.store,
    network: loc.network,
    dataDir: loc.dataDir,
    budgetMs,
    mode: o.readOnly ? "read" : "write",
    // Leave room to try another member within a short budget (STATUS).
    requestTimeoutMs: Math.min(REQUEST_TIMEOUT_MS, Math.max(250, budgetMs / loc.store.endpoints.length)),
  });
}

/** The network's store, created on first use. */
export async function createStore(loc: StoreLocation, o: OpenOptions = {}): Promise<OpenedStore> {
  return loc.store?.type === "etcd" ? openEtcd(loc, o) : createSqliteStore(networkDir(loc));
}

/**
 * The network's store if it has one; nothing is created or written otherwise. A cluster store
 * always exists (other nodes, or this one before it lost its cache, may hold state there).
 */
export async function openExistingStore(loc: StoreLocation, o: OpenOptions = {}): Promise<OpenedStore | undefined> {
  return loc.store?.type === "etcd" ? openEtcd(loc, o) : openSqliteStore(networkDir(loc));
}

export type { StoreHealth };
export type RestoreOutcome = SqliteRestore;
export type RestoreOptions = { dryRun?: boolean; rebuildCorrupt?: boolean };

// Inspection and recovery are of the node's own store: a cluster store's reservations are in etcd.
function localOnly(loc: StoreLocation, what: string): void {
  if (loc.store?.type === "etcd") throw new Error(`${what} works on the local store; network ${loc.network} uses etcd`);
}

/** Looks at the network's local store without changing it: absent, ok, lost or corrupt. */
export function inspectStore(loc: StoreLocation, opts: { integrity?: boolean } = {}): StoreHealth {
  localOnly(loc, "inspect");
  return inspectSqliteStore(networkDir(loc), opts);
}

/** Restores reservations into the network's local store in one transaction (see restoreSqliteStore). */
export async function restoreStore(
  loc: StoreLocation,
  list: readonly Reservation[],
  opts: RestoreOptions = {},
): Promise<RestoreOutcome> {
  localOnly(loc, "recover");
  return restoreSqliteStore(networkDir(loc), list, opts);
}

/**
 * Whether the network has, or had, a local store in this data dir: its database, or the identity
 * file a lost one leaves (the operator CLI looks, it never creates one).
 */
export const hasStore = (loc: StoreLocation): boolean =>
  existsSync(join(networkDir(loc), DB_FILE)) || existsSync(join(networkDir(loc), ID_FILE));

/**
 * The network's local store for the operator CLI, if it has a database; nothing is created
 * otherwise. A lost store is a "lost" StoreError, as for every command.
 */
export function openInspectable(loc: StoreLocation): InspectableStore | undefined {
  localOnly(loc, "the operator CLI");
  const s = openSqliteStore(networkDir(loc));
  if (s && existsSync(join(networkDir(loc), DB_FILE))) return s;
  s?.close();
  return undefined;
}
