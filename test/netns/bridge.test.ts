// Real delegation: Debian's reference bridge plugin (containernetworking-plugins 1.1.1)
// with `"ipam": {"type": "berth-ipam"}` and CNI_PATH = [the plugin under test, /usr/lib/cni],
// run inside a host namespace made for the test, wiring container namespaces made for the test.
// bridge execs the IPAM plugin with its whole config and the same CNI_* env
// (SPEC.md "Delegated Plugin protocol").
// The plugin under test is BERTH_IPAM (default dist/bin/berth-ipam); with
// BERTH_IPAM=/usr/lib/cni/host-local the same suite runs against the reference IPAM.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  bridge,
  bridgeConfig,
  disposeLab,
  ipamDirect,
  newContainer,
  newLab,
  type Lab,
  type Result,
} from "../helpers/bridge-lab.ts";
import {
  asCniError,
  BRIDGE,
  cleanupAll,
  delNetns,
  describe,
  globalAddresses,
  installCleanupHandlers,
  IP,
  links,
  netnsPath,
  PING,
  ping,
  routes,
  sweepStale,
} from "../helpers/netns.ts";
import { gated, needExecutable, needPluginUnderTest, needRoot, underTestIsReference } from "../helpers/peers.ts";

const test = suite("netns: reference bridge delegating to the IPAM plugin under test");
const { define: it, ready } = gated(test, "netns", [
  needPluginUnderTest(),
  needRoot(),
  needExecutable(IP, "iproute2"),
  needExecutable(PING, "iputils-ping"),
  needExecutable(BRIDGE, "containernetworking-plugins"),
]);

const labs: Lab[] = [];
function lab(tag: string): Lab {
  const l = newLab(tag);
  labs.push(l);
  return l;
}

if (ready) {
  installCleanupHandlers();
  sweepStale();
}
// Every namespace and temp dir goes, pass or fail (the exit handler is the last resort).
test.after.each(() => {
  for (const l of labs.splice(0)) disposeLab(l);
});
test.after(() => cleanupAll());

function ok(r: { code: number; stdout: string; stderr: string; signal: NodeJS.Signals | null }, what: string): void {
  assert.is(r.code, 0, `${what} failed: ${describe(r)}`);
}

function resultOf(r: { json: unknown }): Result {
  return r.json as Result;
}

// bridge 1.1.1 reports the config-level `dns`, not the IPAM's, so DNS is the black-box suite's job.
it("ADD: the container interface gets exactly the address, gateway and routes the IPAM returned", async () => {
  const l = lab("add");
  const conf = bridgeConfig(l, {
    ipam: {
      routes: [
        { dst: "0.0.0.0/0", gw: l.gateway },
        { dst: "10.223.0.0/16", gw: l.gateway },
      ],
    },
  });
  const c = newContainer(l, "a");
  const r = await bridge(l, "ADD", c, conf);
  ok(r, "bridge ADD");
  const res = resultOf(r);
  assert.is(res.cniVersion, "1.0.0");
  // host-local semantics (drop-in): first address after the gateway, gateway = network+1
  assert.equal(
    res.ips?.map((i) => [i.address, i.gateway]),
    [[`${l.prefix}.2/24`, l.gateway]],
  );
  assert.equal(res.routes, [
    { dst: "0.0.0.0/0", gw: l.gateway },
    { dst: "10.223.0.0/16", gw: l.gateway },
  ]);
  // bridge points the IP at the container's interface
  const idx = res.ips?.[0]?.interface;
  assert.type(idx, "number");
  assert.is(res.interfaces?.[idx as number]?.name, "eth0");
  assert.is(res.interfaces?.[idx as number]?.sandbox, netnsPath(c.ns));

  // the kernel's view inside the container namespace
  assert.equal(globalAddresses(c.ns, "eth0"), [`${l.prefix}.2/24`]);
  const rt = routes(c.ns);
  const via = (dst: string) => rt.find((x) => x.dst === dst);
  assert.is(via("default")?.gateway, l.gateway, JSON.stringify(rt));
  assert.is(via("default")?.dev, "eth0");
  assert.is(via("10.223.0.0/16")?.gateway, l.gateway, JSON.stringify(rt));
  assert.ok(via(`${l.prefix}.0/24`), `subnet route missing: ${JSON.stringify(rt)}`);
  // and the bridge in the host namespace holds the gateway (isGateway)
  assert.equal(globalAddresses(l.host, "berth0"), [`${l.gateway}/24`]);
});

it("two containers on the bridge reach each other (ICMP inside the test namespaces only)", async () => {
  const l = lab("ping");
  const conf = bridgeConfig(l);
  const a = newContainer(l, "a");
  const b = newContainer(l, "b");
  const ra = await bridge(l, "ADD", a, conf);
  ok(ra, "ADD a");
  const rb = await bridge(l, "ADD", b, conf);
  ok(rb, "ADD b");
  const ipA = resultOf(ra).ips?.[0]?.address.split("/")[0] ?? "";
  const ipB = resultOf(rb).ips?.[0]?.address.split("/")[0] ?? "";
  assert.ok(ipA.startsWith(`${l.prefix}.`), ipA);
  assert.ok(ipB.startsWith(`${l.prefix}.`), ipB);
  assert.is.not(ipA, ipB, "two containers got the same address");
  const ab = ping(a.ns, ipB);
  assert.ok(ab.ok, `ping a -> b failed:\n${ab.output}`);
  const ba = ping(b.ns, ipA);
  assert.ok(ba.ok, `ping b -> a failed:\n${ba.output}`);
  // the gateway on the bridge answers too: the path is container -> veth -> bridge
  const ag = ping(a.ns, l.gateway);
  assert.ok(ag.ok, `ping a -> gateway failed:\n${ag.output}`);
});

it("dual stack: one IPv4 and one IPv6 address from two range sets, both configured, both reachable", async () => {
  const l = lab("dual");
  const v6 = `fd00:222:${l.prefix.split(".")[2]}::`;
  const conf = bridgeConfig(l, {
    ipam: {
      ranges: [[{ subnet: l.subnet }], [{ subnet: `${v6}/64` }]],
      routes: [
        { dst: "10.223.0.0/16", gw: l.gateway },
        { dst: "fd00:223::/32", gw: `${v6}1` },
      ],
    },
  });
  const a = newContainer(l, "a");
  const b = newContainer(l, "b");
  const ra = await bridge(l, "ADD", a, conf);
  ok(ra, "ADD a");
  const rb = await bridge(l, "ADD", b, conf);
  ok(rb, "ADD b");
  assert.equal(
    resultOf(ra).ips?.map((i) => [i.address, i.gateway]),
    [
      [`${l.prefix}.2/24`, l.gateway],
      [`${v6}2/64`, `${v6}1`],
    ],
  );
  assert.equal(globalAddresses(a.ns, "eth0"), [`${l.prefix}.2/24`, `${v6}2/64`]);
  const r6 = routes(a.ns, "-6").find((x) => x.dst === "fd00:223::/32");
  assert.is(r6?.gateway, `${v6}1`);
  const ipB6 = resultOf(rb).ips?.[1]?.address.split("/")[0] ?? "";
  assert.is(ipB6, `${v6}3`);
  const p = ping(a.ns, ipB6);
  assert.ok(p.ok, `ping6 a -> b failed:\n${p.output}`);
  ok(await bridge(l, "CHECK", a, conf, { prevResult: ra.json }), "CHECK a (dual stack)");
  ok(await bridge(l, "DEL", a, conf, { prevResult: ra.json }), "DEL a");
  ok(await bridge(l, "DEL", b, conf, { prevResult: rb.json }), "DEL b");
});

it("CHECK with the ADD result as prevResult passes; once the reservation is gone CHECK fails with the IPAM's error", async () => {
  const l = lab("check");
  const conf = bridgeConfig(l, { ipam: { routes: [{ dst: "0.0.0.0/0", gw: l.gateway }] } });
  const c = newContainer(l, "a");
  const add = await bridge(l, "ADD", c, conf);
  ok(add, "ADD");
  const chk = await bridge(l, "CHECK", c, conf, { prevResult: add.json });
  ok(chk, "CHECK after ADD");
  assert.is(chk.stdout.trim(), "", "CHECK prints nothing on success");

  // Drop the reservation behind bridge's back (IPAM DEL only): the spec says CHECK should then
  // fail, and bridge must pass the IPAM's error through unchanged.
  ok(await ipamDirect(l, "DEL", c, conf, { prevResult: add.json }), "IPAM-only DEL");
  const direct = asCniError(await ipamDirect(l, "CHECK", c, conf, { prevResult: add.json }));
  const viaBridge = asCniError(await bridge(l, "CHECK", c, conf, { prevResult: add.json }));
  assert.is(viaBridge.code, direct.code);
  assert.is(viaBridge.msg, direct.msg);
  if (underTestIsReference()) {
    assert.is(direct.code, 999);
    assert.is(direct.msg, `host-local: Failed to find address added by container ${c.id}`);
  }
  ok(await bridge(l, "DEL", c, conf, { prevResult: add.json }), "DEL");
});

it("DEL removes the veth pair and frees the address: a later ADD gets it again", async () => {
  const l = lab("del");
  // a pool of exactly one address: only a real release lets the second container in
  const one = `${l.prefix}.10`;
  const conf = bridgeConfig(l, { ipam: { ranges: [[{ subnet: l.subnet, rangeStart: one, rangeEnd: one }]] } });
  const a = newContainer(l, "a");
  const add = await bridge(l, "ADD", a, conf);
  ok(add, "ADD a");
  assert.is(resultOf(add).ips?.[0]?.address, `${one}/24`);
  assert.is(links(l.host, "type", "veth").length, 1, "one veth host end after ADD");

  ok(await bridge(l, "DEL", a, conf, { prevResult: add.json }), "DEL a");
  assert.equal(links(a.ns, "type", "veth"), [], "container side removed");
  assert.equal(links(l.host, "type", "veth"), [], "host side removed");
  // DEL is idempotent (spec: may be repeated, must succeed when state is missing)
  ok(await bridge(l, "DEL", a, conf, { prevResult: add.json }), "second DEL a");

  const b = newContainer(l, "b");
  const addB = await bridge(l, "ADD", b, conf);
  ok(addB, "ADD b into the freed pool");
  assert.is(resultOf(addB).ips?.[0]?.address, `${one}/24`);
  assert.equal(globalAddresses(b.ns, "eth0"), [`${one}/24`]);
});

it("DEL after the container namespace is gone still succeeds and releases the address", async () => {
  const l = lab("gone");
  const one = `${l.prefix}.20`;
  const conf = bridgeConfig(l, { ipam: { ranges: [[{ subnet: l.subnet, rangeStart: one, rangeEnd: one }]] } });
  const a = newContainer(l, "a");
  const add = await bridge(l, "ADD", a, conf);
  ok(add, "ADD a");
  delNetns(a.ns); // the runtime lost the sandbox (crash, reboot)
  ok(await bridge(l, "DEL", a, conf, { prevResult: add.json }), "DEL with a vanished CNI_NETNS");
  assert.equal(links(l.host, "type", "veth"), [], "the veth died with the namespace");
  const b = newContainer(l, "b");
  const addB = await bridge(l, "ADD", b, conf);
  ok(addB, "ADD b gets the released address");
  assert.is(resultOf(addB).ips?.[0]?.address, `${one}/24`);
});

it("exhausted pool: bridge fails ADD with the IPAM's own code and message; the runtime's DEL cleans up", async () => {
  const l = lab("full");
  const one = `${l.prefix}.30`;
  const conf = bridgeConfig(l, { ipam: { ranges: [[{ subnet: l.subnet, rangeStart: one, rangeEnd: one }]] } });
  const a = newContainer(l, "a");
  ok(await bridge(l, "ADD", a, conf), "ADD a takes the only address");
  const b = newContainer(l, "b");
  const direct = asCniError(await ipamDirect(l, "ADD", b, conf));
  const viaBridge = asCniError(await bridge(l, "ADD", b, conf));
  assert.is(viaBridge.code, direct.code, "bridge passes the IPAM error code through");
  assert.is(viaBridge.msg, direct.msg);
  // host-local: a plain Go error (999) `failed to allocate for range 0: no IP addresses available
  // in range set: <start>-<end>`; berth keeps 999 and the message for allocation failures
  // (shared/cni/errors.ts) so runtimes see the same thing.
  assert.is(direct.code, 999);
  assert.is(direct.msg, `failed to allocate for range 0: no IP addresses available in range set: ${one}-${one}`);
  // bridge created b's veth before asking IPAM; a runtime DELs after a failed ADD
  ok(await bridge(l, "DEL", b, conf), "DEL b after the failed ADD");
  assert.equal(links(b.ns, "type", "veth"), []);
  assert.is(links(l.host, "type", "veth").length, 1, "only a's veth is left");
});

it("a /30 holds exactly one container address (network, gateway, broadcast excluded)", async () => {
  const l = lab("slash30");
  const subnet = `${l.prefix}.4/30`;
  const gw = `${l.prefix}.5`;
  const conf = bridgeConfig(l, { ipam: { ranges: [[{ subnet }]], routes: [{ dst: "10.223.0.0/16", gw }] } });
  const a = newContainer(l, "a");
  const add = await bridge(l, "ADD", a, conf);
  ok(add, "ADD a");
  assert.equal(
    resultOf(add).ips?.map((i) => [i.address, i.gateway]),
    [[`${l.prefix}.6/30`, gw]],
  );
  const b = newContainer(l, "b");
  const err = asCniError(await bridge(l, "ADD", b, conf));
  assert.is(err.code, 999);
  assert.is(
    err.msg,
    `failed to allocate for range 0: no IP addresses available in range set: ${l.prefix}.5-${l.prefix}.6`,
  );
  ok(await bridge(l, "DEL", b, conf), "DEL b");
});

for (const bad of [
  { name: "no ranges at all", ipam: { ranges: undefined }, reference: "no IP ranges specified" },
  {
    name: "subnet with host bits set",
    ipam: { ranges: [[{ subnet: "10.222.99.7/24" }]] },
    reference:
      "invalid range set 0: Network has host bits set. For a subnet mask of length 24 the network address is 10.222.99.0",
  },
]) {
  it(`bad ipam config (${bad.name}): ADD fails through bridge with the IPAM's code, nothing is allocated`, async () => {
    const l = lab("bad");
    const conf = bridgeConfig(l, { ipam: bad.ipam });
    const c = newContainer(l, "a");
    const direct = asCniError(await ipamDirect(l, "ADD", c, conf));
    const viaBridge = asCniError(await bridge(l, "ADD", c, conf));
    assert.is(viaBridge.code, direct.code);
    assert.is(viaBridge.msg, direct.msg);
    if (underTestIsReference()) {
      assert.is(direct.code, 999);
      assert.is(direct.msg, bad.reference);
    } else {
      // berth answers bad config with the spec's code 7 (invalid network config), same wording
      assert.is(direct.code, 7, JSON.stringify(direct));
      assert.ok(direct.msg.includes(bad.reference), JSON.stringify(direct));
    }
  });
}

it("CNI_ARGS IP= (IgnoreUnknown=1, as podman and kubelet send) through bridge yields that address", async () => {
  const l = lab("static");
  const conf = bridgeConfig(l);
  const c = newContainer(l, "a");
  const want = `${l.prefix}.77`;
  const r = await bridge(l, "ADD", c, conf, {
    cniArgs: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;IP=${want}`,
  });
  ok(r, "ADD with IP=");
  assert.is(resultOf(r).ips?.[0]?.address, `${want}/24`);
  assert.equal(globalAddresses(c.ns, "eth0"), [`${want}/24`]);
  // and that address is now taken for anyone else
  const other = newContainer(l, "b");
  const clash = asCniError(await bridge(l, "ADD", other, conf, { cniArgs: `IgnoreUnknown=1;IP=${want}` }));
  assert.is(clash.code, 999);
  assert.ok(clash.msg.includes(`requested IP address ${want} is not available in range set`), clash.msg);
  ok(await bridge(l, "DEL", other, conf), "DEL b");
});

it("concurrent ADDs through bridge: distinct addresses, each on its own container", async () => {
  const l = lab("conc");
  const conf = bridgeConfig(l);
  // the first ADD creates the bridge; bridge 1.1.1 itself is not built for racing on that
  const first = newContainer(l, "c0");
  ok(await bridge(l, "ADD", first, conf), "ADD c0");
  const cs = Array.from({ length: 8 }, (_, i) => newContainer(l, `c${i + 1}`));
  const rs = await Promise.all(cs.map((c) => bridge(l, "ADD", c, conf)));
  const got = rs.map((r, i) => {
    ok(r, `ADD c${i + 1}`);
    return resultOf(r).ips?.[0]?.address ?? "";
  });
  assert.is(new Set(got).size, got.length, `duplicates: ${got.join(" ")}`);
  for (const [i, c] of cs.entries()) assert.equal(globalAddresses(c.ns, "eth0"), [got[i]]);
  const dels = await Promise.all(cs.map((c, i) => bridge(l, "DEL", c, conf, { prevResult: rs[i]?.json })));
  for (const [i, r] of dels.entries()) ok(r, `DEL c${i + 1}`);
  assert.is(links(l.host, "type", "veth").length, 1, "only c0's veth is left");
});

test.run();
