// A range set: the ranges one address is allocated from (host-local's RangeSet), as one value
// built once from the config, and the pure walk over it that every store uses to find the next
// free address the way host-local's RangeIter does.
import { isJsonObject } from "../shared/json.ts";
import type { Family, Ip } from "./ip.ts";
import { firstOverlappingPair } from "./overlap.ts";
import { canonicalizeRange, rangeContains, rangeString, RangeConfigError, type Range } from "./range.ts";

/** A closed interval of address values of the set's family. */
export type Hole = { readonly lo: bigint; readonly hi: bigint };

/** A closed interval of addresses of one family, as `exclude` lists them. */
export type Block = { readonly family: Family; readonly lo: bigint; readonly hi: bigint };

export type Ranges = readonly [Range, ...Range[]];

export type RangeSet = {
  /**
   * The set's stable identity: its ranges as host-local prints them ("10.1.2.1-10.1.2.254,…").
   * Holes are not part of it, so changing `exclude` keeps the set's cursor.
   */
  readonly key: string;
  readonly family: Family;
  readonly ranges: Ranges;
  /** Addresses inside the set never handed out (each range's gateway, the excluded blocks of its family); sorted, merged. */
  readonly holes: readonly Hole[];
};

/** Validates one configured range set with host-local's rules and messages (RangeSet.Canonicalize). */
export function canonicalizeRanges(input: unknown): Ranges {
  if (!Array.isArray(input)) throw new RangeConfigError("a range set must be a list of ranges");
  const ranges: Range[] = [];
  for (const r of input) {
    if (!isJsonObject(r)) throw new RangeConfigError("a range must be an object");
    const range = canonicalizeRange(r);
    const first = ranges[0];
    if (first && first.subnet.ip.family !== range.subnet.ip.family)
      throw new RangeConfigError("mixed address families");
    ranges.push(range);
  }
  const [first, ...rest] = ranges;
  if (!first) throw new RangeConfigError("empty range set");
  // After every range parsed, as host-local does: the first overlapping pair in order is named.
  const pair = firstOverlappingPair(
    ranges.map((r, label) => ({ lo: r.rangeStart.value, hi: r.rangeEnd.value, label })),
  );
  if (pair) {
    const [a, b] = pair.map((i) => ranges[i] as Range);
    throw new RangeConfigError(`subnets ${rangeString(a as Range)} and ${rangeString(b as Range)} overlap`);
  }
  return [first, ...rest];
}

/** host-local's pair of range sets (by index) that overlap, the first in config order; O(n log n). */
export function overlappingSets(sets: readonly Ranges[]): [number, number] | undefined {
  let best: [number, number] | undefined;
  for (const family of [4, 6] as const) {
    const spans = sets.flatMap((s, label) =>
      s[0].subnet.ip.family === family ? s.map((r) => ({ lo: r.rangeStart.value, hi: r.rangeEnd.value, label })) : [],
    );
    const pair = firstOverlappingPair(spans);
    if (pair && (!best || pair[0] < best[0])) best = pair;
  }
  return best;
}

const byLo = (a: Hole, b: Hole): number => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0);
const max = (a: bigint, b: bigint): bigint => (a > b ? a : b);
const min = (a: bigint, b: bigint): bigint => (a < b ? a : b);

/** Sorted, with overlapping and adjacent intervals joined. */
function merged(holes: readonly Hole[]): Hole[] {
  const out: { lo: bigint; hi: bigint }[] = [];
  for (const h of [...holes].sort(byLo)) {
    const last = out.at(-1);
    if (last && h.lo <= last.hi + 1n) last.hi = max(last.hi, h.hi);
    else out.push({ lo: h.lo, hi: h.hi });
  }
  return out;
}

/** The set's value: its ranges, identity and holes (the gateways and `exclude` entries that fall inside it). */
export function rangeSet(ranges: Ranges, exclude: readonly Block[] = []): RangeSet {
  const family = ranges[0].subnet.ip.family;
  const blocks = merged([
    ...ranges.map((r) => ({ lo: r.gateway.value, hi: r.gateway.value })),
    ...exclude.filter((b) => b.family === family),
  ]);
  // Each range's part of the (sorted, disjoint) blocks: O((ranges + blocks) log blocks).
  const inside = ranges.flatMap((r) => {
    const out: Hole[] = [];
    for (let k = firstEndingAtOrAfter(blocks, r.rangeStart.value); k < blocks.length; k++) {
      const b = blocks[k] as Hole;
      if (b.lo > r.rangeEnd.value) break;
      out.push({ lo: max(b.lo, r.rangeStart.value), hi: min(b.hi, r.rangeEnd.value) });
    }
    return out;
  });
  return { key: ranges.map(rangeString).join(","), family, ranges, holes: merged(inside) };
}

/** The first of the sorted, disjoint holes whose end is at or after value (holes.length if none). */
function firstEndingAtOrAfter(holes: readonly Hole[], value: bigint): number {
  let lo = 0;
  let hi = holes.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((holes[mid] as Hole).hi < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export const rangeFor = (s: RangeSet, ip: Ip): Range | undefined => s.ranges.find((r) => rangeContains(r, ip));
export const rangeSetContains = (s: RangeSet, ip: Ip): boolean => rangeFor(s, ip) !== undefined;
export const inHole = (s: RangeSet, ip: Ip): boolean =>
  ip.family === s.family && s.holes.some((h) => ip.value >= h.lo && ip.value <= h.hi);

/** One stretch of candidate addresses, inside one range. */
export type Segment = { readonly range: Range; readonly lo: bigint; readonly hi: bigint };

/** Cuts the set's holes (sorted, disjoint) out of a segment. */
export function withoutHoles(seg: Segment, holes: readonly Hole[]): Segment[] {
  const out: Segment[] = [];
  let lo = seg.lo;
  for (let k = firstEndingAtOrAfter(holes, seg.lo); k < holes.length; k++) {
    const h = holes[k] as Hole;
    if (h.lo > seg.hi) break;
    if (h.lo > lo) out.push({ range: seg.range, lo, hi: h.lo - 1n });
    lo = h.hi + 1n;
  }
  if (lo <= seg.hi) out.push({ range: seg.range, lo, hi: seg.hi });
  return out;
}

/**
 * Every address the set may hand out, as segments in host-local's round-robin order (RangeIter):
 * after the cursor to the end of its range, the other ranges in order with wrap-around, then the
 * cursor's range from its start up to the cursor itself; the holes cut out. No cursor, or one the
 * set no longer contains, starts at the first range. Its length depends on the number of ranges and
 * holes, never on the size of the pool.
 */
export function walkOrder(set: RangeSet, cursor: Ip | undefined): Segment[] {
  const full = (r: Range): Segment => ({ range: r, lo: r.rangeStart.value, hi: r.rangeEnd.value });
  const at = cursor ? set.ranges.findIndex((r) => rangeContains(r, cursor)) : -1;
  const here = set.ranges[at];
  let order: Segment[];
  if (!cursor || !here) {
    order = set.ranges.map(full);
  } else {
    const others = [...set.ranges.slice(at + 1), ...set.ranges.slice(0, at)].map(full);
    order = [
      { range: here, lo: cursor.value + 1n, hi: here.rangeEnd.value },
      ...others,
      { range: here, lo: here.rangeStart.value, hi: cursor.value },
    ].filter((s) => s.lo <= s.hi);
  }
  return order.flatMap((s) => withoutHoles(s, set.holes));
}

/**
 * The first address of the walk that firstFreeIn finds free, where firstFreeIn(lo, hi) answers the
 * lowest free value in [lo, hi] (a store's own lookup, e.g. one index range scan).
 */
export function firstFreeInWalk(
  set: RangeSet,
  cursor: Ip | undefined,
  firstFreeIn: (lo: bigint, hi: bigint) => bigint | undefined,
): Ip | undefined {
  for (const seg of walkOrder(set, cursor)) {
    const value = firstFreeIn(seg.lo, seg.hi);
    if (value !== undefined) return { family: set.family, value };
  }
  return undefined;
}
