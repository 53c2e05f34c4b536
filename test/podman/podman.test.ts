// A real container runtime: Debian's podman 4.3 with `network_backend = "cni"`, the
// plugin under test in `cni_plugin_dirs` as `berth-ipam`, a custom network whose conflist is the
// reference bridge + berth-ipam, and an image made here with `podman import` of a busybox-static
// rootfs (nothing is pulled). podman sends a requested IP only as
// `CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=<name>;IP=<ip>` (observed with podman 4.3.1, never as
// runtimeConfig.ips), which we must honour.
//
// Sandbox facts observed on the CI machine: crun refuses this VM's mixed cgroup setup, so runc; no
// CAP_SYS_RESOURCE, so explicit default_ulimits; podman runs under `nsenter --net=` into a host
// namespace made for the test (`ip netns exec` hides cgroup mounts), so its bridge never touches
// the machine's network. All podman config, storage, run and tmp state live in a temp dir.
//
// Environment limits versus our failures: before any test, a container is run with
// `--network none` (no CNI, so the plugin under test plays no part). If that fails, podman cannot
// run containers on this machine at all: every test is skipped with podman's exact error, also in
// CI. Anything that fails after that preflight is a real failure.
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { IPAM_PLUGIN } from "../helpers/exec.ts";
import {
  addNetns,
  BRIDGE,
  cleanupAll,
  installCleanupHandlers,
  IP,
  NSENTER,
  netnsPath,
  onCleanup,
  REFERENCE_DIR,
  sweepStale,
} from "../helpers/netns.ts";
import { BUSYBOX, busyboxRootfsTar } from "../helpers/oci-image.ts";
import {
  type PodmanRun,
  podmanEnv,
  podmanStorageArgs,
  runPodman,
  showRun,
  writePodmanConfig,
} from "../helpers/podman.ts";
import { tempDir } from "../helpers/temp.ts";
import { gated, needExecutable, needPluginUnderTest, needRoot } from "../helpers/peers.ts";

const PODMAN = "/usr/bin/podman";
const RUNC = "/usr/sbin/runc";
/** runc by default (crun refuses this VM's cgroup setup); BERTH_PODMAN_RUNTIME to try another. */
const RUNTIME = process.env.BERTH_PODMAN_RUNTIME ?? "runc";
const CONMON = "/usr/bin/conmon";
const IMAGE = "localhost/berth-test-busybox:latest";
const NETWORK = "berthpod";
const PREFIX = "10.222.250";
const GATEWAY = `${PREFIX}.1`;

const test = suite("podman 4.3 (CNI backend): bridge + the IPAM plugin under test");
const { define, ready } = gated(test, "podman", [
  needPluginUnderTest(),
  needRoot(),
  needExecutable(PODMAN, "podman"),
  needExecutable(RUNC, "runc"),
  needExecutable(CONMON, "conmon"),
  needExecutable(BUSYBOX, "busybox-static"),
  needExecutable(NSENTER, "util-linux"),
  needExecutable(IP, "iproute2"),
  needExecutable(BRIDGE, "containernetworking-plugins"),
]);

type Run = PodmanRun;

let dir = "";
let hostNs = "";
let ipamData = "";
let envLimit = "";

// Machine paths podman 4.3 writes whatever --root says: containers/image's blob-info cache and
// libcni's result cache (its files are removed on teardown). We remove what we created.
const MACHINE_PATHS = [
  "/var/lib/containers/cache/blob-info-cache-v1.boltdb",
  "/var/lib/containers/cache",
  "/var/lib/containers",
  "/var/lib/cni/results",
  "/var/lib/cni",
];
const preexisting = new Set(MACHINE_PATHS.filter((p) => existsSync(p)));

function podmanArgs(args: string[]): string[] {
  return [
    `--net=${netnsPath(hostNs)}`,
    "--",
    PODMAN,
    ...podmanStorageArgs(dir),
    "--network-config-dir",
    join(dir, "cni-conf"),
    ...args,
  ];
}

/** podman, entered into the test's host namespace, with every path in the temp dir. */
function podman(args: string[], stdin?: Buffer, timeoutMs = 60_000): Promise<Run> {
  return runPodman(NSENTER, podmanArgs(args), dir, stdin, timeoutMs);
}

function podmanSync(args: string[]): void {
  spawnSync(NSENTER, podmanArgs(args), { env: podmanEnv(dir), stdio: "ignore", timeout: 60_000 });
}

const show = showRun;

function writeConfigs(): void {
  for (const d of ["root", "runroot", "tmp", "cni-conf", "cni-bin", "ipam-data"])
    mkdirSync(join(dir, d), { recursive: true });
  ipamData = join(dir, "ipam-data");
  symlinkSync(IPAM_PLUGIN, join(dir, "cni-bin", "berth-ipam"));
  writePodmanConfig(dir, RUNTIME, [
    'network_backend = "cni"',
    `cni_plugin_dirs = ["${join(dir, "cni-bin")}", "${REFERENCE_DIR}"]`,
    `network_config_dir = "${join(dir, "cni-conf")}"`,
    `default_network = "${NETWORK}"`,
  ]);
  writeFileSync(
    join(dir, "cni-conf", `${NETWORK}.conflist`),
    JSON.stringify(
      {
        cniVersion: "1.0.0",
        name: NETWORK,
        plugins: [
          {
            type: "bridge",
            bridge: "berth0",
            isGateway: true,
            ipMasq: false,
            ipam: {
              type: "berth-ipam",
              dataDir: ipamData,
              ranges: [[{ subnet: `${PREFIX}.0/24`, rangeStart: `${PREFIX}.10`, rangeEnd: `${PREFIX}.100` }]],
              routes: [{ dst: "10.223.0.0/16", gw: GATEWAY }],
            },
          },
        ],
      },
      null,
      2,
    ),
  );
}

function unmountUnder(root: string): void {
  const mounts = readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "")
    .filter((m) => m.startsWith(`${root}/`))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) spawnSync("/usr/bin/umount", ["-l", m], { stdio: "ignore" });
}

function removeMachinePathsWeCreated(): void {
  for (const p of MACHINE_PATHS) {
    if (preexisting.has(p) || !existsSync(p)) continue;
    try {
      if (statSync(p).isDirectory()) {
        if (readdirSync(p).length === 0) rmdirSync(p);
      } else if (p.endsWith(".boltdb")) rmSync(p);
    } catch {
      // leave it: never remove anything we cannot prove is ours
    }
  }
}

let tornDown = false;
function teardown(): void {
  if (!dir || tornDown) return;
  tornDown = true;
  podmanSync(["rm", "--force", "--all", "--time", "0"]);
  unmountUnder(dir);
  removeMachinePathsWeCreated();
}

if (ready) {
  installCleanupHandlers();
  sweepStale();
  onCleanup(teardown); // containers go before their dirs and namespace
  dir = tempDir("podman");
  hostNs = addNetns("podman-host");
  writeConfigs();
  const imported = await podman(
    ["import", "-", IMAGE],
    busyboxRootfsTar(join(dir, "rootfs"), ["sh", "ip", "ping", "sleep", "cat", "true"]),
  );
  if (imported.code !== 0) envLimit = `podman import failed (no CNI involved): ${show(imported)}`;
  else {
    const pre = await podman(["run", "--rm", "--network", "none", IMAGE, "true"]);
    if (pre.code !== 0)
      envLimit = `podman cannot run a container here even with --network none (no CNI involved): ${show(pre)}`;
  }
  if (envLimit)
    process.stderr.write(`podman: SKIPPING every test: environment limit, not a plugin failure: ${envLimit}\n`);
}

const it: typeof define = (name, fn) => (envLimit ? test.skip(name) : define(name, fn));

test.after(() => cleanupAll());

function addressesIn(output: string): string[] {
  return [...output.matchAll(/inet (\d+\.\d+\.\d+\.\d+\/\d+)/g)].map((m) => m[1] ?? "");
}

it("podman run --ip: the container gets the requested address from the plugin (CNI_ARGS IP=) and our routes", async () => {
  const r = await podman([
    "run",
    "--rm",
    "--network",
    NETWORK,
    "--ip",
    `${PREFIX}.50`,
    IMAGE,
    "sh",
    "-c",
    "ip -4 addr show dev eth0; ip -4 route",
  ]);
  assert.is(r.code, 0, show(r));
  assert.equal(addressesIn(r.stdout), [`${PREFIX}.50/24`], r.stdout);
  assert.match(r.stdout, new RegExp(`10\\.223\\.0\\.0/16 via ${GATEWAY.replaceAll(".", "\\.")} dev eth0`));
});

it("two containers: a static --ip one and a dynamic one reach each other; the taken address is refused; restart keeps it; rm frees it", async () => {
  const started = await podman([
    "run",
    "-d",
    "--name",
    "berth-a",
    "--network",
    NETWORK,
    "--ip",
    `${PREFIX}.60`,
    IMAGE,
    "sleep",
    "600",
  ]);
  assert.is(started.code, 0, show(started));
  const inspect = await podman([
    "inspect",
    "--format",
    `{{(index .NetworkSettings.Networks "${NETWORK}").IPAddress}}`,
    "berth-a",
  ]);
  assert.is(inspect.code, 0, show(inspect));
  assert.is(inspect.stdout.trim(), `${PREFIX}.60`);

  // a dynamic container pings the static one: bridge traffic inside the test namespaces only
  const dyn = await podman([
    "run",
    "--rm",
    "--network",
    NETWORK,
    IMAGE,
    "sh",
    "-c",
    `ip -4 addr show dev eth0 && ping -c 1 -W 2 ${PREFIX}.60`,
  ]);
  assert.is(dyn.code, 0, show(dyn));
  const dynAddr = addressesIn(dyn.stdout)[0] ?? "";
  assert.ok(dynAddr.startsWith(`${PREFIX}.`), dyn.stdout);
  assert.is.not(dynAddr, `${PREFIX}.60/24`, "the dynamic container did not get the static one's address");
  const back = await podman(["exec", "berth-a", "ping", "-c", "1", "-W", "2", GATEWAY]);
  assert.is(back.code, 0, show(back));

  // the same static address for another container is refused with the plugin's message
  const clash = await podman(["run", "--rm", "--network", NETWORK, "--ip", `${PREFIX}.60`, IMAGE, "true"]);
  assert.is.not(clash.code, 0, "a second container got an address that is in use");
  assert.match(clash.stderr, `requested IP address ${PREFIX}.60 is not available in range set`);

  // a restart is a CNI DEL then ADD with the same IP= request: the container keeps its address
  const restart = await podman(["restart", "--time", "0", "berth-a"]);
  assert.is(restart.code, 0, show(restart));
  const after = await podman(["exec", "berth-a", "ip", "-4", "addr", "show", "dev", "eth0"]);
  assert.is(after.code, 0, show(after));
  assert.equal(addressesIn(after.stdout), [`${PREFIX}.60/24`]);

  // podman rm runs CNI DEL: the address is free again
  const rm = await podman(["rm", "--force", "--time", "0", "berth-a"]);
  assert.is(rm.code, 0, show(rm));
  const again = await podman([
    "run",
    "--rm",
    "--network",
    NETWORK,
    "--ip",
    `${PREFIX}.60`,
    IMAGE,
    "ip",
    "-4",
    "addr",
    "show",
    "dev",
    "eth0",
  ]);
  assert.is(again.code, 0, show(again));
  assert.equal(addressesIn(again.stdout), [`${PREFIX}.60/24`]);
});

it("after every container is gone, no veth is left in the host namespace", async () => {
  const r = spawnSync(IP, ["-n", hostNs, "-j", "link", "show", "type", "veth"], { encoding: "utf8" });
  assert.is(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout || "[]"), []);
});

test.run();
