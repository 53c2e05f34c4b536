// What the operator CLI (cni/cli/) needs of a store, beyond what the CNI commands use: read every
// reservation with its time, count the reserved addresses of an interval, see the cursors, free one
// address, and the store's own health check. Small and store-agnostic like store.ts: the CLI's
// commands are written against this, so a cluster-wide store plugs in by implementing it.
import type { Family, Ip } from "../ip.ts";
import type { Reservation, Store } from "./store.ts";

export type StoredReservation = Reservation & {
  /** When it was reserved; undefined for one made before the store recorded it (SQLite schema 1). */
  reservedAt: Date | undefined;
};

/** Every field given must match; an ifname matches legacy ID-only records ("") too, as DEL does. */
export type ReservationFilter = { containerId?: string; ifname?: string; ip?: Ip };

/** Where a range set's round-robin walk continues (after ip). */
export type Cursor = { rangeSet: string; ip: Ip };

/** Something wrong in the store's own keeping (its files, its integrity), in words for a person. */
export type StorageProblem = { problem: string; repairable: boolean };

/** The reads run inside read() or transaction(), the changes inside transaction(). */
export interface InspectableStore extends Store {
  /** Runs fn on one consistent view of the store without taking the write lock. */
  read<T>(fn: () => Promise<T>): Promise<T>;
  /** Reservations in address order. */
  reservations(filter?: ReservationFilter): Promise<StoredReservation[]>;
  /** How many addresses of one family in [lo, hi] are reserved. */
  countReserved(family: Family, lo: bigint, hi: bigint): Promise<number>;
  cursors(): Promise<Cursor[]>;
  /** Every range-set key the store recorded with a reservation or a cursor, sorted. */
  rangeSetKeys(): Promise<string[]>;
  /** Frees one address, whoever holds it; undefined if it was free. */
  releaseAddress(ip: Ip): Promise<Reservation | undefined>;
  /** Forgets a range set's cursor (its walk restarts at the set's first address). */
  dropCursor(rangeSet: string): Promise<boolean>;
  /** The store's own checks: its storage's integrity check and the state only it keeps. */
  checkStorage(): Promise<StorageProblem[]>;
  /** Fixes what checkStorage finds that needs no guess; says what it did. */
  repairStorage(): Promise<string[]>;
  close(): void;
}
