// How a command reaches its network's store: open it, run one transaction, close it. This is also
// the one place where a store's failures become CNI errors.
import { CniError, ErrorCode, notAvailable } from "../shared/cni/errors.ts";
import { StoreError, type StoreErrorKind } from "./store/errors.ts";
import {
  createStore,
  openExistingStore,
  type OpenedStore,
  type OpenOptions,
  type StoreLocation,
} from "./store/open.ts";
import type { Reservation, Store } from "./store/store.ts";

// SPEC.md "Error codes": 11 asks the runtime to try again later, which fits a store that is busy,
// out of reach or losing races for now; 5 is an I/O failure, which a retry will not cure (a lost or
// damaged store needs an operator).
const CODE_OF: Record<StoreErrorKind, number> = {
  busy: ErrorCode.TryAgainLater,
  unavailable: ErrorCode.TryAgainLater,
  conflict: ErrorCode.TryAgainLater,
  corrupt: ErrorCode.IOFailure,
  lost: ErrorCode.IOFailure,
  io: ErrorCode.IOFailure,
};

export const cniErrorOf = (e: StoreError): CniError => new CniError(CODE_OF[e.kind], e.message, e.detail);

/**
 * What a command that reads or frees (DEL, CHECK, GC, STATUS) does when the network's store is lost:
 * refuse (code 5, as ADD), answer as if nothing were stored (DEL: the lost store holds nothing it
 * could free, and the runtime's own record of the attachment goes with the DEL, so a recovery will
 * not bring it back), or report the plugin unavailable (STATUS, SPEC.md: code 50, no ADD can be
 * served).
 */
export type WhenLost = "refuse" | "nothing-stored" | "unavailable";

/**
 * Every reservation this process's commands released, once committed: the audit log's "released"
 * (cni/audit-log.ts). A plugin process runs one CNI command, so this is that command's.
 */
export const committedReleases: Reservation[] = [];

async function inTransaction<T>(store: OpenedStore, fn: (s: Store) => Promise<T>): Promise<T> {
  const released: Reservation[] = [];
  const noting: Store = {
    ...store,
    releaseById: async (a) => {
      const gone = await store.releaseById(a);
      released.push(...gone);
      return gone;
    },
  };
  try {
    const out = await store.transaction(() => {
      released.length = 0; // an optimistic store may run fn again: only the committed run counts
      return fn(noting);
    });
    committedReleases.push(...released);
    return out;
  } finally {
    store.close();
  }
}

async function storeFailuresAsCni<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    throw e instanceof StoreError ? cniErrorOf(e) : e;
  }
}

/** ADD: runs fn in one transaction on the network's store, creating the store on first use. */
export function withStore<T>(loc: StoreLocation, fn: (s: Store) => Promise<T>): Promise<T> {
  return storeFailuresAsCni(async () => inTransaction(await createStore(loc), fn));
}

/**
 * DEL, CHECK, GC, STATUS: runs fn in one transaction on the network's store; a network that has no
 * store yet is left as it is (nothing created, nothing written) and the answer is `none`.
 */
export function withExistingStore<T>(
  loc: StoreLocation,
  fn: (s: Store) => Promise<T>,
  none: T,
  o: OpenOptions & { whenLost?: WhenLost } = {},
): Promise<T> {
  return storeFailuresAsCni(async () => {
    try {
      const store = await openExistingStore(loc, o);
      return store ? await inTransaction(store, fn) : none;
    } catch (e) {
      const whenLost = o.whenLost ?? "refuse";
      if (!(e instanceof StoreError) || e.kind !== "lost" || whenLost === "refuse") throw e;
      if (whenLost === "nothing-stored") return none;
      throw notAvailable(e.message, e.detail);
    }
  });
}
