// Picks the address for one range set: a requested one, or host-local's round-robin: start after
// the set's last reserved address, walk its ranges with wrap-around, skip each range's gateway
// (and berth's excluded addresses), take the first address no one holds.
import { internal, tryAgainLater } from "../shared/cni/errors.ts";
import type { IpConfig } from "../shared/cni/result.ts";
import { isExcluded, type Excluded } from "./config.ts";
import { formatIp, ipEq, withValue, type Ip } from "./ip.ts";
import type { Range } from "./range.ts";
import { rangeFor, rangeSetString, type RangeSet } from "./range-set.ts";
import type { Attachment, Store } from "./store/store.ts";

/** One contiguous stretch of candidates, inside one range. */
type Segment = { range: Range; lo: bigint; hi: bigint };

/** host-local's iterator order as segments: after the cursor to the end, the other ranges, then back to the cursor. */
export function walkOrder(set: RangeSet, cursor: Ip | undefined): Segment[] {
  const full = (r: Range): Segment => ({ range: r, lo: r.rangeStart.value, hi: r.rangeEnd.value });
  const current = cursor ? rangeFor(set, cursor) : undefined;
  const at = current ? set.indexOf(current) : -1;
  if (!cursor || at < 0) return set.map(full);
  const here = set[at]!;
  const out: Segment[] = [];
  if (cursor.value < here.rangeEnd.value) out.push({ range: here, lo: cursor.value + 1n, hi: here.rangeEnd.value });
  for (let i = 1; i < set.length; i++) out.push(full(set[(at + i) % set.length]!));
  out.push({ range: here, lo: here.rangeStart.value, hi: cursor.value });
  return out;
}

/** Cuts the gateway and excluded addresses out of a segment. */
export function withoutHoles(seg: Segment, exclude: readonly Excluded[]): Segment[] {
  const fam = seg.range.subnet.ip.family;
  const holes = [
    { lo: seg.range.gateway.value, hi: seg.range.gateway.value },
    ...exclude.filter((e) => e.family === fam).map((e) => ({ lo: e.lo, hi: e.hi })),
  ]
    .filter((h) => h.hi >= seg.lo && h.lo <= seg.hi)
    .sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const out: Segment[] = [];
  let lo = seg.lo;
  for (const h of holes) {
    if (h.lo > lo) out.push({ range: seg.range, lo, hi: h.lo - 1n });
    if (h.hi + 1n > lo) lo = h.hi + 1n;
  }
  if (lo <= seg.hi) out.push({ range: seg.range, lo, hi: seg.hi });
  return out;
}

export type Candidate = { ip: Ip; range: Range };

/** The next free address in walk order, without taking it. */
export async function nextFree(
  store: Store,
  set: RangeSet,
  setKey: string,
  exclude: readonly Excluded[],
): Promise<Candidate | undefined> {
  const cursor = await store.lastReserved(setKey);
  const fam = set[0]!.subnet.ip;
  for (const seg of walkOrder(set, cursor)) {
    for (const part of withoutHoles(seg, exclude)) {
      const ip = await store.firstFree(withValue(fam, part.lo), withValue(fam, part.hi));
      if (ip) return { ip, range: part.range };
    }
  }
  return undefined;
}

export const ipConfig = (c: Candidate): IpConfig => ({
  address: `${formatIp(c.ip)}/${c.range.subnet.prefix}`,
  gateway: formatIp(c.range.gateway),
});

/** Reserves one address of the set for the attachment (the caller holds the store's transaction). */
export async function allocate(
  store: Store,
  set: RangeSet,
  exclude: readonly Excluded[],
  att: Attachment,
  requested?: Ip,
): Promise<IpConfig> {
  const setKey = rangeSetString(set);
  const reservation = (ip: Ip) => ({ ip, containerId: att.containerId, ifname: att.ifname, rangeSet: setKey });
  if (requested) {
    const range = rangeFor(set, requested);
    if (!range) throw internal(`${formatIp(requested)} not in range set ${setKey}`);
    if (ipEq(requested, range.gateway)) throw internal(`requested ip ${formatIp(requested)} is subnet's gateway`);
    if (isExcluded(exclude, requested) || !(await store.reserve(reservation(requested)))) {
      throw internal(`requested IP address ${formatIp(requested)} is not available in range set ${setKey}`);
    }
    return ipConfig({ ip: requested, range });
  }
  const c = await nextFree(store, set, setKey, exclude);
  if (!c) throw internal(`no IP addresses available in range set: ${setKey}`);
  // The candidate came from the store inside this transaction; losing it means the store broke
  // its own isolation, and handing out anything would risk a duplicate.
  if (!(await store.reserve(reservation(c.ip))))
    throw tryAgainLater(`address ${formatIp(c.ip)} was taken concurrently`);
  return ipConfig(c);
}
