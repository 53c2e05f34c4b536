// Requested addresses, from the three places a runtime may put them (host-local's order):
// CNI_ARGS IP=, args.cni.ips, runtimeConfig.ips. A prefix after the address is ignored.
import { invalidConfig, invalidEnv } from "../shared/cni/errors.ts";
import { asJsonObject, type JsonObject } from "../shared/json.ts";
import { parseIpOrCidr, type Ip } from "./ip.ts";

// Go's types.UnmarshallableBool accepts these spellings.
const TRUE = new Set(["1", "true", "True", "TRUE", "t", "T"]);
const FALSE = new Set(["0", "false", "False", "FALSE", "f", "F", ""]);

/** CNI_ARGS as types.LoadArgs reads it for host-local's IPAMEnvArgs {IgnoreUnknown, IP}. */
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
      if (!TRUE.has(v) && !FALSE.has(v))
        throw invalidEnv(
          `ARGS: error parsing value of pair ${JSON.stringify(pair)}: boolean unmarshal error: invalid input ${v}`,
        );
      ignoreUnknown = TRUE.has(v);
    } else if (k === "IP") {
      ip = parseIpOrCidr(v);
      if (!ip) throw invalidEnv(`ARGS: error parsing value of pair ${JSON.stringify(pair)}: invalid IP address: ${v}`);
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
