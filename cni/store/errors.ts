// How a store fails, in the store's own terms. Every store raises these and nothing else for its
// own failures; the command side maps them to CNI codes in one place (cni/with-store.ts).
import { errnoReason } from "../errno.ts";
import type { Ip } from "../ip.ts";
import type { Attachment } from "./store.ts";

export type StoreErrorKind =
  /** Another writer held the store longer than the store waits. */
  | "busy"
  /** The store cannot be reached (a cluster store without quorum, an endpoint that does not answer). */
  | "unavailable"
  /** An optimistic transaction kept losing to concurrent writers. */
  | "conflict"
  /** The store's data is damaged or is not a store at all. */
  | "corrupt"
  /**
   * The network had a store and it is gone: its database is missing, empty or another store's.
   * Nothing may be handed out until an operator recovers it, or running containers' addresses
   * would be handed out again.
   */
  | "lost"
  /** Reading or writing the store's files failed (permissions, a full or read-only disk). */
  | "io";

export class StoreError extends Error {
  readonly kind: StoreErrorKind;
  /** The store's path or endpoint; the message names it too. */
  readonly where: string;
  /** What the underlying layer said (e.g. SQLite's own words), for the CNI error's details. */
  readonly detail: string;
  constructor(kind: StoreErrorKind, where: string, message: string, detail = "") {
    super(message.includes(where) ? message : `${message} (${where})`);
    this.name = "StoreError";
    this.kind = kind;
    this.where = where;
    this.detail = detail;
  }
}

/** A failed file-system call on the store's files: what failed and where, as an I/O store error. */
export const fsFailure = (action: string, path: string, e: unknown): StoreError =>
  new StoreError("io", path, `store: cannot ${action} ${path}: ${errnoReason(e)}`);

/** One address that a restore was asked to give to an attachment while another one holds it. */
export type RestoreConflict = {
  readonly ip: Ip;
  readonly holder: Attachment;
  readonly wanted: Attachment;
};

/** A restore refused as a whole: it would have given an address to two attachments. */
export class RestoreConflictError extends Error {
  readonly conflicts: readonly RestoreConflict[];
  constructor(message: string, conflicts: readonly RestoreConflict[]) {
    super(message);
    this.name = "RestoreConflictError";
    this.conflicts = conflicts;
  }
}
