// The ipam section of a network config, with host-local's rules and messages
// (plugins/ipam/host-local/backend/allocator/config.go), plus berth's `exclude`.
import { invalidConfig } from "../shared/cni/errors.ts";
import type { CniRequest } from "../shared/cni/dispatch.ts";
import type { Route } from "../shared/cni/result.ts";
import { asJsonObject, isJsonObject, type JsonObject } from "../shared/json.ts";
import { atLeast } from "../shared/cni/version.ts";
import { formatCidr, formatIp, lastOf, networkOf, parseCidr, parseIp, type Ip } from "./ip.ts";
import { canonicalizeRanges, overlappingSets, rangeSet, type Block, type Ranges, type RangeSet } from "./range-set.ts";
import { RangeConfigError } from "./range.ts";
import { requestedIps } from "./args.ts";
import { parseEtcdStoreConfig, type EtcdStoreConfig } from "./store/etcd/config.ts";

export const DEFAULT_DATA_DIR = "/var/lib/cni/networks";

/** Where the network's reservations live: the node's own SQLite store (the default), or etcd. */
export type StoreConfig = { readonly type: "local" } | EtcdStoreConfig;
export const LOCAL_STORE: StoreConfig = { type: "local" };

export type IpamConfig = {
  /** In host-local's order; `exclude` is folded into each set's holes. */
  rangeSets: RangeSet[];
  store: StoreConfig;
  routes: Route[];
  dataDir: string;
  resolvConf?: string;
  requested: Ip[];
};

function optionalString(o: JsonObject, key: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string") throw invalidConfig(`ipam.${key} must be a string`);
  return v;
}

/** A path key: a string a file system can take (no NUL byte: no system call accepts one). */
function optionalPath(o: JsonObject, key: string): string | undefined {
  const v = optionalString(o, key);
  if (v?.includes("\0"))
    throw invalidConfig(`ipam.${key} ${JSON.stringify(v)} is not a valid path: it contains a NUL byte`);
  return v;
}

/**
 * dataDir alone, for DEL, CHECK and GC: they must work when the rest of the config is broken.
 * Only dataDir itself must be usable, since it says where the store is.
 */
export function dataDirOf(config: JsonObject): string {
  const ipam = config.ipam;
  if (ipam === undefined || ipam === null) return DEFAULT_DATA_DIR;
  const o = asJsonObject(ipam);
  if (!o) throw invalidConfig("ipam must be an object (it holds dataDir, where the store is)");
  return optionalPath(o, "dataDir") ?? DEFAULT_DATA_DIR;
}

/**
 * ipam.store, exactly as documented: absent or {"type": "local"} is the local store; "etcd" takes
 * the keys cni/store/etcd/config.ts lists. DEL and GC read it too (they must know where to
 * release), so an unknown type or key fails them as well, with code 7.
 */
export function storeConfigOf(config: JsonObject): StoreConfig {
  const s = asJsonObject(config.ipam)?.store;
  if (s === undefined || s === null) return LOCAL_STORE;
  if (!isJsonObject(s)) throw invalidConfig('ipam.store must be an object such as {"type": "etcd", ...}');
  if (s.type === "local") {
    const extra = Object.keys(s).find((k) => k !== "type");
    if (extra) throw invalidConfig(`ipam.store: unknown key ${JSON.stringify(extra)} for the local store`);
    return LOCAL_STORE;
  }
  if (s.type === "etcd") {
    const hostname = () => (process.getBuiltinModule("node:os") as typeof import("node:os")).hostname();
    return parseEtcdStoreConfig(s, hostname);
  }
  throw invalidConfig(`ipam.store.type: unknown store type ${JSON.stringify(s.type)} (known: "local", "etcd")`);
}

function parseRoutes(v: unknown): Route[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalidConfig("ipam.routes must be a list");
  return v.map((r, i) => {
    const o = asJsonObject(r);
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

function parseExclude(v: unknown): Block[] {
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

function ranges(input: unknown, idx: number): Ranges {
  try {
    return canonicalizeRanges(input);
  } catch (e) {
    if (e instanceof RangeConfigError) throw invalidConfig(`invalid range set ${idx}: ${e.message}`);
    throw e;
  }
}

export function loadIpamConfig(req: CniRequest): IpamConfig {
  const ipam = asJsonObject(req.config.ipam);
  if (!ipam) throw invalidConfig("IPAM config missing 'ipam' key");
  const rawSets: unknown[] = [];
  // host-local's final order: runtimeConfig.ipRanges, the legacy top-level range, then ranges.
  const rtRanges = asJsonObject(req.config.runtimeConfig)?.ipRanges;
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
  const sets = rawSets.map(ranges);

  // CNI 0.2.0 and below carry one address per family.
  const v4 = sets.filter((s) => s[0].subnet.ip.family === 4).length;
  if ((v4 > 1 || sets.length - v4 > 1) && !atLeast(req.version, "0.3.0")) {
    throw invalidConfig(`CNI version ${req.version} does not support more than 1 address per family`);
  }
  const overlap = overlappingSets(sets);
  if (overlap) throw invalidConfig(`range set ${overlap[0]} overlaps with ${overlap[1]}`);
  const routes = parseRoutes(ipam.routes);
  const exclude = parseExclude(ipam.exclude);
  return {
    rangeSets: sets.map((s) => rangeSet(s, exclude)),
    store: storeConfigOf(req.config),
    routes,
    dataDir: optionalPath(ipam, "dataDir") ?? DEFAULT_DATA_DIR,
    resolvConf: optionalPath(ipam, "resolvConf"),
    requested: requestedIps(req.env.args, req.config),
  };
}
