// Requested addresses, from the three places a runtime may put them (host-local's order):
// CNI_ARGS IP=, args.cni.ips, runtimeConfig.ips. A prefix after the address is ignored.
import { invalidConfig, invalidEnv } from "../shared/cni/errors.ts";
import { asJsonObject, type JsonObject } from "../shared/json.ts";
import { parseIpOrCidr, type Ip } from "./ip.ts";

// types.UnmarshallableBool (containernetworking/cni pkg/types/args.go) lower-cases the value and
// accepts exactly "1" and "true", "0" and "false" (so "TRUE" and "tRuE" too); anything else, ""
// and "t" included, is an error that quotes the lower-cased value. host-local 1.1.1 does the same.
const TRUE = new Set(["1", "true"]);
const FALSE = new Set(["0", "false"]);

/**
 * CNI_ARGS as types.LoadArgs reads it for host-local's IPAMEnvArgs {CommonArgs {IgnoreUnknown},
 * IP ip.IP} (plugins/ipam/host-local/backend/allocator/config.go): pairs split on ";" and "=",
 * known fields decoded in order (the last IP= wins; an empty value means no request, as
 * ip.IP.UnmarshalText has it), unknown keys refused at the end unless IgnoreUnknown.
 */
export function ipFromCniArgs(cniArgs: string): Ip | undefined {
  if (cniArgs === "") return undefined;
  let ignoreUnknown = false;
  let ip: Ip | undefined;
  const unknown: string[] = [];
  for (const pair of cniArgs.split(";")) {
    const kv = pair.split("=");
    if (kv.length !== 2) throw invalidEnv(`ARGS: invalid pair ${JSON.stringify(pair)}`);
    const [k, v] = kv as [string, string];
    if (k === "IgnoreUnknown") {
      const lower = v.toLowerCase();
      if (!TRUE.has(lower) && !FALSE.has(lower))
        throw invalidEnv(
          `ARGS: error parsing value of pair ${JSON.stringify(pair)}: boolean unmarshal error: invalid input ${lower}`,
        );
      ignoreUnknown = TRUE.has(lower);
    } else if (k === "IP") {
      ip = v === "" ? undefined : parseIpOrCidr(v);
      if (v !== "" && !ip)
        throw invalidEnv(`ARGS: error parsing value of pair ${JSON.stringify(pair)}: invalid IP address ${v}`);
    } else if (k === "CommonArgs") {
      // The embedded struct's own name is a field too, and it cannot be decoded from text.
      throw invalidEnv(
        "ARGS: cannot unmarshal into field 'CommonArgs' - type '*types.CommonArgs' does not implement encoding.TextUnmarshaler",
      );
    } else {
      unknown.push(pair);
    }
  }
  if (unknown.length > 0 && !ignoreUnknown) {
    throw invalidEnv(`ARGS: unknown args [${unknown.map((u) => JSON.stringify(u)).join(" ")}]`);
  }
  return ip;
}

function ipList(value: unknown, where: string): Ip[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalidConfig(`${where} must be a list of IP addresses`);
  return value.map((v) => {
    const ip = typeof v === "string" ? parseIpOrCidr(v) : undefined;
    if (!ip) throw invalidConfig(`invalid IP address ${JSON.stringify(v)} in ${where}`);
    return ip;
  });
}

export function requestedIps(cniArgs: string, config: JsonObject): Ip[] {
  const out: Ip[] = [];
  const fromEnv = ipFromCniArgs(cniArgs);
  if (fromEnv) out.push(fromEnv);
  out.push(...ipList(asJsonObject(asJsonObject(config.args)?.cni)?.ips, "args.cni.ips"));
  out.push(...ipList(asJsonObject(config.runtimeConfig)?.ips, "runtimeConfig.ips"));
  return out;
}
