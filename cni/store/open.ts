// Chooses the store for a network. Today: the embedded SQLite store in <dataDir>/<name>; a later
// `store` section of the config would select another backend here, from the same location.
import { join } from "node:path";
import { createSqliteStore, openSqliteStore } from "./sqlite.ts";
import type { Store } from "./store.ts";

/** Which network's store, and where the node keeps its state. */
export type StoreLocation = { readonly dataDir: string; readonly network: string };

/** A store as one command holds it: used for one transaction, then closed. */
export type OpenedStore = Store & { close(): void };

// The network name was checked against the skel's pattern, so it cannot climb out of dataDir.
const networkDir = (loc: StoreLocation): string => join(loc.dataDir, loc.network);

/** The network's store, created on first use. */
export const createStore = (loc: StoreLocation): OpenedStore => createSqliteStore(networkDir(loc));

/** The network's store if it has one; nothing is created or written otherwise. */
export const openExistingStore = (loc: StoreLocation): OpenedStore | undefined => openSqliteStore(networkDir(loc));
