// Overlap checks of range configs in O(n log n), naming the pair host-local names. host-local
// (plugins/ipam/host-local/backend/allocator: RangeSet.Canonicalize, config.go) compares every
// pair in nested loops and reports the first overlapping pair in config order: O(n^2), 2.5 s for
// 3,000 ranges. Sorting the intervals and comparing neighbours finds whether any overlap; the pair
// host-local reports follows from that (see firstOverlappingLabel).

/** A closed interval of address values of one family, labelled with what it belongs to. */
export type Span = { readonly lo: bigint; readonly hi: bigint; readonly label: number };

const overlaps = (a: Span, b: Span): boolean => a.lo <= b.hi && b.lo <= a.hi;
const byLo = (a: Span, b: Span): number => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0);

/**
 * The smallest label that has a span overlapping a span of another label, or undefined. This is
 * the first index of host-local's outer loop that finds an overlap: a label overlapping only
 * smaller labels cannot be the smallest one overlapping any, since overlapping is symmetric.
 *
 * In sorted order, span k overlaps a span of another label iff the largest end among the spans
 * before it with another label reaches its start, or the first span after it with another label
 * starts before its end (that one has the smallest start of all later spans of other labels).
 */
export function firstOverlappingLabel(spans: readonly Span[]): number | undefined {
  const s = [...spans].sort(byLo);
  // nextOther[k]: the first position after k whose label differs from s[k]'s.
  const nextOther = new Array<number>(s.length).fill(s.length);
  for (let k = s.length - 2; k >= 0; k--) {
    const here = s[k] as Span;
    const next = s[k + 1] as Span;
    nextOther[k] = next.label !== here.label ? k + 1 : (nextOther[k + 1] as number);
  }
  // The two largest ends so far that belong to different labels.
  let best: Span | undefined;
  let second: Span | undefined;
  let found: number | undefined;
  for (const [k, span] of s.entries()) {
    const before = best && best.label !== span.label ? best : second;
    const after = s[nextOther[k] as number];
    if ((before && before.hi >= span.lo) || (after && after.lo <= span.hi))
      found = found === undefined ? span.label : Math.min(found, span.label);
    if (!best || span.hi > best.hi) {
      if (best && best.label !== span.label) second = best;
      best = span;
    } else if (span.label !== best.label && (!second || span.hi > second.hi)) second = span;
  }
  return found;
}

/**
 * host-local's pair: the first label i whose spans overlap another label's, and the smallest
 * label j > i with a span overlapping one of i's. Each label's own spans must not overlap each
 * other (a single range, or a range set already checked). O(n log n).
 */
export function firstOverlappingPair(spans: readonly Span[]): [number, number] | undefined {
  const i = firstOverlappingLabel(spans);
  if (i === undefined) return undefined;
  const mine = spans.filter((x) => x.label === i).sort(byLo);
  const hit = (x: Span): boolean => {
    // The last of i's spans that starts at or before x's end; i's spans are disjoint and sorted,
    // so it is the one reaching furthest among those that could overlap x.
    let lo = 0;
    let hi = mine.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((mine[mid] as Span).lo <= x.hi) {
        at = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return at >= 0 && overlaps(mine[at] as Span, x);
  };
  let j: number | undefined;
  for (const x of spans) if (x.label > i && (j === undefined || x.label < j) && hit(x)) j = x.label;
  return j === undefined ? undefined : [i, j];
}
