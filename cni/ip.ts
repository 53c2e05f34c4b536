// IP addresses as (family, bigint): exact arithmetic for both families, and text in the same
// form the Go plugins print (net.IP.String: RFC 5952 compression, IPv4-mapped shown as IPv4).

export type Family = 4 | 6;
export type Ip = { readonly family: Family; readonly value: bigint };
export type Cidr = { readonly ip: Ip; readonly prefix: number };

export const bits = (f: Family): number => (f === 4 ? 32 : 128);
const maxValue = (f: Family): bigint => (1n << BigInt(bits(f))) - 1n;

function parseV4(s: string): bigint | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    // Go rejects leading zeros since 1.17 (they were ambiguous octal).
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseV6(s: string): bigint | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  let tail = s;
  let v4Tail: bigint | undefined;
  const lastColon = s.lastIndexOf(":");
  if (s.includes(".")) {
    v4Tail = parseV4(s.slice(lastColon + 1));
    if (v4Tail === undefined) return undefined;
    tail = `${s.slice(0, lastColon + 1)}0:0`; // stand-in groups, replaced below
  }
  const halves = tail.split("::");
  if (halves.length > 2) return undefined;
  const groups = (h: string): string[] | undefined => (h === "" ? [] : h.split(":"));
  const head = groups(halves[0] ?? "");
  const rest = halves.length === 2 ? groups(halves[1] ?? "") : [];
  if (!head || !rest) return undefined;
  const total = head.length + rest.length;
  if (halves.length === 1 ? total !== 8 : total > 7) return undefined;
  const all = [...head, ...Array<string>(8 - total).fill("0"), ...rest];
  let v = 0n;
  for (const g of all) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    v = (v << 16n) | BigInt(parseInt(g, 16));
  }
  if (v4Tail !== undefined) v = (v & ~0xffffffffn) | v4Tail;
  return v;
}

const V4_MAPPED_PREFIX = 0xffffn << 32n;

export function parseIp(s: string): Ip | undefined {
  if (typeof s !== "string") return undefined;
  const v4 = parseV4(s);
  if (v4 !== undefined) return { family: 4, value: v4 };
  const v6 = parseV6(s);
  if (v6 === undefined) return undefined;
  // Go's net.IP treats ::ffff:a.b.c.d as the IPv4 address a.b.c.d.
  if (v6 >> 32n === 0xffffn) return { family: 4, value: v6 & 0xffffffffn };
  return { family: 6, value: v6 };
}

/** "a.b.c.d/n" or "x::/n"; the address keeps its host bits (callers decide if that is an error). */
export function parseCidr(s: string): Cidr | undefined {
  if (typeof s !== "string") return undefined;
  const slash = s.indexOf("/");
  if (slash < 0) return undefined;
  const ip = parseIp(s.slice(0, slash));
  const p = s.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(p)) return undefined;
  const prefix = Number(p);
  // An IPv4-mapped address written with an IPv6 prefix: Go keeps a 128-bit mask; we reduce it.
  const isMapped = ip.family === 4 && s.slice(0, slash).includes(":");
  const effective = isMapped ? prefix - 96 : prefix;
  if (effective < 0 || effective > bits(ip.family)) return undefined;
  return { ip, prefix: effective };
}

/** An address alone, or an address with a prefix (which is ignored), as requested IPs allow. */
export function parseIpOrCidr(s: string): Ip | undefined {
  return parseIp(s) ?? parseCidr(s)?.ip;
}

export function formatIp(ip: Ip): string {
  if (ip.family === 4) {
    const v = Number(ip.value);
    return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join(".");
  }
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((ip.value >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: compress the longest run of two or more zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(":");
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

export const formatCidr = (c: Cidr): string => `${formatIp(c.ip)}/${c.prefix}`;

export const ipEq = (a: Ip, b: Ip): boolean => a.family === b.family && a.value === b.value;
export const ipCmp = (a: Ip, b: Ip): number =>
  a.family !== b.family ? a.family - b.family : a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
export const withValue = (ip: Ip, value: bigint): Ip => ({ family: ip.family, value });

export function networkOf(c: Cidr): Ip {
  const hostBits = BigInt(bits(c.ip.family) - c.prefix);
  return withValue(c.ip, (c.ip.value >> hostBits) << hostBits);
}

export function lastOf(c: Cidr): Ip {
  const hostBits = BigInt(bits(c.ip.family) - c.prefix);
  return withValue(c.ip, networkOf(c).value | ((1n << hostBits) - 1n));
}

export function cidrContains(c: Cidr, ip: Ip): boolean {
  return ip.family === c.ip.family && ip.value >= networkOf(c).value && ip.value <= lastOf(c).value;
}

export const nextIp = (ip: Ip): Ip => withValue(ip, ip.value === maxValue(ip.family) ? 0n : ip.value + 1n);
export const prevIp = (ip: Ip): Ip => withValue(ip, ip.value === 0n ? maxValue(ip.family) : ip.value - 1n);

/**
 * 16 big-endian bytes: one key format for both families that sorts like the numbers do.
 * IPv4 is stored IPv4-mapped; parseIp never yields an IPv6 address in that block, so keys of the
 * two families cannot collide.
 */
export function ipKey(ip: Ip): Uint8Array {
  const v = ip.family === 4 ? V4_MAPPED_PREFIX | ip.value : ip.value;
  const b = Buffer.alloc(16);
  b.writeBigUInt64BE(v >> 64n, 0);
  b.writeBigUInt64BE(v & 0xffffffffffffffffn, 8);
  return b;
}

export function ipFromKey(key: Uint8Array): Ip {
  // IPv4 (the common case, and a whole pool of it for the operator CLI's list): no 128-bit math.
  if (key.length === 16 && key[10] === 0xff && key[11] === 0xff && key.subarray(0, 10).every((x) => x === 0)) {
    return {
      family: 4,
      value: BigInt((((key[12] ?? 0) << 24) | ((key[13] ?? 0) << 16) | ((key[14] ?? 0) << 8) | (key[15] ?? 0)) >>> 0),
    };
  }
  const b = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  const v = (b.readBigUInt64BE(0) << 64n) | b.readBigUInt64BE(8);
  return v >> 32n === 0xffffn ? { family: 4, value: v & 0xffffffffn } : { family: 6, value: v };
}
