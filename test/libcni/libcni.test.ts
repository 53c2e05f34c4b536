// The reference runtime library: libcni 1.1.2 from Debian's golang-github-appc-cni-dev,
// driven by our own small runtime (test/libcni/client/main.go), runs
//   - a conflist of the reference bridge + the IPAM plugin under test, inside test namespaces,
//   - a standalone-IPAM .conf whose top-level type is berth-ipam,
// exercising libcni's version negotiation (VERSION, result conversion per cniVersion), its result
// cache (CacheDir in a temp dir) and prevResult handling (CHECK/DEL read the cached ADD result).
// libcni 1.1.2 and Debian's plugins 1.1.1 speak CNI <= 1.0.0, and libcni 1.1.2 has no GC, so GC
// is exercised by executing the plugin directly with the reference semantics (SPEC.md "GC":
// cniVersion 1.1.0, `cni.dev/valid-attachments`).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { disposeLab, newContainer, newLab, type Container, type Lab, type Result } from "../helpers/bridge-lab.ts";
import { execBinary, IPAM_PLUGIN } from "../helpers/exec.ts";
import {
  asCniError,
  BRIDGE,
  cleanupAll,
  describe,
  globalAddresses,
  installCleanupHandlers,
  IP,
  links,
  netnsPath,
  runCni,
  sweepStale,
} from "../helpers/netns.ts";
import { GO, libcniClient, needLibcniSource } from "../helpers/libcni-client.ts";
import { gated, needExecutable, needPluginUnderTest, needRoot, underTestIsReference } from "../helpers/peers.ts";

const test = suite("libcni: reference runtime library with bridge + the IPAM plugin under test");
const { define: it, ready } = gated(test, "libcni", [
  needPluginUnderTest(),
  needRoot(),
  needExecutable(IP, "iproute2"),
  needExecutable(BRIDGE, "containernetworking-plugins"),
  needExecutable(GO, "golang-go"),
  needLibcniSource(),
]);

let client = "";
let buildError: Error | undefined;
const labs: Lab[] = [];

if (ready) {
  installCleanupHandlers();
  sweepStale();
  test.before(() => {
    // A before hook that throws is swallowed by uvu; keep the error for the first test to report.
    try {
      client = libcniClient();
    } catch (e) {
      const err = e as Error & { stderr?: Buffer };
      buildError = new Error(`building the libcni client failed: ${err.message}\n${err.stderr?.toString() ?? ""}`);
    }
  });
}
test.after.each(() => {
  for (const l of labs.splice(0)) disposeLab(l);
});
test.after(() => cleanupAll());

function lab(tag: string): Lab {
  const l = newLab(tag);
  labs.push(l);
  return l;
}

type Reply = {
  ok: boolean;
  error?: string;
  cniError?: { code: number; msg: string; details?: string };
  result?: Result & { ip4?: { ip: string; gateway?: string; routes?: { dst: string; gw?: string }[] } };
  supportedVersions?: string[];
  capabilities?: string[];
};

type Req = {
  op: "add" | "check" | "del" | "validate" | "version" | "cachedResult";
  mode?: "list" | "net";
  conf?: string;
  pluginType?: string;
  container?: Container;
  args?: [string, string][];
  capabilityArgs?: Record<string, unknown>;
};

/** One call through libcni, with the lab's CNI_PATH and a cache dir inside the lab. */
async function libcni(l: Lab, req: Req): Promise<Reply> {
  if (buildError) throw buildError;
  const body = {
    op: req.op,
    mode: req.mode ?? "list",
    conf: req.conf ?? "",
    path: l.cniPath.split(":"),
    cacheDir: cacheDir(l),
    containerID: req.container?.id ?? "",
    netns: req.container ? netnsPath(req.container.ns) : "",
    ifname: req.container?.ifname ?? "",
    args: req.args ?? [],
    capabilityArgs: req.capabilityArgs ?? {},
    pluginType: req.pluginType ?? "",
  };
  // libcni runs plugins in the caller's namespace: run the client inside the lab's host namespace
  const r = await execBinary(IP, { args: ["netns", "exec", l.host, client], stdin: JSON.stringify(body) });
  if (r.code !== 0) throw new Error(`libcni client: ${describe(r)}`);
  return JSON.parse(r.stdout) as Reply;
}

const cacheDir = (l: Lab) => join(l.dir, "cni-cache");
const cacheFile = (l: Lab, net: string, c: Container) => join(cacheDir(l), "results", `${net}-${c.id}-${c.ifname}`);

function okReply(r: Reply, what: string): void {
  assert.ok(r.ok, `${what}: ${r.error ?? ""}`);
}

function writeConf(l: Lab, file: string, conf: unknown): string {
  const p = join(l.dir, file);
  writeFileSync(p, JSON.stringify(conf, null, 2));
  return p;
}

type RangeOpts = { rangeStart?: string; rangeEnd?: string };

function bridgeList(
  l: Lab,
  cniVersion: string,
  name: string,
  range: RangeOpts = {},
  extra: Record<string, unknown> = {},
): string {
  return writeConf(l, `${name}.conflist`, {
    cniVersion,
    name,
    plugins: [
      {
        type: "bridge",
        bridge: "berth0",
        isGateway: true,
        ipMasq: false,
        ...extra,
        ipam: {
          type: "berth-ipam",
          dataDir: l.dataDir,
          ranges: [[{ subnet: l.subnet, ...range }]],
          routes: [{ dst: "10.223.0.0/16", gw: l.gateway }],
        },
      },
    ],
  });
}

function ipamConfObject(l: Lab, cniVersion: string, name: string, range: RangeOpts = {}): Record<string, unknown> {
  return {
    cniVersion,
    name,
    type: "berth-ipam",
    ipam: {
      type: "berth-ipam",
      dataDir: l.dataDir,
      ranges: [[{ subnet: l.subnet, ...range }]],
      routes: [{ dst: "10.223.0.0/16", gw: l.gateway }],
    },
  };
}

const OLD_AND_CURRENT = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"];

it("version negotiation: libcni's VERSION exchange lists every version libcni 1.1.2 speaks", async () => {
  const l = lab("ver");
  const r = await libcni(l, { op: "version", pluginType: "berth-ipam" });
  okReply(r, "GetVersionInfo");
  for (const v of OLD_AND_CURRENT)
    assert.ok(r.supportedVersions?.includes(v), `${v} missing from ${JSON.stringify(r.supportedVersions)}`);
  if (!underTestIsReference()) assert.ok(r.supportedVersions?.includes("1.1.0"), "berth-ipam supports CNI 1.1.0");
});

it("ValidateNetwork: a standalone berth-ipam .conf is valid for every version up to 1.0.0; 1.1.0 only if the plugin says so", async () => {
  const l = lab("validate");
  for (const v of OLD_AND_CURRENT) {
    const conf = writeConf(l, `v${v}.conf`, ipamConfObject(l, v, "berth-validate"));
    okReply(await libcni(l, { op: "validate", mode: "net", conf }), `validate ${v}`);
  }
  const conf = writeConf(l, "v110.conf", ipamConfObject(l, "1.1.0", "berth-validate"));
  const r = await libcni(l, { op: "validate", mode: "net", conf });
  if (underTestIsReference()) assert.is(r.error, `plugin berth-ipam does not support config version "1.1.0"`);
  else okReply(r, "validate 1.1.0");
});

for (const v of ["0.3.1", "0.4.0", "1.0.0"]) {
  it(`conflist ${v}, bridge + IPAM: ADD result in ${v}, cached; CHECK and DEL use the cache as prevResult; DEL frees`, async () => {
    const l = lab(`list${v.replaceAll(".", "")}`);
    const one = `${l.prefix}.40`;
    const name = `berth-list-${v.replaceAll(".", "-")}`;
    const conf = bridgeList(l, v, name, { rangeStart: one, rangeEnd: one });
    const a = newContainer(l, "a");
    const add = await libcni(l, {
      op: "add",
      conf,
      container: a,
      args: [
        ["IgnoreUnknown", "1"],
        ["K8S_POD_NAME", "a"],
      ],
    });
    okReply(add, "AddNetworkList");
    const res = add.result;
    assert.is(res?.cniVersion, v, "libcni hands the runtime a result in the config's version");
    assert.is(res?.ips?.[0]?.address, `${one}/24`);
    assert.is(res?.ips?.[0]?.gateway, l.gateway);
    assert.is(res?.ips?.[0]?.version, v === "1.0.0" ? undefined : "4", "ips[].version exists only before 1.0.0");
    assert.equal(res?.routes, [{ dst: "10.223.0.0/16", gw: l.gateway }]);
    assert.equal(globalAddresses(a.ns, "eth0"), [`${one}/24`]);

    // the result cache
    const file = cacheFile(l, name, a);
    assert.ok(existsSync(file), `no cache file ${file}`);
    const cached = JSON.parse(readFileSync(file, "utf8")) as {
      kind: string;
      containerId: string;
      ifName: string;
      result: unknown;
    };
    assert.is(cached.kind, "cniCacheV1");
    assert.is(cached.containerId, a.id);
    assert.equal(cached.result, res);
    const fromCache = await libcni(l, { op: "cachedResult", conf, container: a });
    okReply(fromCache, "GetNetworkListCachedResult");
    assert.equal(fromCache.result, res);

    const chk = await libcni(l, { op: "check", conf, container: a });
    if (v === "0.3.1") assert.is(chk.error, `configuration version "0.3.1" does not support the CHECK command`);
    else okReply(chk, "CheckNetworkList (prevResult from the cache)");

    okReply(await libcni(l, { op: "del", conf, container: a }), "DelNetworkList");
    assert.not.ok(existsSync(file), "DEL removes the cache entry");
    assert.equal(links(l.host, "type", "veth"), []);
    // DEL again, with no cache entry any more (no prevResult): still succeeds
    okReply(await libcni(l, { op: "del", conf, container: a }), "second DelNetworkList");

    const b = newContainer(l, "b");
    const addB = await libcni(l, { op: "add", conf, container: b });
    okReply(addB, "ADD b into the freed one-address pool");
    assert.is(addB.result?.ips?.[0]?.address, `${one}/24`);
    okReply(await libcni(l, { op: "del", conf, container: b }), "DEL b");
  });
}

it("CHECK through libcni fails once the IPAM lost the reservation, with the plugin's error", async () => {
  const l = lab("chkfail");
  const name = "berth-chkfail";
  const conf = bridgeList(l, "1.0.0", name);
  const a = newContainer(l, "a");
  okReply(await libcni(l, { op: "add", conf, container: a }), "ADD");
  // release the reservation behind the runtime's back: IPAM-only DEL
  const raw = JSON.parse(readFileSync(conf, "utf8")) as { plugins: Record<string, unknown>[] };
  const single = { cniVersion: "1.0.0", name, ...raw.plugins[0] };
  const del = await runCni(IPAM_PLUGIN, {
    command: "DEL",
    containerId: a.id,
    netns: netnsPath(a.ns),
    ifname: "eth0",
    cniPath: l.cniPath,
    config: single,
  });
  assert.is(del.code, 0, describe(del));
  const chk = await libcni(l, { op: "check", conf, container: a });
  assert.not.ok(chk.ok, "CHECK must fail when the reservation is gone");
  assert.ok(chk.cniError, `expected a plugin error, got ${chk.error ?? ""}`);
  if (underTestIsReference())
    assert.equal(chk.cniError, { code: 999, msg: `host-local: Failed to find address added by container ${a.id}` });
  okReply(await libcni(l, { op: "del", conf, container: a }), "DEL");
});

it("capability `ips` (runtimeConfig.ips, as CRI runtimes send) is injected by libcni and honoured", async () => {
  const l = lab("caps");
  const conf = bridgeList(l, "1.0.0", "berth-caps", {}, { capabilities: { ips: true } });
  const a = newContainer(l, "a");
  const want = `${l.prefix}.66`;
  const add = await libcni(l, { op: "add", conf, container: a, capabilityArgs: { ips: [`${want}/24`] } });
  okReply(add, "ADD with runtimeConfig.ips");
  assert.is(add.result?.ips?.[0]?.address, `${want}/24`);
  assert.equal(globalAddresses(a.ns, "eth0"), [`${want}/24`]);
  okReply(await libcni(l, { op: "check", conf, container: a, capabilityArgs: { ips: [`${want}/24`] } }), "CHECK");
  okReply(await libcni(l, { op: "del", conf, container: a, capabilityArgs: { ips: [`${want}/24`] } }), "DEL");
});

it("an IPAM error reaches the runtime through bridge and libcni with its code", async () => {
  const l = lab("liberr");
  const one = `${l.prefix}.50`;
  const conf = bridgeList(l, "1.0.0", "berth-liberr", { rangeStart: one, rangeEnd: one });
  const a = newContainer(l, "a");
  okReply(await libcni(l, { op: "add", conf, container: a }), "ADD a");
  const b = newContainer(l, "b");
  const r = await libcni(l, { op: "add", conf, container: b });
  assert.not.ok(r.ok);
  assert.equal(r.cniError, {
    code: 999,
    msg: `failed to allocate for range 0: no IP addresses available in range set: ${one}-${one}`,
  });
  assert.ok(r.error?.startsWith(`plugin type="bridge" failed (add): `), r.error);
  assert.not.ok(existsSync(cacheFile(l, "berth-liberr", b)), "no cache entry for a failed ADD");
  okReply(await libcni(l, { op: "del", conf, container: b }), "DEL b after the failed ADD");
});

for (const v of OLD_AND_CURRENT) {
  it(`standalone IPAM .conf (top-level type berth-ipam), ${v}: AddNetwork / CheckNetwork / DelNetwork`, async () => {
    const l = lab(`net${v.replaceAll(".", "")}`);
    const name = `berth-net-${v.replaceAll(".", "-")}`;
    const one = `${l.prefix}.60`;
    const conf = writeConf(l, `${name}.conf`, ipamConfObject(l, v, name, { rangeStart: one, rangeEnd: one }));
    const a = newContainer(l, "a");
    const add = await libcni(l, { op: "add", mode: "net", conf, container: a });
    okReply(add, "AddNetwork");
    const res = add.result;
    assert.is(res?.cniVersion, v);
    if (v === "0.1.0" || v === "0.2.0") {
      // SPEC 0.2.0 result shape: ip4 {ip, gateway, routes}
      assert.equal(res?.ip4, {
        ip: `${one}/24`,
        gateway: l.gateway,
        routes: [{ dst: "10.223.0.0/16", gw: l.gateway }],
      });
      assert.is(res?.ips, undefined);
    } else {
      assert.is(res?.ips?.length, 1);
      assert.is(res?.ips?.[0]?.address, `${one}/24`);
      assert.is(res?.ips?.[0]?.gateway, l.gateway);
      assert.is(res?.ips?.[0]?.interface, undefined, "an IPAM result names no interface");
      assert.is(res?.interfaces, undefined, "an IPAM result has no interfaces");
      assert.equal(res?.routes, [{ dst: "10.223.0.0/16", gw: l.gateway }]);
    }
    assert.ok(existsSync(cacheFile(l, name, a)));

    const chk = await libcni(l, { op: "check", mode: "net", conf, container: a });
    if (["0.1.0", "0.2.0", "0.3.0", "0.3.1"].includes(v))
      assert.is(chk.error, `configuration version "${v}" does not support the CHECK command`);
    else okReply(chk, "CheckNetwork");

    okReply(await libcni(l, { op: "del", mode: "net", conf, container: a }), "DelNetwork");
    assert.not.ok(existsSync(cacheFile(l, name, a)));
    const b = newContainer(l, "b");
    const addB = await libcni(l, { op: "add", mode: "net", conf, container: b });
    okReply(addB, "AddNetwork b into the freed pool");
    okReply(await libcni(l, { op: "del", mode: "net", conf, container: b }), "DelNetwork b");
  });
}

// libcni 1.1.2 has no GC: exec the plugin directly, as a CNI 1.1.0 runtime (libcni >= 1.2) would.
it("GC (CNI 1.1.0, direct exec): reservations of attachments not in cni.dev/valid-attachments (a list, or null) are released", async () => {
  const l = lab("gc");
  const name = "berth-gc";
  const lo = `${l.prefix}.70`;
  const hi = `${l.prefix}.71`;
  const conf = writeConf(l, `${name}.conf`, ipamConfObject(l, "1.0.0", name, { rangeStart: lo, rangeEnd: hi }));
  const a = newContainer(l, "a");
  const b = newContainer(l, "b");
  const addA = await libcni(l, { op: "add", mode: "net", conf, container: a });
  okReply(addA, "ADD a");
  const addB = await libcni(l, { op: "add", mode: "net", conf, container: b });
  okReply(addB, "ADD b");
  const ipB = addB.result?.ips?.[0]?.address;

  const gcConf = {
    ...ipamConfObject(l, "1.1.0", name, { rangeStart: lo, rangeEnd: hi }),
    "cni.dev/valid-attachments": [{ containerID: a.id, ifname: "eth0" }],
  };
  const gc = await runCni(IPAM_PLUGIN, { command: "GC", cniPath: l.cniPath, config: gcConf });
  if (underTestIsReference()) {
    // host-local 1.1.1 knows no GC: its skel (CNI 1.0) wants CNI_CONTAINERID before it even
    // looks at the command, so the reference answer to a spec-conformant GC is this (observed).
    const e = asCniError(gc);
    assert.is(e.code, 3);
    assert.is(e.msg, "missing containerID");
    return;
  }
  assert.is(gc.code, 0, describe(gc));
  assert.is(gc.stdout.trim(), "", "GC prints nothing on success");
  // a's reservation survives, b's is gone
  okReply(await libcni(l, { op: "check", mode: "net", conf, container: a }), "CHECK a after GC");
  const chkB = await libcni(l, { op: "check", mode: "net", conf, container: b });
  assert.not.ok(chkB.ok, "CHECK b must fail: GC released it");
  const c = newContainer(l, "c");
  const addC = await libcni(l, { op: "add", mode: "net", conf, container: c });
  okReply(addC, "ADD c into the space GC freed");
  assert.is(addC.result?.ips?.[0]?.address, ipB);
  // GC with every attachment valid releases nothing
  const keepAll = {
    ...gcConf,
    "cni.dev/valid-attachments": [a, c].map((x) => ({ containerID: x.id, ifname: "eth0" })),
  };
  const gc2 = await runCni(IPAM_PLUGIN, { command: "GC", cniPath: l.cniPath, config: keepAll });
  assert.is(gc2.code, 0, describe(gc2));
  okReply(await libcni(l, { op: "check", mode: "net", conf, container: a }), "CHECK a after the second GC");
  okReply(await libcni(l, { op: "check", mode: "net", conf, container: c }), "CHECK c after the second GC");
  const d = newContainer(l, "d");
  const full = await libcni(l, { op: "add", mode: "net", conf, container: d });
  assert.not.ok(full.ok, "the pool is full again");
  assert.is(full.cniError?.code, 999);
  // A Go runtime with no live attachment marshals a nil list: `null` means "none is valid"
  // (cni-spec.md "a nil list is null"), so everything goes.
  const none = await runCni(IPAM_PLUGIN, {
    command: "GC",
    cniPath: l.cniPath,
    config: { ...gcConf, "cni.dev/valid-attachments": null },
  });
  assert.is(none.code, 0, describe(none));
  for (const x of [a, c])
    assert.not.ok(
      (await libcni(l, { op: "check", mode: "net", conf, container: x })).ok,
      `CHECK ${x.id} after GC(null)`,
    );
  const addD = await libcni(l, { op: "add", mode: "net", conf, container: d });
  okReply(addD, "ADD d after GC(null) emptied the pool");
  for (const x of [a, c, d]) okReply(await libcni(l, { op: "del", mode: "net", conf, container: x }), `DEL ${x.id}`);
});

test.run();
