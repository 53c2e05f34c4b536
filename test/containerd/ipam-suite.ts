// The IPAM half of the containerd stage: Debian's containerd 1.6.20 and its built-in CRI
// plugin run pods on the IPAM plugin under test, driven by our CRI client the way the kubelet
// drives it. The network is the reference bridge with the plugin under test as its ipam (through a
// logging wrapper, so the tests see exactly what containerd sent). The same suite runs against
// berth-ipam and against Debian's host-local (ipam-berth.test.ts, ipam-host-local.test.ts).
//
// containerd, its shims and the pods live in namespaces made for the test (helpers/containerd.ts);
// the pod subnets exist only there, with no masquerade and no uplink.
//
// Environment limits versus our failures: before any suite is defined, a sandbox is run in the
// node's network namespace (no CNI involved, sandboxPreflight). If that fails, containerd cannot
// run pods on this machine at all: every IPAM test is skipped with containerd's exact error, also
// in CI. Anything that fails after that is real.
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type CniCallRecord, installLoggingPlugin, readCniCalls } from "../helpers/cni-call-log.ts";
import {
  CONTAINERD,
  cgroupLeftovers,
  CONTAINERD_SHIM,
  type Containerd,
  CTR,
  PERL,
  RUNC,
  startContainerd,
  sweepStaleContainerd,
  UNSHARE,
} from "../helpers/containerd.ts";
import { heldAddresses, type Holding } from "../helpers/ipam-store.ts";
import { installCleanupHandlers, IP, NETNS_DIR, NSENTER, PING, REFERENCE_DIR, sweepStale } from "../helpers/netns.ts";
import { BUSYBOX, busyboxRootfsTar, tarDirectory, writeOciLayout } from "../helpers/oci-image.ts";
import { gated, needExecutable, needRoot, type Requirement } from "../helpers/peers.ts";
import { removeDir, tempDir } from "../helpers/temp.ts";
import { type Cri, criClient, isCriError, type PodSandboxConfig, type PodSandboxStatus } from "./cri-client.ts";

// Machine paths containerd 1.6 would use by default: none may appear.
const MACHINE_PATHS = ["/run/containerd", "/var/lib/containerd", "/var/lib/cni", "/opt/containerd"];
const preexisting = new Set(MACHINE_PATHS.filter((p) => existsSync(p)));
const netnsBefore = new Set(existsSync(NETNS_DIR) ? readdirSync(NETNS_DIR) : []);

export const SANDBOX_IMAGE = "localhost/berth-test-pause:1";
const NETWORK = "berth-pods";
const TINY_NETWORK = "berth-tiny";
const TINY_HANDLER = "tiny";

export type IpamSuiteOptions = {
  /** Shown in the suite name. */
  label: string;
  /** The IPAM plugin binary; installed as `berth-ipam` (behind the logging wrapper). */
  plugin: string;
  pluginRequirement: Requirement;
  /** Third octet of the suite's IPv4 /24 (the /30 of the tiny network is octet + 1). */
  octet: number;
  /** From sandboxPreflight(): non-empty when containerd cannot run pods here at all. */
  envLimit: string;
};

export function peerRequirements(): Requirement[] {
  return [
    needRoot(),
    needExecutable(CONTAINERD, "containerd"),
    needExecutable(CTR, "containerd"),
    needExecutable(CONTAINERD_SHIM, "containerd"),
    needExecutable(RUNC, "runc"),
    needExecutable(UNSHARE, "util-linux"),
    needExecutable(NSENTER, "util-linux"),
    needExecutable(PERL, "perl-base"),
    needExecutable(IP, "iproute2"),
    needExecutable(PING, "iputils-ping"),
    needExecutable(BUSYBOX, "busybox-static"),
    needExecutable(`${REFERENCE_DIR}/bridge`, "containernetworking-plugins"),
    needExecutable(`${REFERENCE_DIR}/loopback`, "containernetworking-plugins"),
  ];
}

/** Imports the busybox-static sandbox ("pause") image: its entry point only sleeps. */
export async function importSandboxImage(ctd: Containerd, work: string): Promise<void> {
  const layout = join(work, "pause-image");
  writeOciLayout(layout, {
    layers: [busyboxRootfsTar(join(work, "pause-rootfs"), ["sh", "sleep"])],
    config: { Entrypoint: ["/bin/sleep", "2147483647"] },
    tag: "1",
    name: SANDBOX_IMAGE,
  });
  const r = await ctd.ctr(["-n", "k8s.io", "images", "import", "--snapshotter", "native", "-"], tarDirectory(layout));
  if (r.code !== 0) throw new Error(`ctr images import: ${r.stdout}${r.stderr}`);
}

let preflight: Promise<string> | undefined;

/**
 * Can containerd run a pod sandbox on this machine at all? One sandbox in the node's network
 * namespace (no CNI involved), in a containerd of its own. "" when it can, else containerd's
 * exact error. Run once per stage, before the suites are defined, so that an environment limit
 * skips the tests instead of passing them.
 */
export function sandboxPreflight(): Promise<string> {
  preflight ??= (async () => {
    if (!peerRequirements().every((r) => r.ok)) return "";
    installCleanupHandlers();
    sweepStale();
    await sweepStaleContainerd();
    const work = tempDir("containerd-preflight");
    const ctd = await startContainerd({ tag: "preflight", cniBinDir: work, networks: {}, sandboxImage: SANDBOX_IMAGE });
    const cri = criClient(ctd.socket);
    try {
      await importSandboxImage(ctd, work);
      const r = await cri.call(
        "RuntimeService/RunPodSandbox",
        {
          config: {
            metadata: { name: "preflight", namespace: "berth-ns", uid: "preflight" },
            linux: {
              cgroup_parent: `${ctd.cgroupParent}/podpreflight`,
              security_context: { namespace_options: { network: "NODE" } },
            },
          },
        },
        120_000,
      );
      await cri.call("RuntimeService/StopPodSandbox", { pod_sandbox_id: r.pod_sandbox_id });
      await cri.call("RuntimeService/RemovePodSandbox", { pod_sandbox_id: r.pod_sandbox_id });
      return "";
    } catch (e) {
      const why = `containerd cannot run a pod sandbox here even in the node's network namespace (no CNI involved): ${String(e)}`;
      process.stderr.write(`containerd: SKIPPING the IPAM tests: environment limit, not a plugin failure: ${why}\n`);
      return why;
    } finally {
      cri.close();
      ctd.stop();
      removeDir(work);
    }
  })();
  return preflight;
}

type Pod = { id: string; name: string; v4: string; v6: string; netns: string };

export function defineIpamSuite(opts: IpamSuiteOptions): void {
  const test = suite(`containerd 1.6 CRI, bridge + ${opts.label}`);
  const { define, ready } = gated(test, "containerd", [opts.pluginRequirement, ...peerRequirements()]);

  const v4Prefix = `10.222.${opts.octet}`;
  const v6Prefix = `fd00:222:${opts.octet}:`;
  const tinyPrefix = `10.222.${opts.octet + 1}`;
  let ctd: Containerd | undefined;
  let cri: Cri | undefined;
  let work = "";
  let dataDir = "";
  let callLog = "";
  let uid = 0;

  const the = (): { ctd: Containerd; cri: Cri } => {
    if (!ctd || !cri) throw new Error("containerd did not start");
    return { ctd, cri };
  };

  function podConfig(name: string, extra: Partial<PodSandboxConfig> = {}): PodSandboxConfig {
    const u = `uid-${opts.octet}-${++uid}`;
    return {
      metadata: { name, namespace: "berth-ns", uid: u, attempt: 0 },
      hostname: name,
      log_directory: join(work, "pod-logs", u),
      labels: { app: "berth-test" },
      linux: { cgroup_parent: `${the().ctd.cgroupParent}/pod${u}` },
      ...extra,
    };
  }

  const calls = (): CniCallRecord[] => readCniCalls(callLog);
  const held = (network = NETWORK): Holding[] => heldAddresses(dataDir, network);
  const heldBy = (id: string, network = NETWORK) => held(network).filter((h) => h.containerId === id);

  async function status(id: string): Promise<{ status: PodSandboxStatus; netns: string }> {
    const r = await the().cri.call("RuntimeService/PodSandboxStatus", { pod_sandbox_id: id, verbose: true });
    if (!r.status) throw new Error(`no status for ${id}`);
    const info = JSON.parse(r.info.info ?? "{}") as {
      runtimeSpec?: { linux?: { namespaces?: { type: string; path?: string }[] } };
    };
    const netns = info.runtimeSpec?.linux?.namespaces?.find((n) => n.type === "network")?.path ?? "";
    return { status: r.status, netns };
  }

  async function runPod(name: string, extra: Partial<PodSandboxConfig> = {}, handler = ""): Promise<Pod> {
    const r = await the().cri.call(
      "RuntimeService/RunPodSandbox",
      { config: podConfig(name, extra), runtime_handler: handler },
      120_000,
    );
    const s = await status(r.pod_sandbox_id);
    const ips = [s.status.network?.ip ?? "", ...(s.status.network?.additional_ips ?? []).map((a) => a.ip)];
    return {
      id: r.pod_sandbox_id,
      name,
      v4: ips.find((i) => i.includes(".")) ?? "",
      v6: ips.find((i) => i.includes(":")) ?? "",
      netns: s.netns,
    };
  }

  const stopPod = (id: string) => the().cri.call("RuntimeService/StopPodSandbox", { pod_sandbox_id: id }, 120_000);
  const removePod = (id: string) => the().cri.call("RuntimeService/RemovePodSandbox", { pod_sandbox_id: id }, 120_000);
  /** Stop, then remove, as the kubelet does when a pod goes. */
  async function removePods(ids: string[]): Promise<void> {
    await Promise.all(
      ids.map(async (id) => {
        await stopPod(id);
        await removePod(id);
      }),
    );
  }

  /** Addresses of the pod's eth0, read inside its network namespace (global scope). */
  async function podAddresses(pod: Pod): Promise<string[]> {
    const r = await the().ctd.exec(NSENTER, [`--net=${pod.netns}`, "--", IP, "-j", "addr", "show", "dev", "eth0"]);
    assert.is(r.code, 0, r.stderr);
    const links = JSON.parse(r.stdout) as { addr_info?: { local: string; scope?: string }[] }[];
    return (links[0]?.addr_info ?? []).filter((a) => a.scope === "global").map((a) => a.local);
  }

  /** From inside `from`'s netns, ping every target (two tries each); returns the unreachable ones. */
  async function unreachableFrom(from: Pod, targets: string[]): Promise<string[]> {
    const script =
      'for ip in "$@"; do ( ping -c 1 -W 2 "$ip" >/dev/null 2>&1 || ping -c 1 -W 2 "$ip" >/dev/null 2>&1 || echo "$ip" ) & done; wait';
    const r = await the().ctd.exec(NSENTER, [`--net=${from.netns}`, "--", "/bin/sh", "-c", script, "sh", ...targets]);
    assert.is(r.code, 0, r.stderr);
    return r.stdout.split("\n").filter(Boolean);
  }

  test.before(async () => {
    if (!ready || opts.envLimit) return;
    installCleanupHandlers();
    sweepStale();
    await sweepStaleContainerd();
    work = tempDir(`containerd-work-${opts.octet}`);
    const bin = join(work, "cni-bin");
    mkdirSync(bin);
    for (const p of ["bridge", "loopback"]) symlinkSync(join(REFERENCE_DIR, p), join(bin, p));
    callLog = join(work, "cni-calls");
    installLoggingPlugin(bin, "berth-ipam", opts.plugin, callLog);
    dataDir = join(work, "ipam-data");
    mkdirSync(dataDir);
    const bridge = (name: string, dev: string, ipam: Record<string, unknown>) => ({
      cniVersion: "1.0.0",
      name,
      plugins: [
        {
          type: "bridge",
          bridge: dev,
          isGateway: true,
          ipMasq: false,
          // libcni passes these as runtimeConfig to this plugin, which hands its whole config to
          // the ipam: the wrapper sees what containerd sent.
          capabilities: { portMappings: true, dns: true },
          ipam: { type: "berth-ipam", dataDir, ...ipam },
        },
      ],
    });
    ctd = await startContainerd({
      tag: `ipam${opts.octet}`,
      cniBinDir: bin,
      sandboxImage: SANDBOX_IMAGE,
      networks: {
        "": {
          conflist: bridge(NETWORK, "cni0", {
            ranges: [[{ subnet: `${v4Prefix}.0/24` }], [{ subnet: `${v6Prefix}:/64` }]],
            routes: [{ dst: "0.0.0.0/0" }, { dst: "::/0" }],
          }),
        },
        [TINY_HANDLER]: { conflist: bridge(TINY_NETWORK, "cni1", { ranges: [[{ subnet: `${tinyPrefix}.0/30` }]] }) },
      },
    });
    cri = criClient(ctd.socket);
    await importSandboxImage(ctd, work);
  });

  // A failed test must not leave its pods to the next one: remove whatever is still listed.
  test.after.each(async () => {
    if (!cri) return;
    try {
      const left = await cri.call("RuntimeService/ListPodSandbox", {});
      await removePods(left.items.map((i) => i.id));
    } catch {
      // containerd is down (the restart test failed, or the final test stopped it)
    }
  });

  test.after(() => {
    cri?.close();
    ctd?.stop();
    if (work) removeDir(work);
  });

  const it: typeof define = (name, fn) => (opts.envLimit ? test.skip(name) : define(name, fn));

  it("Version and Status: containerd 1.6.20 speaks CRI v1; runtime and network are ready", async () => {
    const v = await the().cri.call("RuntimeService/Version", { version: "v1" });
    assert.is(v.runtime_name, "containerd");
    assert.match(v.runtime_version, /^1\.6\.20/);
    assert.is(v.runtime_api_version, "v1");
    const s = await the().cri.call("RuntimeService/Status", {});
    const cond = Object.fromEntries((s.status?.conditions ?? []).map((c) => [c.type, c.status]));
    assert.equal(cond, { RuntimeReady: true, NetworkReady: true });
  });

  it("RunPodSandbox: the pod's addresses come from the plugin; PodSandboxStatus shows what the store holds for the sandbox ID; containerd sent K8S_POD_* args and capability args", async () => {
    const before = calls().length;
    const pod = await runPod("web-0", {
      port_mappings: [{ protocol: "TCP", container_port: 80, host_port: 8080 }],
      dns_config: { servers: ["10.96.0.10"], searches: ["berth-ns.svc.cluster.local"], options: ["ndots:5"] },
    });
    assert.match(pod.v4, new RegExp(`^${v4Prefix.replaceAll(".", "\\.")}\\.\\d+$`));
    assert.ok(pod.v6.startsWith(v6Prefix), pod.v6);
    assert.equal(
      heldBy(pod.id).map((h) => [h.ip, h.ifname]),
      [
        [pod.v4, "eth0"],
        [pod.v6, "eth0"],
      ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    );
    assert.equal((await podAddresses(pod)).sort(), [pod.v4, pod.v6].sort());

    const adds = calls()
      .slice(before)
      .filter((c) => c.command === "ADD");
    assert.is(adds.length, 1, JSON.stringify(adds));
    const add = adds[0] as CniCallRecord;
    assert.is(add.code, 0);
    assert.is(add.env.CNI_CONTAINERID, pod.id);
    assert.is(add.env.CNI_IFNAME, "eth0");
    assert.is(add.env.CNI_NETNS, pod.netns);
    assert.ok(pod.netns.startsWith(join(the().ctd.dir, "state")), `netns ${pod.netns} not under the test's state dir`);
    const cfg = (await the().cri.call("RuntimeService/PodSandboxStatus", { pod_sandbox_id: pod.id })).status;
    assert.equal(add.args, {
      IgnoreUnknown: "1",
      K8S_POD_NAMESPACE: "berth-ns",
      K8S_POD_NAME: "web-0",
      K8S_POD_INFRA_CONTAINER_ID: pod.id,
      K8S_POD_UID: cfg?.metadata.uid ?? "",
    });
    // go-cni marshals its capability structs without JSON tags: the keys are Go field names.
    const rc = (add.stdin as { runtimeConfig?: Record<string, unknown> }).runtimeConfig;
    assert.equal(rc?.portMappings, [{ HostPort: 8080, ContainerPort: 80, Protocol: "tcp", HostIP: "" }]);
    assert.equal(rc?.dns, {
      Servers: ["10.96.0.10"],
      Searches: ["berth-ns.svc.cluster.local"],
      Options: ["ndots:5"],
    });
    const res = add.result as { ips?: { address: string }[] };
    assert.equal(res.ips?.map((i) => i.address.split("/")[0]).sort(), [pod.v4, pod.v6].sort());

    await stopPod(pod.id);
    await removePod(pod.id);
    assert.equal(heldBy(pod.id), []);
  });

  it("20 sandboxes started concurrently: 20 distinct addresses of each family, each the store's; every pod reaches every other by ping over IPv4 and IPv6", async () => {
    const pods = await Promise.all(Array.from({ length: 20 }, (_, i) => runPod(`many-${i}`)));
    try {
      const v4 = pods.map((p) => p.v4);
      const v6 = pods.map((p) => p.v6);
      assert.is(new Set(v4).size, 20, v4.join(" "));
      assert.is(new Set(v6).size, 20, v6.join(" "));
      for (const p of pods) {
        assert.ok(p.v4.startsWith(`${v4Prefix}.`) && p.v6.startsWith(v6Prefix), `${p.v4} ${p.v6}`);
        assert.equal(
          heldBy(p.id)
            .map((h) => h.ip)
            .sort(),
          [p.v4, p.v6].sort(),
          `store vs PodSandboxStatus for ${p.name}`,
        );
      }
      assert.is(held().length, 40);
      const failures: string[] = [];
      for (const from of pods) {
        const targets = pods.filter((p) => p !== from).flatMap((p) => [p.v4, p.v6]);
        for (const ip of await unreachableFrom(from, targets)) failures.push(`${from.name} (${from.v4}) -> ${ip}`);
      }
      assert.equal(failures, [], `unreachable:\n${failures.join("\n")}`);
    } finally {
      await removePods(pods.map((p) => p.id));
    }
    assert.equal(held(), []);
  });

  it("StopPodSandbox releases the address with a DEL carrying containerd's cached result as prevResult; a repeated Stop, then RemovePodSandbox, change nothing", async () => {
    const pod = await runPod("stop-me");
    const add = calls().find((c) => c.command === "ADD" && c.env.CNI_CONTAINERID === pod.id);
    assert.ok(add, "no ADD logged");
    // libcni's result cache, in the holder's /var/lib (tmpfs): what DEL's prevResult comes from.
    const cached = the().ctd.inside(`/var/lib/cni/results/${NETWORK}-${pod.id}-eth0`);
    const cache = JSON.parse(readFileSync(cached, "utf8")) as { result?: { ips?: { address: string }[] } };
    assert.equal(
      cache.result?.ips?.map((i) => i.address),
      (add.result as { ips: { address: string }[] }).ips.map((i) => i.address),
    );
    const mark = calls().length;
    await stopPod(pod.id);
    assert.not.ok(existsSync(cached), "DEL removes the cache entry");
    assert.equal(heldBy(pod.id), []);
    const dels = calls()
      .slice(mark)
      .filter((c) => c.env.CNI_CONTAINERID === pod.id);
    assert.equal(
      dels.map((c) => [c.command, c.code]),
      [["DEL", 0]],
    );
    const prev = (dels[0]?.stdin as { prevResult?: { ips?: { address: string }[] } } | undefined)?.prevResult;
    assert.equal(
      prev?.ips?.map((i) => i.address),
      (add.result as { ips: { address: string }[] }).ips.map((i) => i.address),
      "prevResult is the ADD's result, from containerd's (libcni's) cache",
    );
    const st = await status(pod.id);
    assert.is(st.status.state, "SANDBOX_NOTREADY");

    const snapshot = JSON.stringify([held(), held(TINY_NETWORK)]);
    await stopPod(pod.id);
    await removePod(pod.id);
    assert.is(JSON.stringify([held(), held(TINY_NETWORK)]), snapshot);
    const later = calls().slice(mark + dels.length);
    assert.ok(
      later.every((c) => c.command === "DEL" && c.code === 0),
      `after the first Stop only DELs (that succeed): ${JSON.stringify(later.map((c) => [c.command, c.code]))}`,
    );
    const listed = await the().cri.call("RuntimeService/ListPodSandbox", { filter: { id: pod.id } });
    assert.equal(listed.items, []);
  });

  it("containerd killed with SIGKILL and restarted: running sandboxes keep their addresses, no second ADD, nothing leaked; stopping them afterwards releases them", async () => {
    const { ctd: c } = the();
    const pods = await Promise.all([0, 1, 2].map((i) => runPod(`survivor-${i}`)));
    const holdingBefore = held();
    const mark = calls().length;
    const oldPid = c.pid();
    await c.kill();
    // With containerd gone the pods and their networking keep working.
    assert.equal(await unreachableFrom(pods[0] as Pod, [pods[1]?.v4 ?? "", pods[2]?.v6 ?? ""]), []);
    cri?.close();
    await c.start();
    assert.is.not(c.pid(), oldPid);
    cri = criClient(c.socket);
    const listed = await the().cri.call("RuntimeService/ListPodSandbox", {
      filter: { state: { state: "SANDBOX_READY" } },
    });
    assert.equal(listed.items.map((i) => i.id).sort(), pods.map((p) => p.id).sort());
    for (const p of pods) {
      const s = await status(p.id);
      assert.is(s.status.state, "SANDBOX_READY");
      assert.equal([s.status.network?.ip, ...(s.status.network?.additional_ips ?? []).map((a) => a.ip)], [p.v4, p.v6]);
    }
    assert.equal(calls().slice(mark), [], "containerd called the plugin while restarting");
    assert.equal(held(), holdingBefore);
    for (const p of pods) {
      await stopPod(p.id);
      await removePod(p.id);
    }
    assert.equal(held(), []);
    const dels = calls()
      .slice(mark)
      .filter((x) => x.command === "DEL");
    assert.ok(
      pods.every((p) =>
        dels.some(
          (d) =>
            d.env.CNI_CONTAINERID === p.id &&
            ((d.stdin as { prevResult?: { ips?: unknown[] } }).prevResult?.ips ?? []).length === 2,
        ),
      ),
      "each DEL after the restart still carries the cached prevResult",
    );
  });

  it("an exhausted pool fails RunPodSandbox with the plugin's message in the CRI error, and leaves nothing reserved", async () => {
    const first = await runPod("tiny-0", {}, TINY_HANDLER);
    assert.is(first.v4, `${tinyPrefix}.2`);
    assert.equal(
      held(TINY_NETWORK).map((h) => h.ip),
      [`${tinyPrefix}.2`],
    );
    const mark = calls().length;
    let message = "";
    try {
      await runPod("tiny-1", {}, TINY_HANDLER);
      assert.unreachable("RunPodSandbox succeeded on an exhausted pool");
    } catch (e) {
      if (!isCriError(e)) throw e;
      message = e.details;
    }
    assert.match(message, `no IP addresses available in range set: ${tinyPrefix}.1-${tinyPrefix}.2`);
    const failedId = /sandbox "([0-9a-f]{64})"/.exec(message)?.[1] ?? "";
    assert.ok(failedId, message);
    assert.equal(
      held(TINY_NETWORK).map((h) => [h.ip, h.containerId]),
      [[`${tinyPrefix}.2`, first.id]],
    );
    const own = calls()
      .slice(mark)
      .filter((c) => c.env.CNI_CONTAINERID === failedId);
    assert.is(own[0]?.command, "ADD");
    assert.is.not(own[0]?.code, 0);
    assert.match(JSON.stringify(own[0]?.result), "no IP addresses available in range set");
    assert.ok(
      own.slice(1).some((c) => c.command === "DEL"),
      "containerd cleans up with a DEL after the failed ADD",
    );
    const listed = await the().cri.call("RuntimeService/ListPodSandbox", {});
    assert.not.ok(listed.items.some((i) => i.id === failedId));
    await stopPod(first.id);
    await removePod(first.id);
    assert.equal(held(TINY_NETWORK), []);
  });

  it("after every sandbox is removed: no veth in the node namespace, no pod netns left, nothing held", async () => {
    const { ctd: c } = the();
    const r = await c.exec(IP, ["-j", "link", "show", "type", "veth"]);
    assert.is(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout || "[]"), []);
    const netnsDir = c.inside(join(c.dir, "state", "io.containerd.grpc.v1.cri", "netns"));
    assert.equal(existsSync(netnsDir) ? readdirSync(netnsDir) : [], []);
    assert.equal([...held(), ...held(TINY_NETWORK)], []);
    const listed = await the().cri.call("RuntimeService/ListPodSandbox", {});
    assert.equal(listed.items, []);
  });

  it("stopping containerd leaves nothing: no process, cgroup, mount, namespace or directory of it; the machine's containerd and CNI paths untouched", async () => {
    const { ctd: c } = the();
    const ours = () =>
      readdirSync("/proc").filter((p) => {
        if (!/^\d+$/.test(p)) return false;
        try {
          return (
            readFileSync(`/proc/${p}/cmdline`, "utf8").includes(c.dir) ||
            readFileSync(`/proc/${p}/cgroup`, "utf8").includes(c.cgroupParent)
          );
        } catch {
          return false;
        }
      });
    assert.ok(ours().length > 0, "sanity: containerd's processes are visible before the stop");
    cri?.close();
    cri = undefined;
    c.stop();
    assert.equal(ours(), []);
    assert.equal(cgroupLeftovers(c.cgroupParent), []);
    assert.not.ok(readFileSync("/proc/self/mounts", "utf8").includes(c.dir));
    assert.not.ok(existsSync(c.dir));
    assert.not.ok(readdirSync(NETNS_DIR).includes(c.hostNs));
    assert.equal(
      MACHINE_PATHS.filter((p) => !preexisting.has(p) && existsSync(p)),
      [],
    );
    assert.equal(
      readdirSync(NETNS_DIR).filter((n) => n.startsWith("cni-") && !netnsBefore.has(n)),
      [],
    );
    // libcni's cache (<network>-<containerID>-<ifname>) went to the holder's tmpfs, not here.
    const results = "/var/lib/cni/results";
    assert.equal(
      (existsSync(results) ? readdirSync(results) : []).filter(
        (n) => n.startsWith(`${NETWORK}-`) || n.startsWith(`${TINY_NETWORK}-`),
      ),
      [],
    );
  });

  test.run();
}
