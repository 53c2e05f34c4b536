// Network namespaces for the conformance stages, and the reference bridge plugin run inside them.
//
// Isolation (test/CONFORMANCE.md "Isolation"): every namespace is made by
// the test with `ip netns add` under a `berth-test-<pid>-` name; the bridge lives in a "host"
// namespace made for the test, so nothing touches the machine's own network; the test subnet
// (10.222.0.0/16) exists only inside those namespaces; no masquerade; no uplink, so no packet
// can leave. Every namespace is deleted by the suite's `after` hook and, as a last resort, by the
// process exit handler below (also on SIGINT/SIGTERM), and stale ones of dead test processes are
// swept at start.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { execCni, type CniOutcome } from "./cni.ts";
import { IPAM_PLUGIN, type ExecResult } from "./exec.ts";
import { removeAllTempDirs } from "./temp.ts";

export const IP = "/usr/sbin/ip";
export const NSENTER = "/usr/bin/nsenter";
export const PING = "/usr/bin/ping";
export const REFERENCE_DIR = "/usr/lib/cni";
export const BRIDGE = `${REFERENCE_DIR}/bridge`;
export const NETNS_DIR = "/var/run/netns";

const PREFIX = "berth-test-";
const mine = `${PREFIX}${process.pid}-`;
const liveNamespaces = new Set<string>();
let counter = 0;

export const netnsPath = (name: string): string => join(NETNS_DIR, name);

function ip(args: string[]): string {
  return execFileSync(IP, args, { stdio: ["ignore", "pipe", "pipe"] }).toString();
}

/** A new, empty network namespace with loopback up; deleted at the end of the run at the latest. */
export function addNetns(tag: string): string {
  const name = `${mine}${tag}-${++counter}`;
  ip(["netns", "add", name]);
  liveNamespaces.add(name);
  ip(["-n", name, "link", "set", "lo", "up"]);
  return name;
}

export function delNetns(name: string): void {
  spawnSync(IP, ["netns", "del", name], { stdio: "ignore" });
  liveNamespaces.delete(name);
}

const firstHooks: (() => void)[] = [];
/** Run before namespaces and temp dirs go (e.g. stop podman's containers while its dirs exist). */
export function onCleanup(fn: () => void): void {
  firstHooks.push(fn);
}

export function cleanupAll(): void {
  for (const fn of firstHooks.splice(0)) {
    try {
      fn();
    } catch {
      // best effort: the namespaces and dirs below must still go
    }
  }
  for (const name of [...liveNamespaces]) delNetns(name);
  removeAllTempDirs();
}

/** Namespaces left by a test process that no longer exists (killed with SIGKILL, say). */
export function sweepStale(): void {
  let names: string[] = [];
  try {
    names = readdirSync(NETNS_DIR);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^berth-test-(\d+)-/.exec(name);
    if (!m || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch {
      spawnSync(IP, ["netns", "del", name], { stdio: "ignore" });
    }
  }
}

let handlersInstalled = false;
export function installCleanupHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", cleanupAll);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      cleanupAll();
      process.exit(128 + (sig === "SIGINT" ? 2 : sig === "SIGTERM" ? 15 : 1));
    });
  }
}

/**
 * A CNI_PATH whose first directory holds the plugin under test under the name `berth-ipam`
 * (a symlink, as an installer's copy would be), followed by the reference plugins.
 */
export function cniPathWithPluginUnderTest(dir: string): string {
  const bin = join(dir, "bin");
  mkdirSync(bin, { recursive: true });
  symlinkSync(IPAM_PLUGIN, join(bin, "berth-ipam"));
  return `${bin}:${REFERENCE_DIR}`;
}

// ---- iproute2 JSON views ----------------------------------------------------------------------

export type AddrInfo = { family: string; local: string; prefixlen: number; scope?: string };
export type Link = {
  ifname: string;
  ifindex: number;
  operstate?: string;
  link_type?: string;
  addr_info?: AddrInfo[];
  master?: string;
};
export type Route = { dst: string; gateway?: string; dev?: string; protocol?: string; scope?: string };

export function addrs(ns: string, dev?: string): Link[] {
  return JSON.parse(ip(["-n", ns, "-j", "addr", "show", ...(dev ? ["dev", dev] : [])])) as Link[];
}

export function links(ns: string, ...filter: string[]): Link[] {
  return JSON.parse(ip(["-n", ns, "-j", "link", "show", ...filter]) || "[]") as Link[];
}

export function routes(ns: string, family: "-4" | "-6" = "-4"): Route[] {
  return JSON.parse(ip(["-n", ns, family, "-j", "route", "show"]) || "[]") as Route[];
}

/** The IPv4/IPv6 addresses with prefix (`10.222.1.2/24`) of one interface, global scope only. */
export function globalAddresses(ns: string, dev: string): string[] {
  const l = addrs(ns, dev)[0];
  return (l?.addr_info ?? [])
    .filter((a) => a.scope !== "link" && a.scope !== "host")
    .map((a) => `${a.local}/${a.prefixlen}`);
}

/**
 * ICMP echo between namespaces; never leaves them (the host namespace has no uplink). Up to three
 * tries: on a loaded machine the first neighbour resolution (ARP/NDP) can outlast one echo's wait.
 */
export function ping(fromNs: string, to: string): { ok: boolean; output: string } {
  let output = "";
  for (let i = 0; i < 3; i++) {
    const r = spawnSync(IP, ["netns", "exec", fromNs, PING, "-c", "1", "-W", "2", to], { encoding: "utf8" });
    output += `${r.stdout}${r.stderr}`;
    if (r.status === 0) return { ok: true, output };
  }
  return { ok: false, output };
}

// ---- running CNI plugins ----------------------------------------------------------------------

export type CniCall = {
  command: "ADD" | "DEL" | "CHECK" | "GC" | "STATUS" | "VERSION";
  containerId?: string;
  /** Full path for CNI_NETNS (omitted when undefined). */
  netns?: string;
  ifname?: string;
  cniPath: string;
  cniArgs?: string;
  config: unknown;
  /** Run the plugin inside this namespace (the test's "host" namespace). */
  inNs?: string;
};

export function cniEnv(call: CniCall): Record<string, string> {
  const env: Record<string, string> = { CNI_COMMAND: call.command, CNI_PATH: call.cniPath };
  if (call.containerId !== undefined) env.CNI_CONTAINERID = call.containerId;
  if (call.netns !== undefined) env.CNI_NETNS = call.netns;
  if (call.ifname !== undefined) env.CNI_IFNAME = call.ifname;
  if (call.cniArgs !== undefined) env.CNI_ARGS = call.cniArgs;
  return env;
}

/** Exec one CNI plugin binary the way a runtime does (clean env, config on stdin). */
export function runCni(plugin: string, call: CniCall): Promise<CniOutcome> {
  const file = call.inNs ? IP : plugin;
  const args = call.inNs ? ["netns", "exec", call.inNs, plugin] : [];
  return execCni(file, { args, env: cniEnv(call), stdin: JSON.stringify(call.config) });
}

export type CniErrorShape = { cniVersion?: string; code: number; msg: string; details?: string };

export function asCniError(r: CniOutcome): CniErrorShape {
  const j = r.json as Partial<CniErrorShape> | undefined;
  if (r.code === 0 || !j || typeof j.code !== "number" || typeof j.msg !== "string") {
    throw new Error(
      `expected a CNI error (exit non-zero, {code,msg} on stdout); got exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`,
    );
  }
  return j as CniErrorShape;
}

export function describe(r: ExecResult): string {
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ""}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

export { IPAM_PLUGIN };
