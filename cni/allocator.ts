// Picks the address for one range set: a requested one, or the store's next free one in
// host-local's round-robin order (cni/range-set.ts walks it).
import { internal, tryAgainLater } from "../shared/cni/errors.ts";
import type { IpConfig } from "../shared/cni/result.ts";
import { formatIp, ipEq, type Ip } from "./ip.ts";
import type { Range } from "./range.ts";
import { inHole, rangeFor, type RangeSet } from "./range-set.ts";
import type { Attachment, Reservation, Store } from "./store/store.ts";

const ipConfig = (ip: Ip, range: Range): IpConfig => ({
  address: `${formatIp(ip)}/${range.subnet.prefix}`,
  gateway: formatIp(range.gateway),
});

const reservation = (set: RangeSet, att: Attachment, ip: Ip): Reservation => ({
  ip,
  containerId: att.containerId,
  ifname: att.ifname,
  rangeSet: set.key,
});

/**
 * What one ADD wants from a set. required: the user asked for it (CNI_ARGS IP=, args.cni.ips,
 * runtimeConfig.ips), so the ADD fails if it cannot be had. preferred: the attachment already held
 * it before this repeated ADD, so it is kept while the config still allows it; otherwise the set
 * hands out its next free address instead.
 */
export type Want = { required?: Ip; preferred?: Ip };

/** Reserves one address of the set for the attachment (the caller holds the store's transaction). */
export async function allocate(store: Store, set: RangeSet, att: Attachment, want: Want = {}): Promise<IpConfig> {
  const { required, preferred } = want;
  if (required) {
    const range = rangeFor(set, required);
    if (!range) throw internal(`${formatIp(required)} not in range set ${set.key}`);
    if (ipEq(required, range.gateway)) throw internal(`requested ip ${formatIp(required)} is subnet's gateway`);
    if (inHole(set, required) || !(await store.reserve(reservation(set, att, required)))) {
      throw internal(`requested IP address ${formatIp(required)} is not available in range set ${set.key}`);
    }
    return ipConfig(required, range);
  }
  if (preferred) {
    const range = rangeFor(set, preferred);
    if (range && !inHole(set, preferred) && (await store.reserve(reservation(set, att, preferred))))
      return ipConfig(preferred, range);
  }
  const ip = await store.nextFree(set);
  if (!ip) throw internal(`no IP addresses available in range set: ${set.key}`);
  const range = rangeFor(set, ip);
  // The candidate came from the store inside this transaction; losing it, or one outside the set,
  // means the store broke its own isolation, and handing out anything would risk a duplicate.
  if (!range || inHole(set, ip) || !(await store.reserve(reservation(set, att, ip))))
    throw tryAgainLater(`address ${formatIp(ip)} from the store is not free in range set ${set.key}`);
  return ipConfig(ip, range);
}
