// A "lab": one test's private host namespace (where the reference bridge lives), its own
// 10.222.<n>.0/24 subnet, a temp dir with a fresh IPAM dataDir and a CNI_PATH whose first entry
// holds the plugin under test as `berth-ipam`. Shared by the netns, libcni and podman stages.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { CniOutcome } from "./cni.ts";
import {
  addNetns,
  BRIDGE,
  cniPathWithPluginUnderTest,
  delNetns,
  IPAM_PLUGIN,
  netnsPath,
  runCni,
  type CniCall,
} from "./netns.ts";
import { removeDir, tempDir } from "./temp.ts";

export type Lab = {
  tag: string;
  /** The namespace playing the node's root namespace: the bridge and the veth host ends live here. */
  host: string;
  dir: string;
  cniPath: string;
  dataDir: string;
  /** 10.222.<octet>.0/24 */
  subnet: string;
  gateway: string;
  prefix: string;
  /** Container namespaces made for this lab; they go with it. */
  containers: string[];
};

// Each lab gets its own /24 so two labs can never be confused, even though their namespaces
// could not reach each other anyway.
let octet = 0;

export function newLab(tag: string): Lab {
  octet = (octet % 250) + 1;
  const prefix = `10.222.${octet}`;
  const dir = tempDir(tag);
  const dataDir = join(dir, "ipam-data");
  mkdirSync(dataDir);
  return {
    tag,
    host: addNetns(`${tag}-host`),
    dir,
    cniPath: cniPathWithPluginUnderTest(dir),
    dataDir,
    subnet: `${prefix}.0/24`,
    gateway: `${prefix}.1`,
    prefix,
    containers: [],
  };
}

export function disposeLab(lab: Lab): void {
  for (const ns of lab.containers.splice(0)) delNetns(ns);
  delNetns(lab.host);
  removeDir(lab.dir);
}

export type BridgeOptions = {
  cniVersion?: string;
  name?: string;
  /** Merged over the default ipam object ({type: berth-ipam, dataDir, ranges: [[{subnet}]], routes}). */
  ipam?: Record<string, unknown>;
};

/**
 * A bridge network config delegating IPAM to `berth-ipam`. Routes carry an explicit `gw`:
 * bridge 1.1.1's CHECK fails on a non-default route without one that its own ADD installed
 * (observed with Debian's containernetworking-plugins 1.1.1).
 */
export function bridgeConfig(lab: Lab, opts: BridgeOptions = {}): Record<string, unknown> {
  return {
    cniVersion: opts.cniVersion ?? "1.0.0",
    name: opts.name ?? "berth-test",
    type: "bridge",
    bridge: "berth0",
    isGateway: true,
    ipMasq: false,
    ipam: {
      type: "berth-ipam",
      dataDir: lab.dataDir,
      ranges: [[{ subnet: lab.subnet }]],
      routes: [{ dst: "10.223.0.0/16", gw: lab.gateway }],
      ...opts.ipam,
    },
  };
}

export type Container = { ns: string; id: string; ifname: string };

export function newContainer(lab: Lab, tag: string): Container {
  const ns = addNetns(`${lab.tag}-${tag}`);
  lab.containers.push(ns);
  return { ns, id: `${ns}-id`, ifname: "eth0" };
}

export type CallExtras = { cniArgs?: string; netnsPathOverride?: string; prevResult?: unknown };

type LabCall = (
  lab: Lab,
  command: CniCall["command"],
  c: Container,
  config: Record<string, unknown>,
  extra?: CallExtras,
) => Promise<CniOutcome>;

/** A plugin run inside the lab's host namespace, as a runtime on that node would run it. */
const inLab =
  (plugin: string): LabCall =>
  (lab, command, c, config, extra = {}) =>
    runCni(plugin, {
      command,
      containerId: c.id,
      netns: extra.netnsPathOverride ?? netnsPath(c.ns),
      ifname: c.ifname,
      cniPath: lab.cniPath,
      cniArgs: extra.cniArgs,
      config: extra.prevResult === undefined ? config : { ...config, prevResult: extra.prevResult },
      inNs: lab.host,
    });

/** The reference bridge. */
export const bridge: LabCall = inLab(BRIDGE);

/** The plugin under test exec'ed directly with what bridge would send it (its whole config). */
export const ipamDirect: LabCall = inLab(IPAM_PLUGIN);

// ---- CNI 1.0.0 result shape, as bridge returns it ----------------------------------------------

export type Interface = { name: string; mac?: string; sandbox?: string };
export type IPConfig = { address: string; gateway?: string; interface?: number; version?: string };
export type CniRoute = { dst: string; gw?: string };
export type Result = {
  cniVersion: string;
  interfaces?: Interface[];
  ips?: IPConfig[];
  routes?: CniRoute[];
  dns?: { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] };
};
