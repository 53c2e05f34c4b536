// One internal IPAM result; the spec's per-version shapes exist only in render().
// Field names and omitempty rules follow the Go types (types/020, types/040, types/100),
// which is what libcni and every runtime parse.
import { atLeast, type CniVersion } from "./version.ts";
import { asJsonObject, isJsonObject, type JsonObject } from "../json.ts";
import { internal } from "./errors.ts";

export type Route = {
  dst: string; // CIDR
  gw?: string;
  // 1.1.0 route attributes, rendered only for 1.1.0.
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
};

export type Dns = {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
};

export type IpConfig = {
  address: string; // CIDR, e.g. 10.1.2.2/24
  gateway?: string;
};

export type IpamResult = {
  ips: IpConfig[];
  routes: Route[];
  dns: Dns;
};

const isV4Cidr = (cidr: string): boolean => !cidr.includes(":");

function renderDns(d: Dns): JsonObject {
  const out: JsonObject = {};
  if (d.nameservers?.length) out.nameservers = d.nameservers;
  if (d.domain) out.domain = d.domain;
  if (d.search?.length) out.search = d.search;
  if (d.options?.length) out.options = d.options;
  return out;
}

function renderRoute(r: Route, v110: boolean): JsonObject {
  const out: JsonObject = { dst: r.dst };
  if (r.gw) out.gw = r.gw;
  if (v110) {
    for (const k of ["mtu", "advmss", "priority", "table", "scope"] as const) {
      if (r[k] !== undefined && r[k] !== 0) out[k] = r[k];
    }
  }
  return out;
}

/** 0.1.0/0.2.0: one ip4 and one ip6, routes split by the family of their destination. */
function render020(version: CniVersion, res: IpamResult): JsonObject {
  const pick = (v4: boolean) => res.ips.find((ip) => isV4Cidr(ip.address) === v4);
  const block = (v4: boolean): JsonObject | undefined => {
    const ip = pick(v4);
    if (!ip) return undefined;
    const out: JsonObject = { ip: ip.address };
    if (ip.gateway) out.gateway = ip.gateway;
    const routes = res.routes.filter((r) => isV4Cidr(r.dst) === v4).map((r) => renderRoute(r, false));
    if (routes.length) out.routes = routes;
    return out;
  };
  const ip4 = block(true);
  const ip6 = block(false);
  // types/100 convertTo02x refuses a result with no address at all.
  if (!ip4 && !ip6) throw internal("cannot convert: no valid IP addresses");
  const out: JsonObject = { cniVersion: version };
  if (ip4) out.ip4 = ip4;
  if (ip6) out.ip6 = ip6;
  out.dns = renderDns(res.dns);
  return out;
}

export function renderResult(version: CniVersion, res: IpamResult): JsonObject {
  if (!atLeast(version, "0.3.0")) return render020(version, res);
  const withVersion = !atLeast(version, "1.0.0"); // ips[].version exists in 0.3.x and 0.4.0 only
  const out: JsonObject = { cniVersion: version };
  if (res.ips.length) {
    out.ips = res.ips.map((ip) => {
      const o: JsonObject = {};
      if (withVersion) o.version = isV4Cidr(ip.address) ? "4" : "6";
      o.address = ip.address;
      if (ip.gateway) o.gateway = ip.gateway;
      return o;
    });
  }
  if (res.routes.length) out.routes = res.routes.map((r) => renderRoute(r, atLeast(version, "1.1.0")));
  out.dns = renderDns(res.dns);
  return out;
}

/** Addresses (without prefix) of a prevResult in any version's shape. */
export function prevResultAddresses(prev: unknown): string[] {
  if (!isJsonObject(prev)) return [];
  const out: string[] = [];
  const strip = (cidr: unknown) => (typeof cidr === "string" ? (cidr.split("/")[0] ?? "") : "");
  if (Array.isArray(prev.ips)) {
    for (const ip of prev.ips) if (isJsonObject(ip)) out.push(strip(ip.address));
  }
  for (const k of ["ip4", "ip6"]) {
    const b = asJsonObject(prev[k]);
    if (b) out.push(strip(b.ip));
  }
  return out.filter((s) => s !== "");
}
