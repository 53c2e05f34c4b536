// Opening a network's store for an operator command: it is looked at, never created, always
// closed, and its failures become one line for the person.
import { StoreError } from "../store/errors.ts";
import type { InspectableStore } from "../store/inspect.ts";
import { openInspectable } from "../store/open.ts";
import { failure } from "./errors.ts";
import type { Network } from "./target.ts";

/** Runs fn on the network's store; `none` when the network has no store yet. */
export async function withStoreOf<T>(net: Network, fn: (s: InspectableStore) => Promise<T>, none: T): Promise<T> {
  let store: InspectableStore | undefined;
  try {
    store = openInspectable(net);
    return store ? await fn(store) : none;
  } catch (e) {
    throw e instanceof StoreError ? failure(`network ${net.network}: ${e.message}`) : e;
  } finally {
    store?.close();
  }
}
