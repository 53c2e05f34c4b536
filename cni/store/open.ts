// Chooses the store for a network. Today: the embedded SQLite store in <dataDir>/<name>.
import { join } from "node:path";
import { openSqliteStore, type SqliteStore } from "./sqlite.ts";

export type OpenStore = SqliteStore;

export function openStore(dataDir: string, network: string, create: boolean): OpenStore | undefined {
  // The network name was checked against the skel's pattern, so it cannot climb out of dataDir.
  return openSqliteStore(join(dataDir, network), create);
}

/** Runs fn on the network's store and always closes it; undefined when nothing is stored yet. */
export async function withStore<T>(
  dataDir: string,
  network: string,
  create: boolean,
  fn: (s: OpenStore) => Promise<T>,
): Promise<T | undefined> {
  const store = openStore(dataDir, network, create);
  if (!store) return undefined;
  try {
    return await store.transaction(() => fn(store));
  } finally {
    store.close();
  }
}
