// Where reservations live. Small on purpose, like host-local's backend.Store: the allocator and
// the commands see only this, so a cluster-wide store can stand behind it too. Stores speak
// addresses, attachments and range sets, never the CNI protocol: they fail with a StoreError
// (errors.ts), which the command side turns into a CNI error.
import type { Ip } from "../ip.ts";
import type { RangeSet } from "../range-set.ts";

/** One network attachment, as CNI identifies it. */
export type Attachment = { containerId: string; ifname: string };

export type Reservation = {
  ip: Ip;
  containerId: string;
  /** "" for a legacy host-local record that held only the container ID. */
  ifname: string;
  /** The range set's identity (RangeSet.key, e.g. "10.1.2.1-10.1.2.254"); "" for imported host-local records. */
  rangeSet: string;
};

export interface Store {
  /**
   * Runs fn with every other writer of this network shut out; all of its changes land or none.
   * An optimistic store may run fn more than once (after a conflict), so fn must have no effect
   * outside the store.
   */
  transaction<T>(fn: () => Promise<T>): Promise<T>;
  /** Takes r.ip for the attachment and moves its set's cursor there; false if the address is taken. */
  reserve(r: Reservation): Promise<boolean>;
  /** Frees every address of the attachment (and its legacy ID-only records); returns them. */
  releaseById(a: Attachment): Promise<Reservation[]>;
  getById(a: Attachment): Promise<Reservation[]>;
  /**
   * The set's next free address in round-robin order after its cursor, skipping its holes;
   * undefined when none. The store owns the cursor.
   */
  nextFree(set: RangeSet): Promise<Ip | undefined>;
  /** Every attachment holding an address, each once. */
  listAttachments(): Promise<Attachment[]>;
}
