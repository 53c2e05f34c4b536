// The ipam section of a network config, with host-local's rules and messages
// (plugins/ipam/host-local/backend/allocator/config.go), plus berth's `exclude`.
import { invalidConfig } from "../shared/cni/errors.ts";
import type { CniRequest } from "../shared/cni/dispatch.ts";
import type { Route } from "../shared/cni/result.ts";
import type { JsonObject } from "../shared/json.ts";
import { atLeast } from "../shared/cni/version.ts";
import { formatCidr, formatIp, lastOf, networkOf, parseCidr, parseIp, type Ip } from "./ip.ts";
import { canonicalizeRangeSet, familyOf, rangeSetsOverlap, type RangeSet } from "./range-set.ts";
import { RangeConfigError } from "./range.ts";
import { requestedIps } from "./args.ts";

export const DEFAULT_DATA_DIR = "/var/lib/cni/networks";

/** A closed interval of addresses never handed out. */
export type Excluded = { family: 4 | 6; lo: bigint; hi: bigint };

export type IpamConfig = {
  rangeSets: RangeSet[];
  routes: Route[];
  dataDir: string;
  resolvConf?: string;
  exclude: Excluded[];
  requested: Ip[];
};

const asObject = (v: unknown): JsonObject | undefined =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? (v as JsonObject) : undefined;

function optionalString(o: JsonObject, key: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string") throw invalidConfig(`ipam.${key} must be a string`);
  return v;
}

/** dataDir alone, read leniently: DEL and GC must work even when the rest of the config is broken. */
export function dataDirOf(config: JsonObject): string {
  const d = asObject(config.ipam)?.dataDir;
  return typeof d === "string" && d !== "" ? d : DEFAULT_DATA_DIR;
}

function parseRoutes(v: unknown): Route[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalidConfig("ipam.routes must be a list");
  return v.map((r, i) => {
    const o = asObject(r);
    const dst = o && typeof o.dst === "string" ? parseCidr(o.dst) : undefined;
    if (!o || !dst) throw invalidConfig(`ipam.routes[${i}]: invalid dst ${JSON.stringify(o?.dst)}`);
    const route: Route = { dst: formatCidr(dst) };
    if (o.gw !== undefined && o.gw !== null && o.gw !== "") {
      const gw = typeof o.gw === "string" ? parseIp(o.gw) : undefined;
      if (!gw) throw invalidConfig(`ipam.routes[${i}]: invalid gw ${JSON.stringify(o.gw)}`);
      route.gw = formatIp(gw);
    }
    for (const k of ["mtu", "advmss", "priority", "table", "scope"] as const) {
      const n = o[k];
      if (n === undefined || n === null) continue;
      if (typeof n !== "number" || !Number.isInteger(n))
        throw invalidConfig(`ipam.routes[${i}].${k} must be an integer`);
      route[k] = n;
    }
    return route;
  });
}

function parseExclude(v: unknown): Excluded[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalidConfig("ipam.exclude must be a list of addresses or CIDRs");
  return v.map((e) => {
    if (typeof e === "string") {
      const ip = parseIp(e);
      if (ip) return { family: ip.family, lo: ip.value, hi: ip.value };
      const c = parseCidr(e);
      if (c) return { family: c.ip.family, lo: networkOf(c).value, hi: lastOf(c).value };
    }
    throw invalidConfig(`ipam.exclude: invalid address or CIDR ${JSON.stringify(e)}`);
  });
}

export const isExcluded = (ex: readonly Excluded[], ip: Ip): boolean =>
  ex.some((e) => e.family === ip.family && ip.value >= e.lo && ip.value <= e.hi);

function rangeSet(input: unknown, idx: number): RangeSet {
  try {
    return canonicalizeRangeSet(input);
  } catch (e) {
    if (e instanceof RangeConfigError) throw invalidConfig(`invalid range set ${idx}: ${e.message}`);
    throw e;
  }
}

export function loadIpamConfig(req: CniRequest): IpamConfig {
  const ipam = asObject(req.config.ipam);
  if (!ipam) throw invalidConfig("IPAM config missing 'ipam' key");
  const rawSets: unknown[] = [];
  // host-local's final order: runtimeConfig.ipRanges, the legacy top-level range, then ranges.
  const rtRanges = asObject(req.config.runtimeConfig)?.ipRanges;
  if (rtRanges !== undefined && rtRanges !== null) {
    if (!Array.isArray(rtRanges)) throw invalidConfig("runtimeConfig.ipRanges must be a list of range sets");
    rawSets.push(...rtRanges);
  }
  if (ipam.subnet !== undefined && ipam.subnet !== "") {
    rawSets.push([
      { subnet: ipam.subnet, rangeStart: ipam.rangeStart, rangeEnd: ipam.rangeEnd, gateway: ipam.gateway },
    ]);
  }
  if (ipam.ranges !== undefined && ipam.ranges !== null) {
    if (!Array.isArray(ipam.ranges)) throw invalidConfig("ipam.ranges must be a list of range sets");
    rawSets.push(...ipam.ranges);
  }
  if (rawSets.length === 0) throw invalidConfig("no IP ranges specified");
  const rangeSets = rawSets.map(rangeSet);

  // CNI 0.2.0 and below carry one address per family.
  const v4 = rangeSets.filter((s) => familyOf(s) === 4).length;
  if ((v4 > 1 || rangeSets.length - v4 > 1) && !atLeast(req.version, "0.3.0")) {
    throw invalidConfig(`CNI version ${req.version} does not support more than 1 address per family`);
  }
  for (let i = 0; i < rangeSets.length; i++) {
    for (let j = i + 1; j < rangeSets.length; j++) {
      if (rangeSetsOverlap(rangeSets[i]!, rangeSets[j]!)) throw invalidConfig(`range set ${i} overlaps with ${j}`);
    }
  }
  return {
    rangeSets,
    routes: parseRoutes(ipam.routes),
    dataDir: optionalString(ipam, "dataDir") ?? DEFAULT_DATA_DIR,
    resolvConf: optionalString(ipam, "resolvConf"),
    exclude: parseExclude(ipam.exclude),
    requested: requestedIps(req.env.args, req.config),
  };
}
