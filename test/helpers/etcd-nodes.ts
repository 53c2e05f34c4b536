// Simulated nodes for the etcd black-box stages: each node is its own `store.node` name and its own
// dataDir, and runs the built berth-ipam exactly as a runtime on that node would.
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { addresses, cni, type CniCall, type CniOutcome } from "./cni.ts";
import { IPAM_PLUGIN } from "./exec.ts";
import type { Cluster } from "./etcd-cluster.ts";

export type SimNode = { name: string; dir: string };

export const simNode = (root: string, name: string): SimNode => ({ name, dir: mkdtempSync(join(root, `${name}-`)) });

export type NetOptions = {
  name: string;
  ranges: unknown[];
  ipam?: Record<string, unknown>;
  store?: Record<string, unknown>;
  cniVersion?: string;
  extra?: Record<string, unknown>;
};

/** The network config a runtime on node n hands berth-ipam for a network on the etcd store. */
export function etcdConf(c: Cluster, n: SimNode, o: NetOptions): Record<string, unknown> {
  const tls = c.tls ? { tls: { ca: c.tls.ca, cert: c.tls.clientCert, key: c.tls.clientKey } } : {};
  return {
    cniVersion: o.cniVersion ?? "1.1.0",
    name: o.name,
    type: "bridge",
    bridge: "br0",
    ipam: {
      type: "berth-ipam",
      dataDir: n.dir,
      ranges: o.ranges,
      store: { type: "etcd", endpoints: c.endpoints, node: n.name, ...tls, ...o.store },
      ...o.ipam,
    },
    ...o.extra,
  };
}

/** The same network on node n's local store: what a node runs before it migrates to etcd. */
export const localConf = (n: SimNode, name: string, ranges: unknown[]): Record<string, unknown> => ({
  cniVersion: "1.1.0",
  name,
  type: "bridge",
  ipam: { type: "berth-ipam", dataDir: n.dir, ranges },
});

export const run = (conf: unknown, call: CniCall): Promise<CniOutcome> => cni(call, conf);

export const ips = (o: CniOutcome): string[] => addresses(o.json).map((a) => a.split("/")[0] ?? a);

export type Spawned = {
  pid: number;
  kill(): void;
  done: Promise<{ code: number; stdout: string; killed: boolean; ms: number }>;
};

/** One plugin exec that can be killed at any instant. */
export function start(conf: unknown, call: { command: string; containerId: string; ifname?: string }): Spawned {
  const t0 = Date.now();
  const child = spawn(IPAM_PLUGIN, [], {
    env: {
      PATH: "/usr/bin:/bin",
      CNI_COMMAND: call.command,
      CNI_CONTAINERID: call.containerId,
      CNI_NETNS: "/var/run/netns/x",
      CNI_IFNAME: call.ifname ?? "eth0",
      CNI_PATH: "/opt/cni/bin",
    },
    stdio: ["pipe", "pipe", "ignore"],
  });
  let out = "";
  let killed = false;
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stdin.on("error", () => {});
  child.stdin.end(JSON.stringify(conf));
  return {
    pid: child.pid ?? -1,
    kill() {
      if (child.exitCode === null && child.signalCode === null) killed = child.kill("SIGKILL") || killed;
    },
    done: new Promise((done) =>
      child.on("close", (code) => done({ code: code ?? -1, stdout: out, killed, ms: Date.now() - t0 })),
    ),
  };
}

/** Addresses of an ADD's stdout, without prefix lengths. */
export function stdoutIps(stdout: string): string[] {
  try {
    return addresses(JSON.parse(stdout) as Record<string, unknown>).map((a) => a.split("/")[0] ?? a);
  } catch {
    return [];
  }
}
