// How a store fails, in the store's own terms. Every store raises these and nothing else for its
// own failures; the command side maps them to CNI codes in one place (cni/with-store.ts).

export type StoreErrorKind =
  /** Another writer held the store longer than the store waits. */
  | "busy"
  /** The store cannot be reached (a cluster store without quorum, an endpoint that does not answer). */
  | "unavailable"
  /** An optimistic transaction kept losing to concurrent writers. */
  | "conflict"
  /** The store's data is damaged or is not a store at all. */
  | "corrupt"
  /** Reading or writing the store's files failed (permissions, a full or read-only disk). */
  | "io";

export class StoreError extends Error {
  readonly kind: StoreErrorKind;
  /** The store's path or endpoint; the message names it too. */
  readonly where: string;
  constructor(kind: StoreErrorKind, where: string, message: string) {
    super(message.includes(where) ? message : `${message} (${where})`);
    this.name = "StoreError";
    this.kind = kind;
    this.where = where;
  }
}
