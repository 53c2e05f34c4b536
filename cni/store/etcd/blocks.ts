// Block arithmetic: a pool is cut into aligned blocks (an IPv4 /26 and an IPv6 /122 by default,
// as Calico IPAM does), each owned by one node and holding a bitmap of its taken addresses. A
// node allocates only inside its own blocks (strict affinity), so nodes never contend for the
// same key on a common ADD; a new block is looked for from a point given by a hash of the node's
// name, so nodes claiming at once start far apart.
import { bits, formatIp, parseIp, type Family, type Ip } from "../../ip.ts";
import type { RangeSet } from "../../range-set.ts";

export type Interval = { lo: bigint; hi: bigint };

/** One block: its first address and prefix length. */
export type BlockId = { family: Family; base: bigint; prefix: number };

export const blockHostBits = (b: { family: Family; prefix: number }): bigint => BigInt(bits(b.family) - b.prefix);
export const blockSize = (b: { family: Family; prefix: number }): bigint => 1n << blockHostBits(b);

export function blockOf(ip: Ip, prefix: number): BlockId {
  const host = BigInt(bits(ip.family) - prefix);
  return { family: ip.family, base: (ip.value >> host) << host, prefix };
}

export const blockLast = (b: BlockId): bigint => b.base + blockSize(b) - 1n;
export const blockContains = (b: BlockId, ip: Ip): boolean =>
  ip.family === b.family && ip.value >= b.base && ip.value <= blockLast(b);

/** The block's name in keys: "10.1.2.64-26", "fd10:210::40-122" (no "/" inside an etcd key segment). */
export const blockName = (b: BlockId): string => `${formatIp({ family: b.family, value: b.base })}-${b.prefix}`;

export function parseBlockName(name: string): BlockId | undefined {
  const dash = name.lastIndexOf("-");
  if (dash < 0) return undefined;
  const ip = parseIp(name.slice(0, dash));
  const prefix = Number(name.slice(dash + 1));
  if (!ip || !Number.isInteger(prefix) || prefix < 0 || prefix > bits(ip.family)) return undefined;
  const b = blockOf(ip, prefix);
  return b.base === ip.value ? b : undefined;
}

export const blockCidr = (b: BlockId): string => `${formatIp({ family: b.family, value: b.base })}/${b.prefix}`;

// Bitmaps: bit i (most significant bit first in byte i/8) stands for address base + i.

export const emptyMap = (b: BlockId): Uint8Array => new Uint8Array(Math.max(1, Number(blockSize(b) / 8n)));

export function mapHas(map: Uint8Array, i: number): boolean {
  return ((map[i >> 3] ?? 0) & (0x80 >> (i & 7))) !== 0;
}

export function mapWith(map: Uint8Array, i: number, on: boolean): Uint8Array {
  const out = new Uint8Array(map);
  const byte = i >> 3;
  const bit = 0x80 >> (i & 7);
  out[byte] = on ? (out[byte] ?? 0) | bit : (out[byte] ?? 0) & ~bit;
  return out;
}

export function mapCount(map: Uint8Array): number {
  let n = 0;
  for (const byte of map) {
    let x = byte;
    while (x) {
      x &= x - 1;
      n++;
    }
  }
  return n;
}

export const mapEmpty = (map: Uint8Array): boolean => map.every((b) => b === 0);
export const encodeMap = (map: Uint8Array): string => Buffer.from(map).toString("base64");
export const decodeMap = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "base64"));

/** The offsets in the block that are taken. */
export function mapMembers(map: Uint8Array): number[] {
  const out: number[] = [];
  for (let byte = 0; byte < map.length; byte++) {
    const v = map[byte] ?? 0;
    if (v === 0) continue;
    for (let bit = 0; bit < 8; bit++) if (v & (0x80 >> bit)) out.push(byte * 8 + bit);
  }
  return out;
}

const bigMax = (a: bigint, b: bigint): bigint => (a > b ? a : b);
const bigMin = (a: bigint, b: bigint): bigint => (a < b ? a : b);

/** Closed intervals a minus the (sorted, merged) holes. */
function subtract(a: Interval, holes: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  let lo = a.lo;
  for (const h of holes) {
    if (h.hi < lo) continue;
    if (h.lo > a.hi) break;
    if (h.lo > lo) out.push({ lo, hi: h.lo - 1n });
    lo = h.hi + 1n;
    if (lo > a.hi) return out;
  }
  if (lo <= a.hi) out.push({ lo, hi: a.hi });
  return out;
}

/** The addresses of the block that the set may hand out, in order. */
export function usableIn(b: BlockId, set: RangeSet): Interval[] {
  if (set.family !== b.family) return [];
  const last = blockLast(b);
  const out: Interval[] = [];
  for (const r of set.ranges) {
    const lo = bigMax(r.rangeStart.value, b.base);
    const hi = bigMin(r.rangeEnd.value, last);
    if (lo <= hi) out.push(...subtract({ lo, hi }, set.holes));
  }
  return out.sort((x, y) => (x.lo < y.lo ? -1 : x.lo > y.lo ? 1 : 0));
}

export function isUsable(set: RangeSet, ip: Ip): boolean {
  if (ip.family !== set.family) return false;
  if (!set.ranges.some((r) => ip.value >= r.rangeStart.value && ip.value <= r.rangeEnd.value)) return false;
  return !set.holes.some((h) => ip.value >= h.lo && ip.value <= h.hi);
}

/** The first free usable address of the block strictly after `after` (undefined: from its start). */
export function firstFreeIn(b: BlockId, map: Uint8Array, set: RangeSet, after?: bigint): bigint | undefined {
  for (const part of usableIn(b, set)) {
    let v = after !== undefined && after >= part.lo ? after + 1n : part.lo;
    for (; v <= part.hi; v++) if (!mapHas(map, Number(v - b.base))) return v;
  }
  return undefined;
}

/** The block indices (address >> host bits) that the set's ranges touch, as merged intervals. */
export function blockIndexSpans(set: RangeSet, prefix: number): Interval[] {
  const host = BigInt(bits(set.family) - prefix);
  const spans = set.ranges
    .map((r) => ({ lo: r.rangeStart.value >> host, hi: r.rangeEnd.value >> host }))
    .sort((x, y) => (x.lo < y.lo ? -1 : x.lo > y.lo ? 1 : 0));
  const out: Interval[] = [];
  for (const s of spans) {
    const prev = out[out.length - 1];
    if (prev && s.lo <= prev.hi + 1n) {
      if (s.hi > prev.hi) prev.hi = s.hi;
    } else out.push({ ...s });
  }
  return out;
}

/** 64-bit FNV-1a of the node's name: where its search for a free block starts. */
export function nodeHash(node: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(node, "utf8")) {
    h ^= BigInt(byte);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h;
}

/**
 * Walks the set's blocks starting at the node's hash point, wrapping around, and returns the first
 * that `take` accepts. Taken blocks are skipped one by one, so the walk costs the number of blocks
 * already claimed around the start point, never the size of the pool (an IPv6 /64 has 2^58 /122s).
 */
export function findBlock(
  set: RangeSet,
  prefix: number,
  node: string,
  take: (b: BlockId) => boolean,
  maxSteps = 1_000_000,
): BlockId | undefined {
  const spans = blockIndexSpans(set, prefix);
  const total = spans.reduce((n, s) => n + (s.hi - s.lo + 1n), 0n);
  if (total === 0n) return undefined;
  const host = BigInt(bits(set.family) - prefix);
  const at = (pos: bigint): bigint => {
    let p = pos;
    for (const s of spans) {
      const n = s.hi - s.lo + 1n;
      if (p < n) return s.lo + p;
      p -= n;
    }
    throw new Error("block position out of range");
  };
  const start = nodeHash(node) % total;
  const steps = total < BigInt(maxSteps) ? total : BigInt(maxSteps);
  for (let i = 0n; i < steps; i++) {
    const b: BlockId = { family: set.family, base: at((start + i) % total) << host, prefix };
    if (usableIn(b, set).length > 0 && take(b)) return b;
  }
  return undefined;
}
