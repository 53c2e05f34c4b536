// One address range inside a subnet, with host-local's defaults and validation messages
// (plugins/ipam/host-local/backend/allocator/range.go).
import {
  cidrContains,
  formatCidr,
  formatIp,
  lastOf,
  networkOf,
  nextIp,
  parseCidr,
  parseIp,
  prevIp,
  bits,
  ipEq,
  type Cidr,
  type Ip,
} from "./ip.ts";

export type Range = {
  subnet: Cidr;
  rangeStart: Ip;
  rangeEnd: Ip;
  gateway: Ip;
};

export type RangeInput = Record<string, unknown>;

/** A validation failure whose message host-local also prints; config.ts adds the context. */
export class RangeConfigError extends Error {}
const fail = (msg: string): never => {
  throw new RangeConfigError(msg);
};

function optionalIp(input: RangeInput, key: string): Ip | undefined {
  const v = input[key];
  if (v === undefined || v === null || v === "") return undefined;
  const ip = typeof v === "string" ? parseIp(v) : undefined;
  return ip ?? fail(`invalid IP address ${JSON.stringify(v)} in "${key}"`);
}

/** Inside the subnet and, where they are set, inside rangeStart..rangeEnd (host-local Range.Contains). */
export function rangeContains(r: { subnet: Cidr; rangeStart?: Ip; rangeEnd?: Ip }, ip: Ip): boolean {
  if (!cidrContains(r.subnet, ip)) return false;
  if (r.rangeStart && ip.value < r.rangeStart.value) return false;
  if (r.rangeEnd && ip.value > r.rangeEnd.value) return false;
  return true;
}

/**
 * Addresses no pod may have (RFC 6890: "this host" 0.0.0.0 and ::, loopback, multicast). A subnet
 * holding one would hand it out or make it a gateway: 0.0.0.0/0 would give 0.0.0.2/0 with gateway
 * 0.0.0.1, ::/0 the loopback ::1 as gateway. host-local takes 127.0.0.0/8 or 224.0.0.0/24 as they
 * are; berth refuses them.
 */
const NOT_FOR_PODS = (
  [
    ["the unspecified address", "0.0.0.0/32"],
    ["loopback addresses", "127.0.0.0/8"],
    ["multicast addresses", "224.0.0.0/4"],
    ["the unspecified address", "::/128"],
    ["the loopback address", "::1/128"],
    ["multicast addresses", "ff00::/8"],
  ] as const
).map(([what, text]) => {
  const cidr = parseCidr(text);
  if (!cidr) throw new Error(`bad constant ${text}`);
  return { what, cidr };
});

const cidrsOverlap = (a: Cidr, b: Cidr): boolean => cidrContains(a, b.ip) || cidrContains(b, a.ip);

/** Why a subnet cannot be a pod network, or undefined if it can. */
export function notAPodNetwork(subnet: Cidr): string | undefined {
  const bad = NOT_FOR_PODS.find((n) => cidrsOverlap(subnet, n.cidr));
  return (
    bad && `Network ${formatCidr(subnet)} cannot be a pod network: it contains ${bad.what} (${formatCidr(bad.cidr)})`
  );
}

export function canonicalizeRange(input: RangeInput): Range {
  const raw = input.subnet;
  if (typeof raw !== "string" || raw === "") fail("subnet is required");
  const subnet = parseCidr(raw as string) ?? fail(`invalid CIDR address: ${String(raw)}`);
  const fam = subnet.ip.family;
  // No allocator for a network with no usable addresses, e.g. a /31 or /32.
  if (subnet.prefix > bits(fam) - 2) fail(`Network ${formatCidr(subnet)} too small to allocate from`);
  const network = networkOf(subnet);
  if (!ipEq(network, subnet.ip)) {
    fail(
      `Network has host bits set. For a subnet mask of length ${subnet.prefix} the network address is ${formatIp(network)}`,
    );
  }
  const special = notAPodNetwork(subnet);
  if (special) fail(special);
  const gateway = optionalIp(input, "gateway") ?? nextIp(network);
  const start = optionalIp(input, "rangeStart");
  const end = optionalIp(input, "rangeEnd");
  const bounds = { subnet, rangeStart: start, rangeEnd: end };
  if (start && !rangeContains(bounds, start))
    fail(`RangeStart ${formatIp(start)} not in network ${formatCidr(subnet)}`);
  if (end && !rangeContains(bounds, end)) fail(`RangeEnd ${formatIp(end)} not in network ${formatCidr(subnet)}`);
  return {
    subnet,
    gateway,
    rangeStart: start ?? nextIp(network),
    // IPv4 leaves out the broadcast address; IPv6 has none.
    rangeEnd: end ?? (fam === 4 ? prevIp(lastOf(subnet)) : lastOf(subnet)),
  };
}

export const rangeString = (r: Range): string => `${formatIp(r.rangeStart)}-${formatIp(r.rangeEnd)}`;

export function rangesOverlap(a: Range, b: Range): boolean {
  if (a.subnet.ip.family !== b.subnet.ip.family) return false;
  return (
    rangeContains(a, b.rangeStart) ||
    rangeContains(a, b.rangeEnd) ||
    rangeContains(b, a.rangeStart) ||
    rangeContains(b, a.rangeEnd)
  );
}
