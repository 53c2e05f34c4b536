// Where reservations live. Small on purpose, like host-local's backend.Store: the allocator and
// the commands see only this, so a cluster-wide store can stand behind it too.
import type { Ip } from "../ip.ts";

/** One network attachment, as CNI identifies it. */
export type Attachment = { containerId: string; ifname: string };

export type Reservation = {
  ip: Ip;
  containerId: string;
  /** "" for a legacy host-local record that held only the container ID. */
  ifname: string;
  /** The range set's identity (its text, e.g. "10.1.2.1-10.1.2.254"); "" for imported records. */
  rangeSet: string;
};

export interface Store {
  /**
   * Runs fn with every other writer of this network shut out; either all of its changes land or
   * none do (a crash or a thrown error leaves the store as it was).
   */
  transaction<T>(fn: () => Promise<T>): Promise<T>;
  /** Takes ip for the attachment and moves the range set's cursor to it; false if it is taken. */
  reserve(r: Reservation): Promise<boolean>;
  /** Frees every address of the attachment (and its legacy ID-only records); returns them. */
  releaseById(a: Attachment): Promise<Reservation[]>;
  getById(a: Attachment): Promise<Reservation[]>;
  /** The range set's round-robin cursor: the last address reserved in it. */
  lastReserved(rangeSet: string): Promise<Ip | undefined>;
  /** The lowest address in [lo, hi] (one family) that no reservation holds. */
  firstFree(lo: Ip, hi: Ip): Promise<Ip | undefined>;
  /** Every attachment holding an address, each once. */
  listAttachments(): Promise<Attachment[]>;
}
