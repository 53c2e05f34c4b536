// Range sets as an operator command sees them: from the config (--conf: ranges, gateways and the
// holes ADD skips), or, with only the store at hand, from the keys the store recorded with each
// reservation and cursor ("10.1.2.1-10.1.2.254,…": each range's first and last address).
import { formatIp, parseIp, type Family, type Ip } from "../ip.ts";
import type { Hole, RangeSet } from "../range-set.ts";
import type { InspectableStore } from "../store/inspect.ts";

export type SetView = {
  key: string;
  family: Family;
  /** The addresses of each range, in the set's order. */
  spans: readonly Hole[];
  /** Gateways and excluded addresses inside the spans; empty when the config is not known. */
  holes: readonly Hole[];
  gateways: readonly Ip[];
  /** From the config (holes and gateways known), or only from the store's key. */
  fromConfig: boolean;
};

export const fromRangeSet = (s: RangeSet): SetView => ({
  key: s.key,
  family: s.family,
  spans: s.ranges.map((r) => ({ lo: r.rangeStart.value, hi: r.rangeEnd.value })),
  holes: s.holes,
  gateways: s.ranges.map((r) => r.gateway),
  fromConfig: true,
});

/** The set a store key names, or undefined if the key is not one (an imported record's "", damage). */
export function fromKey(key: string): SetView | undefined {
  if (key === "") return undefined;
  const spans: Hole[] = [];
  let family: Family | undefined;
  for (const part of key.split(",")) {
    const [a, b, ...rest] = part.split("-");
    const lo = parseIp(a ?? "");
    const hi = parseIp(b ?? "");
    if (rest.length > 0 || !lo || !hi || lo.family !== hi.family || lo.value > hi.value) return undefined;
    if (formatIp(lo) !== a || formatIp(hi) !== b || (family !== undefined && family !== lo.family)) return undefined;
    family = lo.family;
    spans.push({ lo: lo.value, hi: hi.value });
  }
  return family === undefined ? undefined : { key, family, spans, holes: [], gateways: [], fromConfig: false };
}

/** Every set the store's own records name, in key order. */
export async function recordedSets(s: InspectableStore): Promise<SetView[]> {
  return (await s.rangeSetKeys()).map(fromKey).filter((v): v is SetView => v !== undefined);
}

const inside = (hs: readonly Hole[], v: bigint): boolean => hs.some((h) => v >= h.lo && v <= h.hi);
export const spans = (s: SetView, ip: Ip): boolean => ip.family === s.family && inside(s.spans, ip.value);
export const inHoles = (s: SetView, ip: Ip): boolean => ip.family === s.family && inside(s.holes, ip.value);

const count = (hs: readonly Hole[]): bigint => hs.reduce((n, h) => n + h.hi - h.lo + 1n, 0n);
/** Addresses the set can hand out. */
export const sizeOf = (s: SetView): bigint => count(s.spans) - count(s.holes);
export const holeCount = (s: SetView): bigint => count(s.holes);
