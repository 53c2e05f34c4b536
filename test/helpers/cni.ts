// Calls a CNI plugin the way a runtime does (SPEC.md "Parameters"): CNI_* in a clean environment,
// the network config on stdin, the result or error JSON on stdout.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { suite, type Test } from "uvu";
import { asJsonObject, type JsonObject } from "../../shared/json.ts";
import { execBinary, IPAM_PLUGIN, type ExecOptions, type ExecResult } from "./exec.ts";
import { removeDir, tempDir } from "./temp.ts";

export type CniCall = {
  command: "ADD" | "DEL" | "CHECK" | "GC" | "STATUS" | "VERSION" | string;
  containerId?: string;
  ifname?: string;
  netns?: string;
  args?: string;
  /** Extra or overriding environment; a value of "" leaves the variable out. */
  env?: Record<string, string>;
  plugin?: string;
};

/** What a runtime sees of one plugin exec: exit, streams, and stdout as a JSON object if it is one. */
export type CniOutcome = ExecResult & { json: JsonObject | undefined };

/** Execs one CNI plugin (or a wrapper such as `ip netns exec` around it) and reads its answer. */
export async function execCni(file: string, opts: ExecOptions): Promise<CniOutcome> {
  const res = await execBinary(file, opts);
  let json: JsonObject | undefined;
  try {
    json = res.stdout.trim() ? asJsonObject(JSON.parse(res.stdout)) : undefined;
  } catch {
    json = undefined;
  }
  return { ...res, json };
}

export async function cni(call: CniCall, stdin: unknown): Promise<CniOutcome> {
  const env: Record<string, string> = {
    CNI_COMMAND: call.command,
    CNI_CONTAINERID: call.containerId ?? "ctr1",
    CNI_NETNS: call.netns ?? "/var/run/netns/berth-test",
    CNI_IFNAME: call.ifname ?? "eth0",
    // The Go skel of the reference plugins demands CNI_PATH; give it so both can be compared.
    CNI_PATH: "/opt/cni/bin",
    ...(call.args !== undefined ? { CNI_ARGS: call.args } : {}),
    ...call.env,
  };
  for (const [k, v] of Object.entries(env)) if (v === "") delete env[k];
  const text = typeof stdin === "string" || Buffer.isBuffer(stdin) ? stdin : JSON.stringify(stdin);
  return execCni(call.plugin ?? IPAM_PLUGIN, { env, stdin: text });
}

/** A fingerprint of every file under dir (names, sizes, contents): "nothing changed" checks. */
export function snapshot(dir: string): string {
  const h = createHash("sha256");
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d).sort();
    } catch {
      h.update("<absent>");
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) {
        h.update(`dir ${n}\n`);
        walk(p);
      } else {
        h.update(`file ${n}\n`);
        h.update(readFileSync(p));
      }
    }
  };
  walk(dir);
  return h.digest("hex");
}

/** A network config the way bridge hands it to its IPAM plugin: the whole thing, not just ipam. */
export function netconf(ipam: JsonObject, extra: JsonObject = {}): JsonObject {
  return {
    cniVersion: "1.0.0",
    name: "testnet",
    type: "bridge",
    bridge: "cni0",
    ipam: { type: "berth-ipam", ...ipam },
    ...extra,
  };
}

/** The addresses of an ADD result, whatever the version's shape. */
export function addresses(json: JsonObject | undefined): string[] {
  if (!json) return [];
  const out: string[] = [];
  if (Array.isArray(json.ips)) for (const ip of json.ips as { address: string }[]) out.push(ip.address);
  for (const k of ["ip4", "ip6"]) {
    const b = json[k] as { ip?: string } | undefined;
    if (b?.ip) out.push(b.ip);
  }
  return out;
}

export type DirCtx = { dir: string };

/** A uvu suite whose every test gets a fresh scratch directory (its dataDir), removed afterwards. */
export function suiteWithDir(name: string): Test<DirCtx> {
  const s = suite<DirCtx>(name);
  s.before.each((ctx) => {
    ctx.dir = tempDir("blackbox");
  });
  s.after.each((ctx) => removeDir(ctx.dir));
  return s;
}
