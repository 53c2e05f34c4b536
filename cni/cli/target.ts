// Which networks' stores a command works on: `--conf FILE` (the network config as the runtime
// hands it to the plugin, checked by the skel exactly as ADD is) or `--data-dir DIR [--network
// NAME]` (every network with a store there, or the one named).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { CniError } from "../../shared/cni/errors.ts";
import { isValidName } from "../../shared/cni/env.ts";
import { requestOf, unreadableInput, type CniRequest } from "../../shared/cni/dispatch.ts";
import { MAX_STDIN_BYTES, type StdinRead } from "../../shared/io.ts";
import { asJsonObject, errorMessage, isJsonObject } from "../../shared/json.ts";
import { DEFAULT_DATA_DIR, dataDirOf, loadIpamConfig, storeConfigOf, type IpamConfig } from "../config.ts";
import type { EtcdStoreConfig } from "../store/etcd/config.ts";
import { hasStore, type StoreLocation } from "../store/open.ts";
import { CliError, failure, usageError } from "./errors.ts";

export type Selection = { conf?: string; dataDir?: string; network?: string };

/** One network's store, and its config when it came from --conf. */
export type Network = StoreLocation & { request?: CniRequest };

/** A network on the etcd store: only a config (--conf) says so, and where etcd is. */
export type EtcdNetwork = Network & { store: EtcdStoreConfig; request: CniRequest };

export const onEtcd = (net: Network): net is EtcdNetwork => net.store?.type === "etcd" && net.request !== undefined;

/** The etcd side of the CLI, loaded only for a network on etcd (it brings the etcd client). */
export const etcdCommands = () => import("./etcd.ts");

export const PLUGIN_TYPE = "berth-ipam";

/** A CNI error as the CLI reports it: the plugin's message, and the code the runtime would see. */
export const cniFailure = (e: CniError): CliError =>
  new CliError(1, `${e.message}${e.details ? ` (${e.details})` : ""} (CNI code ${e.code})`, e);

/** The file read the way the skel reads stdin: the same cap, the same messages. */
function readCapped(file: string): StdinRead {
  let size: number;
  try {
    size = statSync(file).size;
  } catch (e) {
    throw failure(`--conf ${file}: ${errorMessage(e)}`);
  }
  if (size > MAX_STDIN_BYTES) return { ok: false, reason: "too-large", detail: `more than ${MAX_STDIN_BYTES} bytes` };
  try {
    return { ok: true, text: readFileSync(file, "utf8") };
  } catch (e) {
    throw failure(`--conf ${file}: ${errorMessage(e)}`);
  }
}

/**
 * What the plugin is given on stdin for this file: a .conf as it is; for a .conflist, libcni's
 * config for the berth-ipam entry (the entry with the list's name and cniVersion inserted, as
 * libcni's buildOneConfig does; a main plugin hands its whole config to its IPAM plugin).
 */
export function pluginInput(file: string): string {
  const input = readCapped(file);
  if (!input.ok) throw cniFailure(unreadableInput(input));
  let parsed: unknown;
  try {
    parsed = JSON.parse(input.text);
  } catch {
    return input.text; // the skel's own decoding error follows, word for word
  }
  const list = asJsonObject(parsed);
  if (!list || !Array.isArray(list.plugins)) return input.text;
  const ours = list.plugins.filter(
    (p) => isJsonObject(p) && (p.type === PLUGIN_TYPE || asJsonObject(p.ipam)?.type === PLUGIN_TYPE),
  );
  if (ours.length === 0) throw failure(`${file}: no plugin of the list has ipam.type ${PLUGIN_TYPE}`);
  if (ours.length > 1)
    throw failure(`${file}: ${ours.length} plugins of the list use ${PLUGIN_TYPE}; keep one per file`);
  return JSON.stringify({ ...asJsonObject(ours[0]), name: list.name, cniVersion: list.cniVersion });
}

/** The request ADD would get for this config file, or the skel's error for it. */
export function requestFromFile(file: string, network?: string): CniRequest {
  const text = pluginInput(file);
  const env = { command: "ADD" as const, containerId: "", netns: "", ifname: "", args: "", path: [] };
  try {
    const req = requestOf(env, text);
    if (network !== undefined && req.name !== network) throw failure(`${file} is network ${req.name}, not ${network}`);
    return req;
  } catch (e) {
    throw e instanceof CniError ? cniFailure(e) : e;
  }
}

/** ADD's parse of the ipam section; the same message and code on failure. */
export function ipamConfigOf(req: CniRequest): IpamConfig {
  try {
    return loadIpamConfig(req);
  } catch (e) {
    throw e instanceof CniError ? cniFailure(e) : e;
  }
}

function checkedName(name: string): string {
  if (!isValidName(name)) throw usageError(`--network ${JSON.stringify(name)} is not a valid network name`);
  return name;
}

/** The networks selected; with --data-dir and no --network, every one that has a store. */
export function networks(sel: Selection): Network[] {
  if (sel.conf !== undefined) {
    const request = requestFromFile(sel.conf, sel.network);
    let store: Network["store"];
    try {
      store = storeConfigOf(request.config);
    } catch (e) {
      throw e instanceof CniError ? cniFailure(e) : e;
    }
    return [{ dataDir: dataDirOf(request.config), network: request.name, request, store }];
  }
  const dataDir = sel.dataDir ?? DEFAULT_DATA_DIR;
  if (sel.network !== undefined) return [{ dataDir, network: checkedName(sel.network) }];
  let names: string[];
  try {
    names = readdirSync(dataDir).sort();
  } catch (e) {
    throw failure(`data dir ${dataDir}: ${errorMessage(e)}`);
  }
  return names
    .filter((n) => isValidName(n) && hasStore({ dataDir, network: n }))
    .map((network) => ({ dataDir, network }));
}

/** Exactly one network, for a command that changes a store (each store has its own transaction). */
export function oneNetwork(sel: Selection): Network {
  const found = networks(sel);
  const [only] = found;
  if (found.length === 1 && only) return only;
  const dir = sel.dataDir ?? DEFAULT_DATA_DIR;
  if (found.length === 0) throw failure(`no berth-ipam store in ${dir}`);
  throw usageError(
    `${dir} holds ${found.length} networks (${found.map((n) => n.network).join(", ")}): pick one with --network`,
  );
}
