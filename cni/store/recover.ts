// Recovery of a lost store from what the node's runtimes know: the attachments in libcni's result
// cache (cni/store/cni-cache.ts), optionally only those in a list to keep (as `gc --keep`), become
// reservations again, written in one transaction that refuses any address with two holders.
//
//   const scan = readCniCache("/var/lib/cni/results", network);
//   const plan = planRecovery(scan.attachments, { rangeSets: conf.rangeSets, keep });
//   const done = await restoreReservations({ dataDir, network }, plan.restore, { dryRun });
import { formatIp, ipCmp, type Ip } from "../ip.ts";
import { rangeSetContains, type RangeSet } from "../range-set.ts";
import type { CachedAttachment } from "./cni-cache.ts";
import { restoreStore, type RestoreOptions, type RestoreOutcome, type StoreLocation } from "./open.ts";
import type { Attachment, Reservation } from "./store.ts";

/** One cached address (or whole attachment, without address) left out of the restore, and why. */
export type RecoverySkip = {
  readonly attachment: Attachment;
  readonly address?: Ip;
  readonly file: string;
  readonly reason: string;
};

export type RecoveryPlan = {
  /** Sorted by address, so each set's round-robin cursor ends after the highest restored address. */
  readonly restore: readonly Reservation[];
  readonly skipped: readonly RecoverySkip[];
};

export type RecoveryOptions = {
  /**
   * The network's range sets (its config, as ADD reads it): each address is restored into the set
   * that contains it, and an address outside every set is skipped. Without them, addresses are
   * restored with no set (rangeSet ""), as taken-over host-local records are.
   */
  readonly rangeSets?: readonly RangeSet[];
  /** Only these attachments are restored (the CNI GC list `cni.dev/valid-attachments`). */
  readonly keep?: readonly Attachment[];
};

const same = (a: Attachment, b: Attachment) => a.containerId === b.containerId && a.ifname === b.ifname;

/** Which reservations the cached attachments give back (pure: reads and writes nothing). */
export function planRecovery(cached: readonly CachedAttachment[], opts: RecoveryOptions = {}): RecoveryPlan {
  const restore: Reservation[] = [];
  const skipped: RecoverySkip[] = [];
  for (const a of cached) {
    const attachment = { containerId: a.containerId, ifname: a.ifname };
    if (opts.keep && !opts.keep.some((k) => same(k, attachment))) {
      skipped.push({ attachment, file: a.file, reason: "not in the list of attachments to keep" });
      continue;
    }
    const used = new Set<string>();
    for (const ip of a.addresses) {
      let rangeSet = "";
      if (opts.rangeSets) {
        const set = opts.rangeSets.find((s) => rangeSetContains(s, ip));
        if (!set) {
          skipped.push({ attachment, address: ip, file: a.file, reason: "outside every range set of the network" });
          continue;
        }
        if (used.has(set.key)) {
          skipped.push({
            attachment,
            address: ip,
            file: a.file,
            reason: `a second address of the attachment in range set ${set.key}`,
          });
          continue;
        }
        used.add(set.key);
        rangeSet = set.key;
      }
      restore.push({ ip, ...attachment, rangeSet });
    }
  }
  restore.sort((x, y) => ipCmp(x.ip, y.ip));
  return { restore, skipped };
}

/**
 * Writes the reservations into the network's store in one transaction: merged into an intact
 * store, or a new store with a new identity when the network's was lost (or never made). Refuses
 * the whole list with a RestoreConflictError if an address would get two holders; a corrupt
 * store is a "corrupt" StoreError unless rebuildCorrupt. dryRun: the same checks, nothing written.
 */
export const restoreReservations = (
  loc: StoreLocation,
  reservations: readonly Reservation[],
  opts: RestoreOptions = {},
): Promise<RestoreOutcome> => restoreStore(loc, reservations, opts);

/** "10.1.2.3 ctr/eth0" lines, for showing a plan to a person. */
export const describeReservation = (r: Reservation): string =>
  `${formatIp(r.ip)} ${r.containerId}/${r.ifname}${r.rangeSet ? ` (${r.rangeSet})` : ""}`;
