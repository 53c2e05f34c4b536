// A range set: the ranges one address is allocated from (host-local RangeSet).
import type { Family, Ip } from "./ip.ts";
import {
  canonicalizeRange,
  rangeContains,
  rangesOverlap,
  rangeString,
  RangeConfigError,
  type Range,
  type RangeInput,
} from "./range.ts";

export type RangeSet = readonly Range[];

export function canonicalizeRangeSet(input: unknown): RangeSet {
  if (!Array.isArray(input)) throw new RangeConfigError("a range set must be a list of ranges");
  if (input.length === 0) throw new RangeConfigError("empty range set");
  const set: Range[] = [];
  for (const r of input) {
    if (typeof r !== "object" || r === null || Array.isArray(r))
      throw new RangeConfigError("a range must be an object");
    const range = canonicalizeRange(r as RangeInput);
    if (set.length > 0 && set[0]!.subnet.ip.family !== range.subnet.ip.family)
      throw new RangeConfigError("mixed address families");
    set.push(range);
  }
  for (let i = 0; i < set.length; i++) {
    for (let j = i + 1; j < set.length; j++) {
      if (rangesOverlap(set[i]!, set[j]!)) {
        throw new RangeConfigError(`subnets ${rangeString(set[i]!)} and ${rangeString(set[j]!)} overlap`);
      }
    }
  }
  return set;
}

export const familyOf = (s: RangeSet): Family => s[0]!.subnet.ip.family;
export const rangeSetString = (s: RangeSet): string => s.map(rangeString).join(",");
export const rangeFor = (s: RangeSet, ip: Ip): Range | undefined => s.find((r) => rangeContains(r, ip));
export const rangeSetContains = (s: RangeSet, ip: Ip): boolean => rangeFor(s, ip) !== undefined;

export function rangeSetsOverlap(a: RangeSet, b: RangeSet): boolean {
  return a.some((r1) => b.some((r2) => rangesOverlap(r1, r2)));
}
