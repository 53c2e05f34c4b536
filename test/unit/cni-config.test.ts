// The ipam config: sources of requested addresses, CNI_ARGS rules, resolv.conf, exclude.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ipFromCniArgs, requestedIps } from "../../cni/args.ts";
import { loadIpamConfig } from "../../cni/config.ts";
import { formatIp, parseIp } from "../../cni/ip.ts";
import { inHole, type RangeSet } from "../../cni/range-set.ts";
import { parseResolvConf } from "../../cni/resolv-conf.ts";
import type { CniRequest } from "../../shared/cni/dispatch.ts";

const req = (config: Record<string, unknown>, args = "", version = "1.0.0"): CniRequest => ({
  env: { command: "ADD", containerId: "c", netns: "/n", ifname: "eth0", args, path: [] },
  version: version as CniRequest["version"],
  config,
  name: "net",
});

const test = suite("config");
test("CNI_ARGS: IP with or without prefix; IgnoreUnknown spellings; unknown keys refused", () => {
  assert.is(formatIp(ipFromCniArgs("IP=10.0.0.5/24")!), "10.0.0.5");
  assert.is(formatIp(ipFromCniArgs("IgnoreUnknown=true;K8S_POD_NAME=x;IP=10.0.0.5")!), "10.0.0.5");
  assert.is(ipFromCniArgs("IgnoreUnknown=1;K8S_POD_NAME=x"), undefined);
  assert.throws(() => ipFromCniArgs("K8S_POD_NAME=x"), /ARGS: unknown args \["K8S_POD_NAME=x"\]/);
  assert.throws(() => ipFromCniArgs("IP"), /ARGS: invalid pair "IP"/);
  assert.throws(() => ipFromCniArgs("IP=1.2.3"), /error parsing value/);
});
test("requested IPs in host-local's order: CNI_ARGS, args.cni.ips, runtimeConfig.ips", () => {
  const ips = requestedIps("IP=10.0.0.1", {
    args: { cni: { ips: ["10.0.0.2"] } },
    runtimeConfig: { ips: ["10.0.0.3/24"] },
  });
  assert.equal(ips.map(formatIp), ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
});
test("range sets in host-local's order: runtimeConfig.ipRanges, legacy, ranges", () => {
  const c = loadIpamConfig(
    req({
      ipam: { subnet: "10.1.0.0/24", ranges: [[{ subnet: "10.2.0.0/24" }]] },
      runtimeConfig: { ipRanges: [[{ subnet: "10.3.0.0/24" }]] },
    }),
  );
  assert.equal(
    c.rangeSets.map((s) => s.key),
    ["10.3.0.1-10.3.0.254", "10.1.0.1-10.1.0.254", "10.2.0.1-10.2.0.254"],
  );
  assert.is(c.dataDir, "/var/lib/cni/networks");
});
test("exclude: addresses and CIDRs of either family become holes of the sets of that family", () => {
  const c = loadIpamConfig(
    req({
      ipam: {
        ranges: [[{ subnet: "10.1.0.0/24" }], [{ subnet: "2001:db8::/64" }]],
        exclude: ["10.1.0.7", "10.1.0.16/28", "2001:db8::/126"],
      },
    }),
  );
  const [v4, v6] = c.rangeSets as [RangeSet, RangeSet];
  const hole = (set: RangeSet, s: string) => inHole(set, parseIp(s)!);
  assert.ok(hole(v4, "10.1.0.1"), "the gateway");
  assert.ok(hole(v4, "10.1.0.7"));
  assert.not.ok(hole(v4, "10.1.0.8"));
  assert.ok(hole(v4, "10.1.0.31"));
  assert.not.ok(hole(v4, "10.1.0.32"));
  assert.ok(hole(v6, "2001:db8::3"));
  assert.not.ok(hole(v6, "2001:db8::4"));
  assert.not.ok(hole(v4, "2001:db8::3"), "a v6 block is no hole of a v4 set");
});
test("1.1.0 route attributes are kept; a bad attribute is refused", () => {
  const c = loadIpamConfig(
    req({ ipam: { subnet: "10.1.0.0/24", routes: [{ dst: "0.0.0.0/0", gw: "10.1.0.1", mtu: 1400, table: 5 }] } }),
  );
  assert.equal(c.routes, [{ dst: "0.0.0.0/0", gw: "10.1.0.1", mtu: 1400, table: 5 }]);
  assert.throws(
    () => loadIpamConfig(req({ ipam: { subnet: "10.1.0.0/24", routes: [{ dst: "0.0.0.0/0", mtu: "big" }] } })),
    /mtu must be an integer/,
  );
});
test("resolv.conf: comments, last domain wins, search and options accumulate", () => {
  assert.equal(
    parseResolvConf(
      "# c\n; c\nnameserver 1.1.1.1\ndomain a\ndomain b\nsearch x y\nsearch z\noptions ndots:1\nnameserver\n",
    ),
    {
      nameservers: ["1.1.1.1"],
      domain: "b",
      search: ["x", "y", "z"],
      options: ["ndots:1"],
    },
  );
});
test.run();
