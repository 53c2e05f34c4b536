// The operator CLI as a person runs it: the built berth-ipam with arguments and no CNI_COMMAND,
// in a clean environment; and stores filled the only way a node fills them, by real CNI ADDs.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as assert from "uvu/assert";
import { addresses, cni, netconf } from "../helpers/cni.ts";
import { execBinary, IPAM_PLUGIN, type ExecResult } from "../helpers/exec.ts";
import type { JsonObject } from "../../shared/json.ts";

export const NET = "testnet";

/** Runs `berth-ipam ARGS…` with a clean environment (no CNI_COMMAND). */
export const berth = (...args: string[]): Promise<ExecResult> => execBinary(IPAM_PLUGIN, { args, timeoutMs: 60_000 });

/** Exit 0; stdout as given. */
export async function ok(...args: string[]): Promise<string> {
  const r = await berth(...args);
  assert.is(r.code, 0, `berth-ipam ${args.join(" ")}: exit ${r.code}\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Exit 0 with --json; stdout parsed. */
export async function okJson<T = JsonObject[]>(...args: string[]): Promise<T> {
  return JSON.parse(await ok(...args, "--json")) as T;
}

/** Exits with `code` and exactly one line on stderr. */
export async function fails(code: 1 | 2, ...args: string[]): Promise<ExecResult> {
  const r = await berth(...args);
  assert.is(r.code, code, `berth-ipam ${args.join(" ")}: exit ${r.code}, wanted ${code}\n${r.stderr}${r.stdout}`);
  assert.match(r.stderr, /^berth-ipam: [^\n]+\n$/, `one line on stderr: ${JSON.stringify(r.stderr)}`);
  return r;
}

/** A bridge config on 10.1.2.0/24, or on the ranges or subnet that ipam gives. */
export const v4conf = (dir: string, ipam: JsonObject = {}, extra: JsonObject = {}) =>
  netconf({ dataDir: dir, ...(ipam.ranges || ipam.subnet ? {} : { subnet: "10.1.2.0/24" }), ...ipam }, extra);

/** ADD for each container id; returns the address (no prefix) each got, in order. */
export async function addAll(conf: JsonObject, ids: readonly string[], ifname = "eth0"): Promise<string[]> {
  const out: string[] = [];
  for (const id of ids) {
    const r = await cni({ command: "ADD", containerId: id, ifname }, conf);
    assert.is(r.code, 0, `ADD ${id}: ${r.stdout}`);
    out.push(...addresses(r.json).map((a) => a.split("/")[0] ?? ""));
  }
  return out;
}

export async function add(conf: JsonObject, id: string, args?: string): Promise<string[]> {
  const r = await cni({ command: "ADD", containerId: id, args }, conf);
  assert.is(r.code, 0, `ADD ${id}: ${r.stdout}`);
  return addresses(r.json).map((a) => a.split("/")[0] ?? "");
}

export const dbFile = (dir: string, net = NET) => join(dir, net, "berth.db");
export const dbBytes = (dir: string, net = NET) => readFileSync(dbFile(dir, net));

export const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
